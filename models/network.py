"""The network, in Keras 3's public API only: Embedding -> stacked LSTM -> softmax over the vocabulary.

No backend is imported here, so TensorFlow (default), JAX or PyTorch (cuDNN LSTM on a GPU) can train it.
Weights move in and out as a dict of named numpy arrays (see `models.config.weight_shapes`), which is what the
model directory stores and what the numpy sampler reads, so sampling never needs a backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers, ops

from models.config import ModelConfig


class TiedSoftmax(layers.Layer):
    """Logits from the transposed embedding matrix plus a bias: the output shares the input embedding."""

    def __init__(self, embedding: layers.Embedding, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.embedding = embedding

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.bias = self.add_weight(shape=(self.embedding.input_dim,), initializer="zeros", name="bias")

    def call(self, x):  # x: (B, T, E) -> logits (B, T, V)
        return ops.matmul(x, ops.transpose(self.embedding.embeddings)) + self.bias


class CarriedLSTM(layers.Layer):
    """An LSTM whose last state is kept and fed to its next call: truncated backpropagation through time.

    Keras's own `stateful=True` overwrites the state inside the forward pass, which PyTorch's autograd refuses
    ("modified by an inplace operation"); here the stored state is copied before use and written back after, which
    every backend accepts. The wrapped layer is a plain `keras.layers.LSTM`, so a GPU still gets cuDNN.
    """

    def __init__(self, units: int, *, batch_size: int, **lstm_options: object) -> None:
        super().__init__(name=lstm_options.pop("name", None))
        self.units, self.batch_size = units, batch_size
        self.lstm = layers.LSTM(units, return_sequences=True, return_state=True, name=f"{self.name}_cell",
                                **lstm_options)

    def build(self, input_shape: tuple[int | None, ...]) -> None:
        self.lstm.build(input_shape)
        shape = (self.batch_size, self.units)
        self.state_h = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="state_h")
        self.state_c = self.add_weight(shape=shape, initializer="zeros", trainable=False, name="state_c")

    def call(self, x, training=None):  # x: (B, T, I) -> (B, T, H)
        initial = [ops.copy(self.state_h), ops.copy(self.state_c)]  # copies: the variables change below
        outputs, h, c = self.lstm(x, initial_state=initial, training=training)
        self.state_h.assign(ops.stop_gradient(h))
        self.state_c.assign(ops.stop_gradient(c))
        return outputs

    def reset_state(self) -> None:
        for state in (self.state_h, self.state_c):
            state.assign(ops.zeros(state.shape, dtype=state.dtype))


def _initializer(config: ModelConfig, default: str) -> keras.initializers.Initializer | str:
    if config.init_scale > 0:
        return keras.initializers.RandomUniform(-config.init_scale, config.init_scale, seed=config.seed)
    return default


def build_network(config: ModelConfig, vocab_size: int, *, batch_size: int, window: int | None = None) -> keras.Model:
    """The LSTM state carries from one window to the next until `reset_states`; the batch size is fixed."""
    b, t = batch_size, window or config.window
    ids = keras.Input(batch_shape=(b, t), dtype="int32", name="ids")  # (B, T)
    embedding = layers.Embedding(vocab_size, config.embedding_dim, name="embedding",
                                 embeddings_initializer=_initializer(config, "uniform"))
    x = embedding(ids)  # (B, T, E)
    if config.embedding_dropout:
        x = layers.Dropout(config.embedding_dropout, noise_shape=(b, 1, config.embedding_dim))(x)
    for layer in range(config.layers):
        x = CarriedLSTM(
            config.hidden_dim, batch_size=b, name=f"lstm_{layer}",
            kernel_initializer=_initializer(config, "glorot_uniform"),
            recurrent_initializer=_initializer(config, "orthogonal"),
            bias_initializer=_initializer(config, "zeros"),
            unit_forget_bias=config.init_scale == 0,  # Zaremba's recipe initialises the forget bias like the rest
        )(x)  # (B, T, H)
        if config.dropout:
            x = layers.Dropout(config.dropout, noise_shape=(b, 1, config.hidden_dim))(x)
    if config.tied:
        if config.hidden_dim != config.embedding_dim:
            x = layers.Dense(config.embedding_dim, name="projection",
                             kernel_initializer=_initializer(config, "glorot_uniform"))(x)  # (B, T, E)
        logits = TiedSoftmax(embedding, name="output")(x)
    else:
        logits = layers.Dense(vocab_size, name="output",
                              kernel_initializer=_initializer(config, "glorot_uniform"),
                              bias_initializer=_initializer(config, "zeros"))(x)
    return keras.Model(ids, logits, name="nnbot_lstm")  # logits: (B, T, V)


_LAYER_WEIGHTS = {  # Keras's order of each layer's get_weights(), named as in weight_shapes()
    "embedding": ("embedding",),
    "lstm": ("kernel", "recurrent_kernel", "bias"),
    "projection": ("kernel", "bias"),
    "output": ("kernel", "bias"),
}


def _named_layers(model: keras.Model) -> dict[str, tuple[str, ...]]:
    names: dict[str, tuple[str, ...]] = {}
    for layer in model.layers:
        kind = layer.name.split("_")[0] if layer.name.startswith("lstm_") else layer.name
        if kind in _LAYER_WEIGHTS:
            names[layer.name] = _LAYER_WEIGHTS[kind]
    return names


def _keys(layer: layers.Layer, weight_names: tuple[str, ...]) -> list[str]:
    if layer.name == "embedding":
        return ["embedding"]
    return [f"{layer.name}/{w}" for w in weight_names]


def get_weights(model: keras.Model) -> dict[str, np.ndarray]:
    weights: dict[str, np.ndarray] = {}
    for layer_name, weight_names in _named_layers(model).items():
        layer = model.get_layer(layer_name)
        if isinstance(layer, TiedSoftmax):  # its get_weights() would repeat the embedding it borrows
            weights["output/bias"] = ops.convert_to_numpy(layer.bias)
        elif isinstance(layer, CarriedLSTM):  # the LSTM's own weights, not the carried state
            weights.update(zip(_keys(layer, weight_names), layer.lstm.get_weights()))
        else:
            weights.update(zip(_keys(layer, weight_names), layer.get_weights()))
    return weights


def set_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    for layer_name, weight_names in _named_layers(model).items():
        layer = model.get_layer(layer_name)
        if isinstance(layer, TiedSoftmax):
            layer.bias.assign(weights["output/bias"])
        elif isinstance(layer, CarriedLSTM):
            layer.lstm.set_weights([weights[k] for k in _keys(layer, weight_names)])
        else:
            layer.set_weights([weights[k] for k in _keys(layer, weight_names)])


def reset_states(model: keras.Model) -> None:
    for layer in model.layers:
        if isinstance(layer, CarriedLSTM):
            layer.reset_state()
