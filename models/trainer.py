"""Training: documents -> tokenizer -> packed windows -> a stateful LSTM, epoch by epoch, keeping the best.

Every epoch ends with the validation loss on held-out documents; the weights of the best epoch are written to
the model directory at once (so an interrupted run still leaves a usable model), and the latest weights and
optimizer state go to `checkpoint/` for `--resume`. Training stops at the epoch limit, after `patience` epochs
without improvement, or at the time limit (mid-epoch: the partial epoch is validated and kept if better).

A resume must see the same held-out documents, or "best so far" would compare losses on different text: the model
records how many documents it was trained on, a fingerprint of them and how it split them, and a resume accepts
those documents, in the same order, plus documents added after them, which all go to training.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from models import artifact, budget, finetuning
from models.config import GPU_DEVICES, ModelConfig, parameter_count
from models.data import make_windows, shuffle_documents, split_documents
from models.errors import ArtifactError, CorpusChangedError, CorpusTooSmallError
from models.sampler import Sampler, SamplingSettings
from models.start_state import document_start_state
from models.tokenizer import Tokenizer

log = logging.getLogger(__name__)

MIN_DOCUMENTS = 10  # at least one held out for validation and most left to learn from
MIN_TRAIN_TOKENS = 500  # below this there is nothing for a word-level model to learn
SAMPLE_TEMPERATURES = (0.5, 0.8, 1.0)  # shown during training
SAMPLES_PER_TEMPERATURE = 2
NOT_RECORDED = "the model does not record which documents it was trained on"  # a resume_problem
QUIET_LOG_LEVEL = "3"  # TF_CPP_MIN_LOG_LEVEL hiding C++ INFO, WARNING and ERROR lines (TF's errors raise in Python)


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based, counting resumed epochs
    # mean negative log-likelihood per training position, nats (<bos> targets included); with a sampled softmax,
    # the sampled estimate, which runs below the full softmax's
    train_loss: float
    valid_loss: float
    learning_rate: float  # at the epoch's last step
    seconds: float
    tokens_per_second: float  # window positions trained per second (padding included)
    partial: bool = False  # cut short by the time limit
    sampled: bool = False  # train_loss is the sampled softmax's estimate (valid_loss is always the full softmax's)

    @property
    def train_perplexity(self) -> float:
        return math.exp(min(self.train_loss, 50.0))

    @property
    def valid_perplexity(self) -> float:
        return math.exp(min(self.valid_loss, 50.0))


class TrainingReporter(Protocol):
    """What the trainer tells its caller; the CLI draws a progress bar from it, tests record it."""

    def on_start(self, *, epochs: int, batches: int, train_tokens: int, valid_tokens: int, parameters: int,
                 first_epoch: int) -> None: ...
    def on_batch(self, *, epoch: int, batch: int, batches: int, loss: float) -> None: ...
    def on_epoch(self, result: EpochResult, *, best: bool) -> None: ...
    def on_samples(self, epoch: int, samples: dict[float, list[str]]) -> None: ...
    def on_stop(self, reason: str) -> None: ...


class LogReporter:
    """The default reporter: a log line per epoch."""

    def on_start(self, **kwargs: int) -> None:
        log.info("training: %s", kwargs)

    def on_batch(self, **kwargs: Any) -> None:
        pass

    def on_epoch(self, result: EpochResult, *, best: bool) -> None:
        log.info("epoch %d: train ppl %.1f, valid ppl %.1f%s", result.epoch, result.train_perplexity,
                 result.valid_perplexity, " (best)" if best else "")

    def on_samples(self, epoch: int, samples: dict[float, list[str]]) -> None:
        log.info("epoch %d samples: %s", epoch, samples)

    def on_stop(self, reason: str) -> None:
        log.info("stopped: %s", reason)


@dataclass
class TrainingSummary:
    path: Path
    epochs: list[EpochResult]
    best_epoch: int
    stop_reason: str
    seconds: float
    train_tokens: int
    valid_tokens: int
    vocab_size: int
    parameters: int
    preset: str | None = None  # the named preset trained, when one was
    budget: dict[str, float] | None = None  # the plan for the time limit (`Trainer.budget_plan`), when there was one

    @property
    def best(self) -> EpochResult:
        return next(e for e in self.epochs if e.epoch == self.best_epoch)


@dataclass
class _Progress:
    """What survives in checkpoint/state.json between runs."""

    epoch: int = 0
    learning_rate: float = 0.0
    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    seconds: float = 0.0
    history: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Budget:
    """A run under a time limit, as it goes."""

    schedule: budget.LinearToZero
    started: float  # clock at the start of the run
    batches: int  # per epoch
    first_epoch: int = 0  # epochs done before this run (a resume)
    steps: int = 0  # steps begun in this run
    probe_step: int = 1  # the pace is measured from this step (the first one traces the graph)
    probe_started: float = 0.0
    learning_rate: float = 0.0  # the last step's
    epochs: float | None = None  # expected by the deadline, once measured
    dropout_scale: float | None = None
    probing: bool = True  # the pace is being measured (at the start, and again after the switch to the full softmax)
    epoch_seconds: float = 0.0  # the last epoch's
    switched_at: float | None = None  # the share of the limit at which the full softmax took over from the sampled


def train_model(documents: Sequence[str], directory: Path, config: ModelConfig, *,
                reporter: TrainingReporter | None = None, max_minutes: float | None = None,
                resume: bool = False, info: dict[str, Any] | None = None,
                init_from: artifact.ModelArtifact | None = None) -> TrainingSummary:
    """Train on `documents` (one text each) and write the model directory; returns what happened.

    With `resume`, `documents` must be those the model was trained on plus any added after them (`resume_problem`).
    With `init_from` (not with `resume`), training starts from that base model (`models.finetuning`): its network
    shape and vocabulary options replace `config`'s, its vocabulary grows by the documents' new pieces, and config.json
    records it as `base`.
    """
    if resume and init_from is not None:
        raise ValueError("a resumed model continues from its own weights, not from a base model")
    if init_from is not None:
        config = finetuning.with_base_shape(config, init_from)
        info = {**(info or {}), "base": finetuning.base_record(init_from)}
    tokenizer: Tokenizer | None = None
    if resume:
        trained = artifact.load_model(directory)
        problem = resume_problem(documents, trained.info)
        if problem:
            raise CorpusChangedError(
                f"The model in {directory} cannot resume on these documents ({problem}); train it anew instead.")
        tokenizer, split = trained.tokenizer, trained.info["split"]  # the vocabulary is fixed once trained
    else:
        split = {"documents": len(documents), "seed": config.seed, "valid_fraction": config.valid_fraction}
    train_idx, valid_idx = _split(documents, split)
    train_docs = [documents[i] for i in train_idx]
    if tokenizer is None:
        tokenizer = Tokenizer.build(train_docs, max_vocab=config.max_vocab, min_count=config.min_count,
                                    case_markers=config.case_markers, rare_classes=config.rare_classes,
                                    base=init_from.tokenizer if init_from is not None else None)
    train_stream = tokenizer.encode_corpus(train_docs)
    needed = max(MIN_TRAIN_TOKENS, config.batch_size * config.window + 1)  # one full batch of windows at least
    if len(train_stream) < needed:
        raise CorpusTooSmallError(
            f"The corpus has {len(train_stream)} training tokens; training needs at least {needed} "
            f"(and {MIN_DOCUMENTS} documents): import or scrape more text first."
        )
    valid_stream = tokenizer.encode_corpus(documents[i] for i in valid_idx)
    config = budget.plan_network(config, tokenizer.size, len(train_stream), max_minutes, matmul_rate=_matmul_rate,
                                 resizable=not resume and init_from is None)  # their weights fix the shape
    record = {"documents": len(documents), "fingerprint": fingerprint(documents), "split": split}
    weights = None if init_from is None else finetuning.merge_weights(
        init_from.weights, init_from.tokenizer.size, tokenizer.size, config)
    trainer = Trainer(config, tokenizer, train_stream, valid_stream, directory,
                      reporter=reporter or LogReporter(), info={**(info or {}), **record}, weights=weights)
    return trainer.run(max_minutes=max_minutes, resume=resume)


def _matmul_rate() -> float:
    from models import fitting  # starts the Keras backend, which training is about to do anyway

    return fitting.matmul_rate()


def fingerprint(documents: Sequence[str]) -> str:
    """SHA-256 of the documents in order (each length-prefixed, so no two lists of texts hash alike)."""
    digest = hashlib.sha256()
    for text in documents:
        data = text.encode("utf-8", "surrogatepass")
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)
    return digest.hexdigest()


def resume_problem(documents: Sequence[str], info: dict[str, Any]) -> str | None:
    """Why a model trained with `info` cannot resume on `documents`, or None: they must start with the documents it
    was trained on, unchanged and in order; documents added after those are fine."""
    recorded, printed, split = info.get("documents"), info.get("fingerprint"), info.get("split")
    if not (isinstance(recorded, int) and isinstance(printed, str) and isinstance(split, dict)):
        return NOT_RECORDED
    if len(documents) < recorded:
        return f"the corpus has {len(documents)} documents, fewer than the {recorded} the model was trained on"
    if fingerprint(documents[:recorded]) != printed:
        return "documents the model was trained on were edited or removed since"
    return None


def _split(documents: Sequence[str], split: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Training and validation indices: the seeded split of the first `split["documents"]` documents (all of them,
    unless resuming), and every document after those in training, so the held-out set never changes."""
    if len(documents) < MIN_DOCUMENTS:
        raise CorpusTooSmallError(
            f"The corpus has {len(documents)} documents; training needs at least {MIN_DOCUMENTS} "
            f"(and {MIN_TRAIN_TOKENS} tokens): import or scrape more text first."
        )
    split_from = split["documents"]
    train_idx, valid_idx = split_documents(split_from, valid_fraction=split["valid_fraction"], seed=split["seed"])
    return np.concatenate([train_idx, np.arange(split_from, len(documents))]), valid_idx


