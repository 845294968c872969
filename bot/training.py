"""Train a model on a corpus in the store and write it to BOT_HOME/models/NAME; retrain and swap it in atomically.

A retrained model is written to BOT_HOME/models/.versions/NAME/.training-STAMP/, renamed to STAMP/ once training has
finished and it is published, and swapped in by replacing the symlink BOT_HOME/models/NAME in one rename: a reader
loads the old model or the new one, never half of each, and a retrain that fails or is interrupted leaves the old
model serving (a process killed mid-training leaves its .training- folder, which the model's next training removes).

One process at a time trains a model name: `bot train` and the scheduler's retrain each hold the name's lock
(BOT_HOME/models/.locks/NAME.lock) from the start of training to the swap, and the second to come is refused in one
sentence, so neither writes into the other's folder nor swaps in an unfinished one.

Both publish the finished model to the database (`bot.model_store`), from which other hosts fetch it: a retrained
version is swapped in here only if it is the one that serves there (another training may have published first).
"""

from __future__ import annotations

import dataclasses
import errno
import fcntl
import logging
import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from bot import registry
from bot.config import Settings
from bot.corpus import count_words, load_texts
from bot.errors import BotError, NotFoundError
from bot.store import Store
from models import budget
from models.artifact import ModelArtifact, load_model
from models.config import ModelConfig, preset
from models.finetuning import describe_shape, same_shape
from models.trainer import (EpochResult, LogReporter, TrainingReporter, TrainingSummary, resume_problem,
                            train_model)

logger = logging.getLogger(__name__)

AUTO = "auto"
VERSIONS = ".versions"  # BOT_HOME/models/.versions/NAME/STAMP: retrained models
KEEP_VERSIONS = 2  # retrained versions kept per model: the one serving and the one before it
TRAINING_PREFIX = ".training-"  # BOT_HOME/models/.versions/NAME/.training-STAMP: a retraining in progress
LOCKS = ".locks"  # BOT_HOME/models/.locks/NAME.lock: held by whoever trains NAME
SHIPPED_BASE = "base"  # bot/data/base: the base model nnbot ships, pretrained on Reddit titles (bench/base_model.py)
NO_BASE = "none"  # BOT_BASE_MODEL=none: new models train from scratch


def shipped_base() -> Path:
    """Where the base model nnbot ships lies in the installed package (whether or not this install has it)."""
    return Path(str(resources.files("bot") / "data" / SHIPPED_BASE))


def describe_base(init_from: str) -> str:
    """How a message names the model a fine-tune started from."""
    return "the base model" if Path(init_from).resolve() == shipped_base().resolve() else repr(init_from)


def default_base(settings: Settings) -> str | None:
    """What a new model is fine-tuned from unless told otherwise: BOT_BASE_MODEL (a model name or folder), else the
    shipped base where this install has it; None: from scratch."""
    chosen = settings.bot_base_model
    if chosen is not None and chosen.strip():
        return None if chosen.strip().lower() == NO_BASE else chosen.strip()
    shipped = shipped_base()
    return str(shipped) if (shipped / "config.json").is_file() else None


class ModelBusyError(BotError):
    """Another process is training the same model name."""


@contextmanager
def model_lock(settings: Settings, model_name: str) -> Iterator[None]:
    """Hold `model_name`'s training lock, or raise ModelBusyError naming who holds it. The lock is the operating
    system's (flock): it ends with the process that holds it, however that process ends."""
    folder = settings.models_dir / LOCKS
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{model_name}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            raise ModelBusyError(f"Model {model_name!r} is being trained by another process (pid {holder}); wait "
                                 "until it finishes, or train under another --model name.") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode("ascii"), 0)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def choose_preset(texts: list[str], max_minutes: float | None = None) -> tuple[str, str]:
    """The preset `auto` stands for, and why in one line: the PTB-tuned "medium" recipe once a corpus has the words
    to feed it, "small" below; a time limit plans the schedule and dropout (models.budget)."""
    return budget.choose_preset(count_words(texts), max_minutes)


