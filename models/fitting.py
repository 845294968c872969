"""The Keras pieces of training: loss, optimizer, an exact per-token NLL metric, the data of a pass, a per-batch
watcher, and the machine's matrix-multiply rate.

Imported only once training starts, so `import models` never starts a Keras backend.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import models.backend  # noqa: F401  (first: imports keras without TensorFlow's start-up lines)
import keras
import numpy as np
from keras import ops

from models.config import ModelConfig


def loss() -> keras.losses.Loss:
    """Mean cross-entropy over all positions; training passes no sample weights (see models.data)."""
    return keras.losses.SparseCategoricalCrossentropy(from_logits=True)


def optimizer(config: ModelConfig) -> keras.optimizers.Optimizer:
    kind = keras.optimizers.SGD if config.optimizer == "sgd" else keras.optimizers.Adam
    if config.lr_layer_decay == 1 and config.unfreeze_epochs == 0:
        return kind(learning_rate=config.learning_rate, global_clipnorm=config.clip_norm)
    return _layered(kind)(config, learning_rate=config.learning_rate, global_clipnorm=config.clip_norm)


def layer_depth(path: str, layers: int) -> int:
    """A weight's layer group, counted from the top: 0 the softmax (and a projection before it), 1 the last LSTM
    layer ... `layers` the first, `layers + 1` the embedding (tied: it is the softmax's matrix too, but it is
    where the base's knowledge of words lies, so it moves least)."""
    top = path.split("/", 1)[0]
    if top.startswith("lstm_"):
        return layers - int(top.removeprefix("lstm_"))
    return layers + 1 if top == "embedding" else 0


def layer_scales(config: ModelConfig, epoch: int) -> list[float]:
    """Each layer group's share of the learning rate in epoch `epoch` (from 1): `lr_layer_decay` per group down,
    and 0 for the groups gradual unfreezing has not reached yet."""
    groups = config.layers + 2
    trained = groups if not config.unfreeze_epochs else min(groups, 1 + (epoch - 1) // config.unfreeze_epochs)
    return [config.lr_layer_decay ** depth if depth < trained else 0.0 for depth in range(groups)]


def set_layer_scales(optimizer: keras.optimizers.Optimizer, config: ModelConfig, epoch: int) -> None:
    """Set the layer groups' shares of the learning rate for epoch `epoch`, where the optimizer has them."""
    scales = getattr(optimizer, "layer_scales", None)
    if scales is not None:
        for variable, value in zip(scales.variables, layer_scales(config, epoch)):
            variable.assign(value)


class _Scales:
    """The layer groups' learning-rate shares as backend variables (so a compiled step reads them anew), kept out of
    the optimizer's own variables, which a checkpoint saves."""

    def __init__(self, groups: int) -> None:
        self.variables = tuple(keras.Variable(1.0, trainable=False, dtype="float32", name=f"layer_scale_{i}")
                               for i in range(groups))


def _layered(kind: type) -> type:
    """`kind` (a Keras optimizer class) with a learning rate per layer group: each variable's step is scaled by its
    group's share (`layer_scales`)."""

    class Layered(kind):
        def __init__(self, config: ModelConfig, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self._layers = config.layers
            object.__setattr__(self, "layer_scales", _Scales(config.layers + 2))  # untracked: not a slot variable
            object.__setattr__(self, "_depths", ())

        def build(self, variables: list[Any]) -> None:
            super().build(variables)
            object.__setattr__(self, "_depths", tuple(layer_depth(v.path, self._layers) for v in variables))

        def update_step(self, gradient: Any, variable: Any, learning_rate: Any) -> None:
            scale = self.layer_scales.variables[self._depths[self._get_variable_index(variable)]]
            rate = ops.multiply(ops.cast(learning_rate, variable.dtype), ops.cast(scale, variable.dtype))
            super().update_step(gradient, variable, rate)

    Layered.__name__ = f"Layered{kind.__name__}"
    return Layered


class TokenNLL(keras.metrics.Metric):
    """Negative log-likelihood per weighted token, summed exactly over a whole evaluation (nats)."""

    def __init__(self, name: str = "token_nll", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total", dtype="float64")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count", dtype="float64")

    def update_state(self, y_true, y_pred, sample_weight=None):  # (B, T) ids, (B, T, V) logits, (B, T)
        nll = ops.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)  # (B, T)
        weight = ops.ones_like(nll) if sample_weight is None else ops.cast(sample_weight, nll.dtype)
        self.total.assign_add(ops.cast(ops.sum(nll * weight), "float64"))
        self.count.assign_add(ops.cast(ops.sum(weight), "float64"))

    def result(self):
        return ops.divide_no_nan(self.total, self.count)


def in_order(x: Any, y: np.ndarray, batch_size: int, sample_weight: np.ndarray | None = None) -> dict[str, Any]:
    """The data arguments of `fit` or `evaluate` for one pass over arrays in their order, `batch_size` rows a step.

    On the TensorFlow backend the arrays go in as a `tf.data` pipeline with autotuning off. Keras's own pipeline
    for arrays autotunes, and tearing its iterator down at the end of the pass waits for the autotuning thread's
    next round, with nothing training: `fit` returned 36.6 s after a 45-second pass's last step, and a 10-minute
    run on PTB lost about 100 s to two such waits (bench/RESULTS.md, "The pause after each epoch"). Other backends
    read the arrays directly, with no pipeline to wait for."""
    if keras.backend.backend() != "tensorflow":
        return {"x": x, "y": y, "batch_size": batch_size, "sample_weight": sample_weight}
    import tensorflow as tf

    items = (x, y) if sample_weight is None else (x, y, sample_weight)
    options = tf.data.Options()
    options.autotune.enabled = False
    data = tf.data.Dataset.from_tensor_slices(items).batch(batch_size).prefetch(1)
    return {"x": data.with_options(options)}


class BatchWatcher(keras.callbacks.Callback):
    """Reports each batch and stops the epoch when the time limit passes; `before` runs before each batch (the
    budget's learning rate and dropout are set there)."""

    def __init__(self, report: Any, epoch: int, batches: int, deadline: float | None, *,
                 clock: Callable[[], float] = time.monotonic, before: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.report, self.epoch, self.batches, self.deadline = report, epoch, batches, deadline
        self.clock, self.before = clock, before
        self.batches_done = 0
        self.timed_out = False

    def on_train_batch_begin(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        if self.before is not None:
            sync_state(self.model)  # so that what `before` sets reaches the next step
            self.before()

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.batches_done = batch + 1
        self.report(epoch=self.epoch, batch=batch + 1, batches=self.batches, loss=float((logs or {}).get("loss", 0)))
        if self.deadline is not None and self.clock() >= self.deadline and self.batches_done < self.batches:
            self.timed_out = True
            self.model.stop_training = True


def sync_state(model: keras.Model) -> None:
    """Put the model's live state back into its variables, where the backend keeps it apart during `fit` (JAX holds
    it outside them, and reads them again at the next step once synced); other backends need nothing."""
    sync = getattr(model, "jax_state_sync", None)
    if sync is not None:
        sync()


MATMUL_SIDE = 1024  # the square product timed by `matmul_rate`: 2.1 GFLOP, 5-20 ms on two CPU cores


def compiled_matmul() -> Callable[[Any, Any], Any]:
    """The backend's compiled matrix product where it has one, so that dispatch does not count against its rate."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.jit(lambda a, b: a @ b)
    if backend == "tensorflow":
        import tensorflow as tf

        return tf.function(lambda a, b: tf.linalg.matmul(a, b))
    return ops.matmul


def matmul_rate(seconds: float = 0.25, side: int = MATMUL_SIDE) -> float:
    """FLOP/s of an fp32 square matrix product through the backend: the fastest of the repeats that fit in
    `seconds`, after an untimed first one (which compiles it). How fast this machine is, to plan a time limit."""
    a = ops.convert_to_tensor(np.random.default_rng(0).standard_normal((side, side), dtype=np.float32))
    matmul = compiled_matmul()

    def run() -> float:
        start = time.perf_counter()
        ops.convert_to_numpy(matmul(a, a)[:1, :1])  # the corner only: waits for the product, copies little
        return time.perf_counter() - start

    run()
    best, start = math.inf, time.perf_counter()
    while best == math.inf or time.perf_counter() - start < seconds:
        best = min(best, run())
    return 2.0 * side**3 / best
