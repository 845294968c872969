"""The network, in Keras 3's public API only: Embedding -> stacked LSTM -> softmax over the vocabulary.

For training, the softmax may be sampled (`SampledSoftmax`): the true word's logit against about a thousand
distinct words drawn per step, which costs a tenth of the full product at a 10,000-word vocabulary. Evaluation and
sampling always use the full softmax, with the same weights.

No backend is imported here, so TensorFlow (default), JAX or PyTorch (cuDNN LSTM on a GPU) can train it.
Weights move in and out as a dict of named numpy arrays (see `models.config.weight_shapes`), which is what the
model directory stores and what the numpy sampler reads, so sampling never needs a backend.
"""

from __future__ import annotations

import models.backend  # noqa: F401  (first: imports keras without TensorFlow's start-up lines)
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


def inclusion(q: np.ndarray, samples: int) -> np.ndarray:
    """How likely each word is to be among `samples` distinct words drawn one after another from `q` without
    replacement: 1 - exp(-q t), with t set so the chances sum to `samples` (the usual approximation for successive
    sampling; tests/models/test_budget.py holds it against the layer's own draws)."""
    low, high = float(samples), float(samples) / float(q.min())
    for _ in range(100):  # bisection on a log scale
        t = (low * high) ** 0.5
        low, high = (t, high) if np.sum(-np.expm1(-q * t)) < samples else (low, t)
    return np.maximum(-np.expm1(-q * (low * high) ** 0.5), 1e-30)


class SampledSoftmax(layers.Layer):
    """Training logits of the true next word (column 0) and of `samples` words drawn for the step (Jean et al. 2015).

    The words are distinct, drawn without replacement from `proposal` (the training text's word counts, smoothed) by
    the Gumbel top-k trick, one set per step shared by every position. Each logit is corrected by the log of its
    word's chance to be among the draws (`inclusion`), so the cross-entropy against column 0 estimates the full
    softmax's (the correction of TensorFlow's `sampled_softmax_loss`); a draw equal to the position's true word is
    masked out. Distinct draws cover more of the vocabulary than as many drawn with replacement, where the most
    common words come up again and again: on PTB, sampled throughout for 3 minutes, valid 133.1 against 145.8 at the
    same pace (bench/RESULTS.md). Weights are those of the full output layer, named as it names them: `bias` (and
    `kernel` (H, V) untied; tied, the embedding's).
    """

    def __init__(self, proposal: np.ndarray, samples: int, *, embedding: layers.Embedding | None = None,
                 kernel_initializer: object = "glorot_uniform", seed: int | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)
        counts = np.asarray(proposal, dtype=np.float64) + 1.0  # every word can be drawn
        if samples > len(counts):
            raise ValueError(f"cannot draw {samples} distinct words from a vocabulary of {len(counts)}")
        q = counts / counts.sum()
        self.log_q, self.log_inclusion = np.log(q).astype("float32"), np.log(inclusion(q, samples)).astype("float32")
        self.vocab_size, self.samples, self.embedding = len(counts), samples, embedding
        self.kernel_initializer = kernel_initializer
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: object) -> None:
        hidden_shape = input_shape[0]
        if self.embedding is None:
            self.kernel = self.add_weight(shape=(hidden_shape[-1], self.vocab_size), name="kernel",
                                          initializer=self.kernel_initializer)
        self.bias = self.add_weight(shape=(self.vocab_size,), initializer="zeros", name="bias")
        self.proposal = self.add_weight(shape=(self.vocab_size,), name="log_q", trainable=False,
                                        initializer=keras.initializers.Constant(self.log_q))
        self.included = self.add_weight(shape=(self.vocab_size,), name="log_inclusion", trainable=False,
                                        initializer=keras.initializers.Constant(self.log_inclusion))

    def _rows(self, ids):  # output weights of words `ids` (any shape) -> (..., E)
        if self.embedding is not None:
            return ops.take(self.embedding.embeddings, ids, axis=0)
        # gathered from the (H, V) kernel and then moved: transposing the whole kernel would copy it every step
        return ops.moveaxis(ops.take(self.kernel, ids, axis=1), 0, -1)

    def call(self, inputs):  # (x (B, T, E), targets (B, T)) -> logits (B, T, 1 + samples)
        x, targets = inputs
        targets = ops.cast(targets, "int32")
        # Gumbel top-k: the S largest of log q + Gumbel noise are S distinct words drawn without replacement
        u = keras.random.uniform((self.vocab_size,), minval=1e-20, maxval=1.0, seed=self.seed_generator)
        drawn = ops.cast(ops.top_k(self.proposal - ops.log(-ops.log(u)), self.samples)[1], "int32")  # (S,)
        true = (ops.sum(x * self._rows(targets), axis=-1) + ops.take(self.bias, targets)
                - ops.take(self.included, targets))  # (B, T)
        sampled = (ops.matmul(x, ops.transpose(self._rows(drawn))) + ops.take(self.bias, drawn)
                   - ops.take(self.included, drawn))  # (B, T, S)
        hits = ops.equal(ops.expand_dims(targets, -1), drawn)  # the true word drawn: not a negative
        sampled = ops.where(hits, ops.full_like(sampled, -1e9), sampled)
        return ops.concatenate([ops.expand_dims(true, -1), sampled], axis=-1)