def train(store: Store, settings: Settings, corpus: str, model_name: str, config: ModelConfig | str, *,
          max_minutes: float | None = None, resume: bool = False, replace: bool = False,
          reporter: TrainingReporter | None = None, overrides: dict[str, object] | None = None,
          directory: Path | None = None, init_from: str | None = None,
          explain: Callable[[str], None] | None = None, locked: bool = False) -> TrainingSummary:
    """Train `config`, or the preset of that name ("auto": chosen by the corpus's size), changed by `overrides`,
    into BOT_HOME/models/`model_name` (or `directory`).

    With `resume`, the model keeps its own settings (`config` may only be "auto" or the model's own preset) and
    continues on the corpus it was trained on, whose documents may have grown but not changed.
    With `init_from` (a model name, or a model directory), training starts from that model's weights, shape and
    vocabulary (`models.finetuning`); `config` gives the training settings.
    `explain` is told in one line which preset "auto" chose and why. `locked`: the caller holds the model's lock.
    """
    from bot import model_store  # it imports this module

    preset_name = config if isinstance(config, str) else None
    own_folder = directory is None  # `bot train`: the model's own folder, published once trained
    directory = directory or settings.model_dir(model_name)
    replaces = model_store.serving(store, model_name) if own_folder else None  # published, maybe by another host
    if resume and init_from is not None:
        raise BotError("--resume continues a model from its own weights and --init-from starts a new one from a "
                       "base model, so pass only one of them.")
    if resume and not directory.exists():
        raise BotError(f"There is no model named {model_name!r} to resume; train it without --resume first.")
    if preset_name is not None and preset_name != AUTO and not resume:
        config = preset(preset_name)  # an unknown name fails here, before anything is read
    base = _base_model(store, settings, init_from, model_name, directory) if init_from is not None else None
    if base is not None and preset_name is not None and preset_name != AUTO:
        _check_preset_shape(base, preset_name)
    if (directory.exists() or replaces is not None) and not (resume or replace):
        raise BotError(
            f"A model named {model_name!r} exists; pass --resume to continue training it or --force to replace it."
        )
    with model_lock(settings, model_name) if not locked else nullcontext():
        summary = _train_locked(store, settings, corpus, model_name, config, preset_name, directory, base,
                                max_minutes=max_minutes, resume=resume, replace=replace, reporter=reporter,
                                overrides=overrides, explain=explain)
        if own_folder and not model_store.publish(store, model_name, directory, replaces=replaces).serving:
            raise VersionSuperseded(f"Model {model_name!r} was trained, but another version of it was published "
                                    "while it trained and serves instead; train it again with --force to replace "
                                    "that one.")
        return summary


def _train_locked(store: Store, settings: Settings, corpus: str, model_name: str, config: ModelConfig | str,
                  preset_name: str | None, directory: Path, base: ModelArtifact | None, *, max_minutes: float | None,
                  resume: bool, replace: bool, reporter: TrainingReporter | None,
                  overrides: dict[str, object] | None, explain: Callable[[str], None] | None) -> TrainingSummary:
    trained = load_model(directory) if resume else None
    if trained is not None:
        config, preset_name = _resumed_settings(trained, model_name, corpus, config)
    with store.session() as session:
        texts = load_texts(session, corpus)
    if trained is not None:
        problem = resume_problem(texts, trained.info)
        if problem:
            raise BotError(f"Model {model_name!r} cannot resume on corpus {corpus!r} because {problem}; a resume "
                           "may only add documents, so train it again with --force.")
    if preset_name == AUTO:
        preset_name, reason = choose_preset(texts, max_minutes)
        logger.info("auto: %s", reason)
        if explain is not None:
            explain(f"auto: {reason}.")
        config = preset(preset_name)
    assert isinstance(config, ModelConfig)
    config = config.replace(**(overrides or {}))
    if replace and not resume and directory.is_symlink():
        directory.unlink()  # a retrained model: its versions stay under .versions until the next retrain
    elif replace and not resume and directory.exists():
        shutil.rmtree(directory)
    now = datetime.now(UTC).isoformat(timespec="seconds")
    if trained is not None:
        info = {**trained.info, "resumed_at": now}  # corpus, preset, created_at: what it was first trained as
    else:
        info = {"corpus": corpus, "preset": preset_name, "created_at": now}  # the trainer adds what it read
    from bot.model_store import MARKER

    (directory / MARKER).unlink(missing_ok=True)  # a resume changes it: no longer the version it was published as
    summary = train_model(texts, directory, config, reporter=reporter, max_minutes=max_minutes, resume=resume,
                          info=info, init_from=base)
    return dataclasses.replace(summary, preset=preset_name)