def quiet_backend_logs(environ: Any = os.environ) -> None:
    """Keep TensorFlow from printing "failed call to cuInit" at every training on a machine without a GPU; must run
    before the backend is imported, and leaves a TF_CPP_MIN_LOG_LEVEL the user set alone."""
    if "TF_CPP_MIN_LOG_LEVEL" in environ or any(glob.glob(pattern) for pattern in GPU_DEVICES):
        return
    environ["TF_CPP_MIN_LOG_LEVEL"] = QUIET_LOG_LEVEL


class Trainer:
    """The epoch loop over token streams; usable directly with pre-tokenized text (benchmarks do)."""

    def __init__(self, config: ModelConfig, tokenizer: Tokenizer, train_stream: np.ndarray,
                 valid_stream: np.ndarray, directory: Path, *, reporter: TrainingReporter,
                 info: dict[str, Any] | None = None, weights: dict[str, np.ndarray] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """`weights`: where training starts (named as `models.config.weight_shapes`); Keras's initialisers without.
        `clock`: seconds, for the time limit and the budget's schedule (tests pass a fake one)."""
        quiet_backend_logs()
        import models.backend  # noqa: F401  (the backend starts here, without its start-up lines)
        import keras

        from models import fitting, network

        self.keras, self.network, self.fitting = keras, network, fitting
        self.config, self.tokenizer, self.directory = config, tokenizer, directory
        self.train_stream, self.valid_stream = train_stream, valid_stream
        self.reporter, self.info, self.clock = reporter, info or {}, clock
        self.rng = np.random.default_rng(config.seed)
        keras.utils.set_random_seed(config.seed)
        vocab = tokenizer.size
        proposal = np.bincount(train_stream, minlength=vocab) if config.sampled_softmax else None
        self.sampling = bool(config.sampled_softmax)  # the training network's output layer is the sampled one
        self._build_training(network.build_network(config, vocab, batch_size=config.batch_size, proposal=proposal),
                             weights)
        self.valid = make_windows(valid_stream, batch=self._eval_batch(valid_stream), window=config.window)
        self.eval_model = network.build_network(config, vocab, batch_size=self.valid.batch)
        self.eval_model.compile(loss=fitting.loss(), weighted_metrics=[fitting.TokenNLL()])  # sees sample_weight
        self.parameters = parameter_count(config, vocab)
        self.budget: _Budget | None = None

    def _build_training(self, model: Any, weights: dict[str, np.ndarray] | None) -> None:
        self.model = model
        if weights is not None:
            self.network.set_weights(model, weights)
        self.optimizer = self.fitting.optimizer(self.config)
        model.compile(optimizer=self.optimizer, loss=self.fitting.loss())

    def _eval_batch(self, stream: np.ndarray) -> int:
        """Fewer parallel rows for a small validation set, so no row is mostly padding."""
        return int(max(1, min(self.config.batch_size, len(stream) // (2 * self.config.window))))

    # ---- the loop

    def run(self, *, max_minutes: float | None = None, resume: bool = False) -> TrainingSummary:
        c = self.config
        progress = self._resume() if resume else _Progress(learning_rate=c.learning_rate)
        started = self.clock()
        deadline = started + max_minutes * 60 if max_minutes else None
        batches = make_windows(self.train_stream, batch=c.batch_size, window=c.window, pad=False).batches
        if max_minutes and c.budget_schedule:  # a resumed run restarts the decay from the preset's rate
            schedule = budget.LinearToZero(c.learning_rate, max_minutes * 60, (c.epochs - progress.epoch) * batches)
            self.budget = _Budget(schedule, started, batches, first_epoch=progress.epoch)
        self.reporter.on_start(epochs=c.epochs, batches=batches, train_tokens=len(self.train_stream),
                               valid_tokens=self.valid.tokens, parameters=self.parameters,
                               first_epoch=progress.epoch + 1)
        reason = f"reached {c.epochs} epochs"
        at_limit = f"reached the {max_minutes:g}-minute limit" if max_minutes else reason

        def past_limit() -> bool:
            return deadline is not None and self.clock() >= deadline

        while progress.epoch < c.epochs:
            if not past_limit() and self._full_softmax_due():
                self._to_full_softmax()
            if past_limit():  # the last epoch's validation, or building the full-softmax network, took it past
                reason = at_limit
                break
            result = self._epoch(progress, deadline)
            improved = result.valid_loss < progress.best_loss
            self._record(progress, result, improved)
            self.reporter.on_epoch(result, best=improved)
            if c.sample_every and result.epoch % c.sample_every == 0:
                self.reporter.on_samples(result.epoch, self.samples())
            if result.partial:
                reason = at_limit
                break
            if c.patience and progress.bad_epochs >= c.patience and self.budget is None:
                reason = f"no better validation loss for {c.patience} epochs"
                break
        self.reporter.on_stop(reason)
        seconds = self.clock() - started
        epochs = [EpochResult(**h) for h in progress.history]
        return TrainingSummary(self.directory, epochs, progress.best_epoch, reason, seconds,
                               len(self.train_stream), self.valid.tokens, self.tokenizer.size, self.parameters,
                               budget=self.budget_plan())

    def _epoch(self, progress: _Progress, deadline: float | None) -> EpochResult:
        c, epoch = self.config, progress.epoch + 1
        lr = self._learning_rate(progress, epoch)
        self.optimizer.learning_rate.assign(lr)
        self.fitting.set_layer_scales(self.optimizer, c, epoch)
        stream = shuffle_documents(self.train_stream, self.rng) if c.shuffle_documents else self.train_stream
        train = make_windows(stream, batch=c.batch_size, window=c.window, pad=False)
        self.network.reset_states(self.model)
        before = self._budget_step if self.budget is not None else None
        watcher = self.fitting.BatchWatcher(self.reporter.on_batch, epoch, train.batches, deadline, clock=self.clock,
                                            before=before)
        if self.sampling:  # the targets go in; the target's logit comes out first
            x, y = {"ids": train.inputs, "targets": train.targets}, np.zeros_like(train.targets)
        else:
            x, y = train.inputs, train.targets
        t0 = self.clock()
        history = self.model.fit(**self.fitting.in_order(x, y, c.batch_size), epochs=1, shuffle=False, verbose=0,
                                 callbacks=[watcher])
        seconds = self.clock() - t0
        if self.budget is not None:
            lr, self.budget.epoch_seconds = self.budget.learning_rate, seconds
        positions = watcher.batches_done * c.batch_size * c.window
        return EpochResult(epoch=epoch, train_loss=float(history.history["loss"][-1]),
                           valid_loss=self.evaluate(), learning_rate=lr, seconds=seconds,
                           tokens_per_second=positions / max(seconds, 1e-9), partial=watcher.timed_out,
                           sampled=self.sampling)

    def _budget_step(self) -> None:
        """Before each step under a time limit: the scheduled learning rate, and once the pace is known, dropout."""
        b = self.budget
        assert b is not None
        now = self.clock()
        if b.steps == b.probe_step:
            b.probe_started = now
        elif b.probing and b.steps >= b.probe_step + min(budget.PROBE_BATCHES, max(1, b.batches - 1)):
            pace = (now - b.probe_started) / (b.steps - b.probe_step)
            left = b.schedule.seconds - (now - b.started)
            if self.sampling and self.config.sampled_share < 1:  # the full softmax's share runs slower
                full_seconds = b.schedule.seconds * (1 - self.config.sampled_share)
                left = max(0.0, left - full_seconds) + full_seconds / budget.SAMPLED_SPEEDUP
            expected = budget.epochs_that_fit(left, pace, b.batches, done=b.steps / b.batches)  # in this run
            if b.epochs is None:  # the first measurement picks the schedule; a later one (the switch) keeps it
                b.schedule = budget.schedule_for(b.schedule, min(expected, self.config.epochs - b.first_epoch))
            b.epochs = min(float(self.config.epochs), b.first_epoch + expected)  # the epoch limit may come first
            b.dropout_scale, b.probing = budget.dropout_scale(b.epochs), False
            self.network.set_dropout(self.model, b.dropout_scale, self.config)
        b.learning_rate = b.schedule.rate(now - b.started, b.steps)
        self.optimizer.learning_rate.assign(b.learning_rate)
        b.steps += 1

    def _full_softmax_due(self) -> bool:
        """Whether the next epoch trains the full softmax where the sampled one trained so far: the epoch whose
        middle is nearest the sampled share's end (`sampled_share`) and those after it."""
        b = self.budget
        if not self.sampling or b is None or self.config.sampled_share >= 1 or not b.epoch_seconds:
            return False
        middle = self.clock() - b.started + b.epoch_seconds / 2  # of the next epoch, at the last one's pace
        return middle >= self.config.sampled_share * b.schedule.seconds

    def _to_full_softmax(self) -> None:
        """Go on training the same weights against the full softmax; the pace, and with it the epochs expected and
        dropout, is measured again."""
        b = self.budget
        assert b is not None
        weights = self.network.get_weights(self.model)
        self.sampling = False
        self._build_training(self.network.build_network(self.config.replace(sampled_softmax=0),
                                                        self.tokenizer.size, batch_size=self.config.batch_size),
                             weights)
        self.network.set_dropout(self.model, b.dropout_scale or 0.0, self.config)
        b.switched_at = round((self.clock() - b.started) / b.schedule.seconds, 3)
        # the new network's first step traces its graph; until its pace is measured, the sampled one's dropout holds
        b.probe_step, b.probing = b.steps + 1, True

    def budget_plan(self) -> dict[str, float] | None:
        """What the time limit made of the run: minutes, epochs expected at the measured pace, dropout's share, the
        units per layer, the sampled words per step (0: the full softmax) and, where the full softmax took over from
        the sampled one, the share of the limit at which it did (`full_softmax_from`)."""
        b = self.budget
        if b is None:
            return None
        plan = {"minutes": round(b.schedule.seconds / 60, 2), "learning_rate": b.schedule.start}
        if isinstance(b.schedule, budget.HoldThenDecay):  # held for this share of the limit, then decayed to `lr_end`
            plan |= {"lr_held": round(b.schedule.hold, 4), "lr_end": round(b.schedule.start * b.schedule.end, 4)}
        if b.epochs is not None:
            plan |= {"epochs_expected": round(b.epochs, 2), "dropout_scale": round(b.dropout_scale or 0.0, 3)}
        # the network the limit trained: where few epochs fit, fewer units and a sampled softmax first (plan_network)
        plan |= {"hidden_dim": self.config.hidden_dim, "sampled_softmax": self.config.sampled_softmax}
        return plan if b.switched_at is None else plan | {"full_softmax_from": b.switched_at}

    def _learning_rate(self, progress: _Progress, epoch: int) -> float:
        c = self.config
        if c.lr_decay_after:  # Zaremba: constant, then multiplied by lr_decay every epoch
            return c.learning_rate * c.lr_decay ** max(0, epoch - c.lr_decay_after)
        return progress.learning_rate

    def _record(self, progress: _Progress, result: EpochResult, improved: bool) -> None:
        progress.epoch = result.epoch
        progress.seconds += result.seconds
        progress.history.append(asdict(result))
        if improved:
            progress.best_loss, progress.best_epoch, progress.bad_epochs = result.valid_loss, result.epoch, 0
        else:
            progress.bad_epochs += 1
            if not self.config.lr_decay_after and self.budget is None:  # on a plateau, take smaller steps
                progress.learning_rate = result.learning_rate * self.config.lr_decay
        weights = self.network.get_weights(self.model)
        if improved:
            self._save_best(weights, progress)
        else:
            artifact.write_json(self.directory / artifact.METRICS, self._metrics(progress))
        self._save_checkpoint(weights, progress)

    def evaluate(self, stream: np.ndarray | None = None) -> float:
        """Mean negative log-likelihood per token (nats) of the validation stream, or of `stream`."""
        windows = self.valid if stream is None else make_windows(stream, batch=self.valid.batch,
                                                                 window=self.config.window)
        self.fitting.sync_state(self.model)  # scored inside `fit` too (bench/budget.py's marks)
        self.network.set_weights(self.eval_model, self.network.get_weights(self.model))
        self.network.reset_states(self.eval_model)
        data = self.fitting.in_order(windows.inputs, windows.targets, windows.batch, windows.weights)
        result = self.eval_model.evaluate(**data, verbose=0, return_dict=True)
        return float(result["token_nll"])

    def restore_best(self) -> None:
        """Put the best epoch's weights (the model directory's) back into the network, e.g. to score test text."""
        weights = artifact.load_weights(self.directory / artifact.WEIGHTS)
        artifact.check_weights(weights, self.config, self.tokenizer.size, self.directory / artifact.WEIGHTS)
        self.network.set_weights(self.model, weights)

    def samples(self) -> dict[float, list[str]]:
        sampler = Sampler(self.config, self.tokenizer, self.network.get_weights(self.model))
        return {t: [s.text for s in sampler.sample(SAMPLES_PER_TEMPERATURE, SamplingSettings(temperature=t),
                                                     seed=int(self.rng.integers(2**31)))]
                for t in SAMPLE_TEMPERATURES}

    # ---- files

    def _metrics(self, progress: _Progress) -> dict[str, Any]:
        best = next((h for h in progress.history if h["epoch"] == progress.best_epoch), None)
        return {
            "best_epoch": progress.best_epoch,
            "valid_loss": best and best["valid_loss"],
            "valid_perplexity": best and math.exp(min(best["valid_loss"], 50.0)),
            "train_tokens": int(len(self.train_stream)),
            "valid_tokens": self.valid.tokens,
            "train_seconds": progress.seconds,
            "budget": self.budget_plan(),  # None without a time limit
            "history": progress.history,
        }

    def _save_best(self, weights: dict[str, np.ndarray], progress: _Progress) -> None:
        info = {**self.info, "parameters": self.parameters, "epochs_trained": progress.epoch}
        weights = {**weights, **document_start_state(self.config, weights, self.valid_stream)}
        artifact.save_model(self.directory, config=self.config, tokenizer=self.tokenizer, weights=weights,
                            metrics=self._metrics(progress), info=info)

    def _save_checkpoint(self, weights: dict[str, np.ndarray], progress: _Progress) -> None:
        path = self.directory / artifact.CHECKPOINT
        path.mkdir(parents=True, exist_ok=True)
        artifact.save_weights(path / "weights.npz", weights)
        optimizer = {f"{i}": self.keras.ops.convert_to_numpy(v) for i, v in enumerate(self.optimizer.variables)}
        artifact.save_weights(path / "optimizer.npz", optimizer)
        artifact.write_json(path / "state.json", asdict(progress))

    def _resume(self) -> _Progress:
        path = self.directory / artifact.CHECKPOINT
        if not (path / "state.json").is_file():
            raise ArtifactError(f"There is nothing to resume in {self.directory}: it has no checkpoint.")
        state = artifact._read_json(path / "state.json")
        progress = _Progress(**state)
        weights = artifact.load_weights(path / "weights.npz")
        artifact.check_weights(weights, self.config, self.tokenizer.size, path / "weights.npz")
        self.network.set_weights(self.model, weights)
        saved = artifact.load_weights(path / "optimizer.npz")
        self.optimizer.build(self.model.trainable_variables)
        variables = self.optimizer.variables
        if len(saved) != len(variables):
            raise ArtifactError(f"The optimizer state in {path} does not match this model; train without --resume.")
        for i, variable in enumerate(variables):
            variable.assign(saved[str(i)])
        return progress
