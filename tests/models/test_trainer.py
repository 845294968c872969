"""Training: windows with a loss at every position, validation by document, the best epoch kept."""

import json
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from models.artifact import CHECKPOINT, REQUIRED, load_model
from models.config import preset
from models.data import split_documents
from models.errors import CorpusTooSmallError
from models.tokenizer import BOS_ID
from models.trainer import MIN_DOCUMENTS, MIN_TRAIN_TOKENS, EpochResult, train_model

TINY = preset("tiny")


class Recorder:
    """A TrainingReporter that remembers what it was told."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, object]] = []

    def on_start(self, **kwargs: int) -> None:
        self.calls.append(("start", kwargs))

    def on_batch(self, **kwargs: object) -> None:
        self.calls.append(("batch", kwargs))

    def on_epoch(self, result: EpochResult, *, best: bool) -> None:
        self.calls.append(("epoch", (result, best)))

    def on_samples(self, epoch: int, samples: dict[float, list[str]]) -> None:
        self.calls.append(("samples", (epoch, samples)))

    def on_stop(self, reason: str) -> None:
        self.calls.append(("stop", reason))

    def of(self, kind: str) -> list[object]:
        return [value for k, value in self.calls if k == kind]


def unigram_perplexity(titles: list[str], tokenizer, seed: int, fraction: float) -> float:  # type: ignore[no-untyped-def]
    train_idx, valid_idx = split_documents(len(titles), valid_fraction=fraction, seed=seed)
    train = tokenizer.encode_corpus([titles[i] for i in train_idx])
    valid = tokenizer.encode_corpus([titles[i] for i in valid_idx])
    counts = Counter(train[1:][train[1:] != BOS_ID].tolist())
    total = sum(counts.values()) + tokenizer.size  # add-one smoothing
    targets = valid[1:][valid[1:] != BOS_ID]
    return math.exp(-np.mean([math.log((counts[t] + 1) / total) for t in targets.tolist()]))


def test_trained_model_loads_whole_and_beats_a_unigram_model(tiny_model_dir: Path, titles: list[str]) -> None:
    assert all((tiny_model_dir / name).is_file() for name in REQUIRED)
    model = load_model(tiny_model_dir)
    history = model.metrics["history"]
    assert [h["epoch"] for h in history] == [1, 2, 3]
    best = min(history, key=lambda h: h["valid_loss"])
    assert model.metrics["best_epoch"] == best["epoch"]
    assert model.metrics["valid_perplexity"] == pytest.approx(math.exp(best["valid_loss"]))
    baseline = unigram_perplexity(titles, model.tokenizer, TINY.seed, TINY.valid_fraction)
    assert model.metrics["valid_perplexity"] < 0.8 * baseline
    assert model.info["corpus"] == "titles" and model.info["vocab_size"] == model.tokenizer.size
    assert {"python", "numpy", "keras", "keras_backend"} <= set(model.versions)


def test_progress_epochs_and_samples_are_reported(tmp_path: Path, titles: list[str]) -> None:
    recorder = Recorder()
    summary = train_model(titles[:300], tmp_path / "m", TINY.replace(epochs=2, sample_every=1), reporter=recorder)
    (start,) = recorder.of("start")
    assert start["epochs"] == 2 and start["first_epoch"] == 1 and start["batches"] > 1
    batches = recorder.of("batch")
    assert [b["batch"] for b in batches if b["epoch"] == 1] == list(range(1, start["batches"] + 1))
    assert [r.epoch for r, _ in recorder.of("epoch")] == [1, 2]
    samples = recorder.of("samples")
    assert [epoch for epoch, _ in samples] == [1, 2]
    assert all(sorted(s) == [0.5, 0.8, 1.0] and all(len(v) == 2 for v in s.values()) for _, s in samples)
    assert recorder.of("stop") == ["reached 2 epochs"] == [summary.stop_reason]


def test_time_limit_stops_mid_epoch_and_keeps_the_model(tmp_path: Path, titles: list[str]) -> None:
    summary = train_model(titles[:300], tmp_path / "m", TINY.replace(epochs=50), max_minutes=1e-4)
    assert summary.stop_reason == "reached the 0.0001-minute limit"
    assert [(e.epoch, e.partial) for e in summary.epochs] == [(1, True)]
    assert load_model(tmp_path / "m").metrics["best_epoch"] == 1


def test_early_stopping_after_patience_epochs_without_improvement(tmp_path: Path, titles: list[str]) -> None:
    # A learning rate this large makes every epoch after the first worse on held-out text.
    config = TINY.replace(epochs=20, patience=2, optimizer="sgd", learning_rate=500.0, clip_norm=1e6)
    summary = train_model(titles[:300], tmp_path / "m", config)
    assert summary.stop_reason == "no better validation loss for 2 epochs"
    assert len(summary.epochs) == summary.best_epoch + 2


def test_resume_continues_from_the_checkpoint(tmp_path: Path, titles: list[str]) -> None:
    path = tmp_path / "m"
    first = train_model(titles[:300], path, TINY.replace(epochs=2))
    state = json.loads((path / CHECKPOINT / "state.json").read_text())
    assert state["epoch"] == 2
    recorder = Recorder()
    second = train_model(titles[:300], path, TINY.replace(epochs=3), resume=True, reporter=recorder)
    assert recorder.of("start")[0]["first_epoch"] == 3
    assert [e.epoch for e in second.epochs] == [1, 2, 3]
    assert [e.valid_loss for e in second.epochs[:2]] == [e.valid_loss for e in first.epochs]
    assert load_model(path).tokenizer == load_model(path).tokenizer  # vocabulary kept on resume
    assert load_model(path).info["epochs_trained"] in (1, 2, 3)


@pytest.mark.parametrize("docs, message", [
    (["one two three"] * (MIN_DOCUMENTS - 1),
     f"The corpus has {MIN_DOCUMENTS - 1} documents; training needs at least {MIN_DOCUMENTS} "
     f"(and {MIN_TRAIN_TOKENS} tokens): import or scrape more text first."),
    (["one two"] * 20,
     f"The corpus has 72 training tokens; training needs at least {MIN_TRAIN_TOKENS} "
     f"(and {MIN_DOCUMENTS} documents): import or scrape more text first."),
])
def test_too_small_a_corpus_is_refused_with_the_minimum(tmp_path: Path, docs: list[str], message: str) -> None:
    with pytest.raises(CorpusTooSmallError) as error:
        train_model(docs, tmp_path / "m", TINY)
    assert str(error.value) == message
    assert not (tmp_path / "m").exists()