def _check_preset_shape(base: ModelArtifact, preset_name: str) -> None:
    """A preset the user chose must build the base's network, whose weights it starts from."""
    chosen = preset(preset_name)
    if not same_shape(chosen, base.config):
        raise BotError(f"Base model {base.name!r} is {describe_shape(base.config)}, but preset {preset_name!r} is "
                       f"{describe_shape(chosen)}; leave --preset out to fine-tune with the base's shape, or pass "
                       "--from-scratch.")


def _base_model(store: Store, settings: Settings, init_from: str, model_name: str, directory: Path) -> ModelArtifact:
    """The model `--init-from` names: one under BOT_HOME/models (fetched if it was published elsewhere), else a
    model directory at that path."""
    try:
        path = registry.resolve(settings, init_from, store=store)
    except NotFoundError:
        raise NotFoundError(f"There is no model named {init_from!r} to start from; train it first with "
                            f"`bot train CORPUS --model {init_from}`, or give the path of a model directory.") from None
    if directory.exists() and path.resolve() == directory.resolve():
        raise BotError(f"Model {model_name!r} cannot start from itself; pass another model to --init-from, or "
                       "write the fine-tuned model under a new --model name.")
    return load_model(path)


def _resumed_settings(trained: ModelArtifact, model_name: str, corpus: str,
                      asked: ModelConfig | str) -> tuple[ModelConfig, str | None]:
    """The config and preset a resume continues with: the model's own, on the corpus it was trained on."""
    own_preset = trained.info.get("preset")
    if isinstance(asked, ModelConfig) and asked != trained.config or (
            isinstance(asked, str) and asked not in (AUTO, own_preset)):
        given = f" {asked}" if isinstance(asked, str) else ""
        raise BotError(f"A resumed model keeps the settings it was trained with, so --preset cannot change on "
                       f"--resume; leave --preset out, or train a new model with --preset{given}.")
    trained_on = trained.info.get("corpus")
    if not trained_on:
        raise BotError(f"Model {model_name!r} does not record the corpus it was trained on, so it cannot resume; "
                       "train it again with --force.")
    if trained_on != corpus:
        raise BotError(f"Model {model_name!r} was trained on corpus {trained_on!r}, not {corpus!r}; resume it on "
                       f"{trained_on!r}, or train a new model on {corpus!r}.")
    return trained.config, own_preset


class TrainingCancelled(BotError):
    """The service is stopping; the model being trained is discarded."""


class VersionSuperseded(BotError):
    """A training finished, but another training of the same model published its version first."""


class _Cancellable(LogReporter):
    """Logs progress (and tells `progress` of each epoch), and stops training at the next batch once `stopping` is
    set."""

    def __init__(self, stopping: threading.Event, progress: Callable[[EpochResult], None] | None = None) -> None:
        self.stopping = stopping
        self.progress = progress

    def on_batch(self, **kwargs: object) -> None:
        if self.stopping.is_set():
            raise TrainingCancelled("Retraining was cancelled because the service is stopping; the old model serves.")

    def on_epoch(self, result: EpochResult, *, best: bool) -> None:
        super().on_epoch(result, best=best)
        if self.progress is not None:
            self.progress(result)