class RateDropout(layers.Layer):
    """Variational dropout (one mask per window and channel) whose rate is a variable, so the trainer can set it
    once it knows how many epochs the time limit allows, without rebuilding the network."""

    def __init__(self, rate: float, noise_shape: tuple[int, ...], *, seed: int | None = None, **kwargs: object):
        super().__init__(**kwargs)
        self.initial_rate, self.noise_shape = rate, noise_shape
        self.seed_generator = keras.random.SeedGenerator(seed)

    def build(self, input_shape: object) -> None:
        self.rate = self.add_weight(shape=(), name="rate", trainable=False,
                                    initializer=keras.initializers.Constant(self.initial_rate))

    def call(self, x, training=None):
        if not training:
            return x
        keep = 1.0 - self.rate
        mask = ops.cast(keras.random.uniform(self.noise_shape, seed=self.seed_generator) < keep, x.dtype)
        return x * mask / keep


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


def build_network(config: ModelConfig, vocab_size: int, *, batch_size: int, window: int | None = None,
                  proposal: np.ndarray | None = None) -> keras.Model:
    """The LSTM state carries from one window to the next until `reset_states`; the batch size is fixed.

    Given `proposal` (word counts) and `config.sampled_softmax`, the network is a training one: its inputs are
    `ids` and `targets`, and its output the sampled logits whose column 0 is the target (`SampledSoftmax`).
    """
    b, t = batch_size, window or config.window
    ids = keras.Input(batch_shape=(b, t), dtype="int32", name="ids")  # (B, T)
    embedding = layers.Embedding(vocab_size, config.embedding_dim, name="embedding",
                                 embeddings_initializer=_initializer(config, "uniform"))
    x = embedding(ids)  # (B, T, E)
    if config.embedding_dropout:
        x = RateDropout(config.embedding_dropout, (b, 1, config.embedding_dim), seed=config.seed,
                        name="dropout_embedding")(x)
    for layer in range(config.layers):
        x = CarriedLSTM(
            config.hidden_dim, batch_size=b, name=f"lstm_{layer}",
            kernel_initializer=_initializer(config, "glorot_uniform"),
            recurrent_initializer=_initializer(config, "orthogonal"),
            bias_initializer=_initializer(config, "zeros"),
            unit_forget_bias=config.init_scale == 0,  # Zaremba's recipe initialises the forget bias like the rest
        )(x)  # (B, T, H)
        if config.dropout:
            x = RateDropout(config.dropout, (b, 1, config.hidden_dim), seed=config.seed + 1 + layer,
                            name=f"dropout_{layer}")(x)
    if config.tied and config.hidden_dim != config.embedding_dim:
        x = layers.Dense(config.embedding_dim, name="projection",
                         kernel_initializer=_initializer(config, "glorot_uniform"))(x)  # (B, T, E)
    if proposal is not None and config.sampled_softmax:
        targets = keras.Input(batch_shape=(b, t), dtype="int32", name="targets")
        logits = SampledSoftmax(proposal, config.sampled_softmax, embedding=embedding if config.tied else None,
                                kernel_initializer=_initializer(config, "glorot_uniform"), seed=config.seed,
                                name="output")([x, targets])  # (B, T, 1 + S)
        return keras.Model({"ids": ids, "targets": targets}, logits, name="nnbot_lstm_sampled")
    if config.tied:
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
        if isinstance(layer, TiedSoftmax | SampledSoftmax) and layer.embedding is not None:
            weights["output/bias"] = ops.convert_to_numpy(layer.bias)  # not the embedding it borrows
        elif isinstance(layer, SampledSoftmax):  # not its proposal
            weights.update({"output/kernel": ops.convert_to_numpy(layer.kernel),
                            "output/bias": ops.convert_to_numpy(layer.bias)})
        elif isinstance(layer, CarriedLSTM):  # the LSTM's own weights, not the carried state
            weights.update(zip(_keys(layer, weight_names), layer.lstm.get_weights()))
        else:
            weights.update(zip(_keys(layer, weight_names), layer.get_weights()))
    return weights


def set_weights(model: keras.Model, weights: dict[str, np.ndarray]) -> None:
    for layer_name, weight_names in _named_layers(model).items():
        layer = model.get_layer(layer_name)
        if isinstance(layer, TiedSoftmax | SampledSoftmax):
            layer.bias.assign(weights["output/bias"])
            if getattr(layer, "embedding", None) is None:
                layer.kernel.assign(weights["output/kernel"])
        elif isinstance(layer, CarriedLSTM):
            layer.lstm.set_weights([weights[k] for k in _keys(layer, weight_names)])
        else:
            layer.set_weights([weights[k] for k in _keys(layer, weight_names)])


def set_dropout(model: keras.Model, scale: float, config: ModelConfig) -> None:
    """Set every dropout rate to `scale` x the rate `config` gives it."""
    for layer in model.layers:
        if isinstance(layer, RateDropout):
            base = config.embedding_dropout if layer.name == "dropout_embedding" else config.dropout
            layer.rate.assign(base * scale)


def reset_states(model: keras.Model) -> None:
    for layer in model.layers:
        if isinstance(layer, CarriedLSTM):
            layer.reset_state()
