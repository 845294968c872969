"""The state a document starts from: computed when a model is saved, read by the sampler and the scorer."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from models.artifact import WEIGHTS, ArtifactError, load_model, load_weights, save_weights
from models.config import START_STATE, start_state_shapes
from models.finetuning import merge_weights
from models.sampler import LSTMStepper, SamplingSettings
from models.scoring import Scorer
from models.start_state import document_start_state
from models.tokenizer import BOS_ID


def test_a_trained_model_keeps_the_mean_state_at_its_documents_starts(tiny_model) -> None:
    shapes = start_state_shapes(tiny_model.config)
    assert {k: v.shape for k, v in tiny_model.weights.items() if k.startswith(START_STATE)} == shapes
    start = LSTMStepper(tiny_model.config, tiny_model.weights).start_state(3)
    assert len(start) == 2 * tiny_model.config.layers and all(part.shape == (3, tiny_model.config.hidden_dim)
                                                              for part in start)
    assert any(np.abs(part).max() > 1e-3 for part in start)  # not the zero state


def test_the_start_state_is_the_mean_state_at_each_bos_with_the_state_carried(tiny_model) -> None:
    config, weights = tiny_model.config, tiny_model.weights
    stream = tiny_model.tokenizer.encode_corpus(["how to learn rust", "show hn: a tiny bot", "ask hn: why not"] * 200)
    assert len(stream) >= 4 * 40 * 16  # so the function cuts it into 16 rows, as below
    found = document_start_state(config, weights, stream)
    # The same by hand on one row: step the whole stream, carry the state, average it at every <bos> after 40 steps.
    rows = 16
    grid = stream[:len(stream) // rows * rows].reshape(rows, -1)
    stepper, state, seen = LSTMStepper(config, weights), None, []
    state = stepper.zero_state(rows)
    for t in range(grid.shape[1]):
        if t >= 40:
            seen += [[part[r] for part in state] for r in np.flatnonzero(grid[:, t] == BOS_ID)]
        _, state = stepper.step(grid[:, t], state)
    expected = np.mean(np.array(seen), axis=0)  # (2 * layers, H)
    for i, name in enumerate(start_state_shapes(config)):
        np.testing.assert_allclose(found[name], expected[i], rtol=1e-4, atol=1e-6)


def test_a_stream_too_short_for_a_start_state_leaves_texts_starting_from_zero(tiny_model) -> None:
    assert document_start_state(tiny_model.config, tiny_model.weights, np.array([BOS_ID, 5], np.int32)) == {}


def test_sampling_and_scoring_start_from_the_start_state(tiny_model) -> None:
    without = {k: v for k, v in tiny_model.weights.items() if not k.startswith(START_STATE)}
    settings = SamplingSettings(temperature=1.0)
    with_state = [s.text for s in tiny_model.sampler().sample(50, settings, seed=3)]
    plain = type(tiny_model.sampler())(tiny_model.config, tiny_model.tokenizer, without)
    assert plain.stepper.start is None
    assert [s.text for s in plain.sample(50, settings, seed=3)] != with_state
    texts = ["how to learn rust", "a tiny bot"]
    scored = Scorer(tiny_model.config, tiny_model.tokenizer, tiny_model.weights).score(texts).mean
    zero = Scorer(tiny_model.config, tiny_model.tokenizer, without).score(texts).mean
    assert not np.allclose(scored, zero)


def test_a_model_without_a_start_state_still_loads(tiny_model_dir: Path, tmp_path: Path) -> None:
    old = tmp_path / "old"
    shutil.copytree(tiny_model_dir, old)
    weights = load_weights(old / WEIGHTS)
    save_weights(old / WEIGHTS, {k: v for k, v in weights.items() if not k.startswith(START_STATE)})
    model = load_model(old)
    assert model.sampler().stepper.start is None
    assert model.sampler().sample(3, seed=0)


def test_half_a_start_state_is_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(tiny_model_dir, broken)
    weights = load_weights(broken / WEIGHTS)
    del weights[f"{START_STATE}c_0"]
    save_weights(broken / WEIGHTS, weights)
    with pytest.raises(ArtifactError, match="start/c_0"):
        load_model(broken)


def test_a_base_with_a_start_state_can_be_fine_tuned(tiny_model) -> None:
    size = tiny_model.tokenizer.size
    merged = merge_weights(tiny_model.weights, size, size + 3, tiny_model.config)
    assert merged["embedding"].shape[0] == size + 3
    assert all(np.array_equal(merged[k], v) for k, v in tiny_model.weights.items() if k.startswith(START_STATE))