def retrain(store: Store, settings: Settings, corpus: str, model_name: str, preset_name: str, *,
            max_minutes: float, stopping: threading.Event | None = None,
            lock: threading.Lock | None = None, init_from: str | None = None,
            progress: Callable[[EpochResult], None] | None = None) -> TrainingSummary:
    """Train a new version of `model_name` on `corpus` (fine-tuned from `init_from`, else from scratch) and swap it
    in once it is complete (holding `lock`, which whoever loads the model for sampling holds too); `progress` is
    told of each epoch."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
    # Written under a dot name (which swap_in's pruning and the fetches pass by) and renamed once it is published:
    # a training killed on the way (a worker's host died) leaves a dot folder, which the next training removes.
    directory = settings.models_dir / VERSIONS / model_name / f"{TRAINING_PREFIX}{stamp}"
    reporter = _Cancellable(stopping or threading.Event(), progress)
    from bot import model_store  # it imports this module

    with model_lock(settings, model_name):  # held until the swap: a hand-run `bot train` of it waits its turn
        replaces = model_store.serving(store, model_name)  # the new version serves only if this one still does
        _remove_unfinished(directory.parent)
        try:
            summary = train(store, settings, corpus, model_name, preset_name, max_minutes=max_minutes,
                            reporter=reporter, directory=directory, locked=True, init_from=init_from)
            published = model_store.publish(store, model_name, directory, replaces=replaces)
        except BaseException:
            shutil.rmtree(directory, ignore_errors=True)
            raise
        if not published.serving:  # another training of this model published first: its version serves
            shutil.rmtree(directory, ignore_errors=True)
            raise VersionSuperseded(f"Model {model_name!r} was retrained, but another version of it was published "
                                    "while this one trained and serves instead; nothing was swapped in.")
        finished = directory.with_name(stamp)
        os.rename(directory, finished)
        with lock or threading.Lock():
            swap_in(settings, model_name, finished)
    return summary


def _remove_unfinished(versions: Path) -> None:
    """Remove the folders of trainings of this model that never finished (their process died); called holding the
    model's lock, so that no training of it on this host is writing one."""
    if not versions.is_dir():
        return
    for left in versions.glob(f"{TRAINING_PREFIX}*"):
        logger.info("removing %s, left by a training that did not finish", left)
        shutil.rmtree(left, ignore_errors=True)


def swap_in(settings: Settings, model_name: str, version: Path) -> None:
    """Point BOT_HOME/models/`model_name` at `version` in one rename, then drop versions beyond KEEP_VERSIONS."""
    link = settings.model_dir(model_name)
    temporary = link.with_name(f".{model_name}.swap-{os.getpid()}-{threading.get_ident()}")  # two may swap at once
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    os.symlink(os.path.relpath(version, link.parent), temporary)
    if link.exists() and not link.is_symlink():
        # A model from `bot train`: it becomes the first version. Between these two renames the name is
        # missing for an instant; the service never loads a bot's model while it swaps that model.
        os.rename(link, version.parent / f"{datetime.now(UTC):%Y%m%dT%H%M%S%f}-trained")
    os.replace(temporary, link)
    logger.info("model %s now serves %s", model_name, version)
    current = link.resolve()
    # Newest first, by when each was written: stamps (trained here) and hash prefixes (fetched) alike. Dot folders
    # are fetches in progress (bot.model_store).
    versions = sorted((p for p in version.parent.iterdir() if p.is_dir() and not p.name.startswith(".")),
                      key=lambda p: p.stat().st_mtime_ns, reverse=True)
    for old in [p for p in versions if p.resolve() != current][KEEP_VERSIONS - 1:]:
        shutil.rmtree(old, ignore_errors=True)
