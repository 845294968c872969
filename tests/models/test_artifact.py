"""A model directory loads as a unit, or says exactly what does not match."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from models.artifact import load_model
from models.errors import ArtifactError
from models.sampler import SamplingSettings


@pytest.fixture
def model_dir(tiny_model_dir: Path, tmp_path: Path) -> Path:
    path = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, path)
    return path


DAMAGED = "{} is damaged or is not a model's weights; retrain the model or restore the file."


def message(path: Path) -> str:
    with pytest.raises(ArtifactError) as error:
        load_model(path)
    return str(error.value)


def test_a_whole_directory_loads_and_samples(model_dir: Path) -> None:
    model = load_model(model_dir)
    samples = model.sampler().sample(5, SamplingSettings(temperature=0.8), seed=0)
    assert len(samples) == 5 and all(isinstance(s.text, str) for s in samples)


def test_missing_directory_and_missing_file(model_dir: Path, tmp_path: Path) -> None:
    assert message(tmp_path / "nope") == f"There is no model directory at {tmp_path / 'nope'}."
    (model_dir / "weights.npz").unlink()
    assert message(model_dir) == (
        f"The model directory {model_dir} is incomplete (weights.npz missing); "
        "training may have stopped before its first epoch ended, so train it again.")


def test_tokenizer_of_another_vocabulary_is_caught(model_dir: Path) -> None:
    tokenizer = json.loads((model_dir / "tokenizer.json").read_text())
    size = len(tokenizer["pieces"])
    tokenizer["pieces"] = tokenizer["pieces"][:-1]
    (model_dir / "tokenizer.json").write_text(json.dumps(tokenizer))
    assert message(model_dir) == (
        f"tokenizer.json in {model_dir} has {size - 1} pieces but config.json says {size}; "
        "the directory mixes files of different models.")


def test_weights_of_another_vocabulary_are_caught(model_dir: Path) -> None:
    with np.load(model_dir / "weights.npz") as data:
        weights = {k: data[k] for k in data.files}
    rows, dim = weights["embedding"].shape
    weights["embedding"] = weights["embedding"][:-3]
    np.savez(model_dir / "weights.npz", **weights)
    assert message(model_dir) == (
        f"{model_dir / 'weights.npz'} holds embedding of shape ({rows - 3}, {dim}) but config.json and "
        f"tokenizer.json ({rows} pieces) need ({rows}, {dim}); the weights belong to another model or vocabulary.")


def test_damaged_weights_and_unknown_settings(model_dir: Path) -> None:
    config = json.loads((model_dir / "config.json").read_text())
    (model_dir / "weights.npz").write_bytes(b"not a zip file")
    assert message(model_dir) == DAMAGED.format(model_dir / "weights.npz")  # not numpy's "allow_pickle" advice
    config["config"]["warp_drive"] = True
    (model_dir / "config.json").write_text(json.dumps(config))
    assert message(model_dir) == ("The model's config.json has settings this nnbot does not know (warp_drive); "
                                  "upgrade nnbot or retrain the model.")
    config["format"] = 99
    (model_dir / "config.json").write_text(json.dumps(config))
    assert message(model_dir) == (f"{model_dir / 'config.json'} is format 99, this nnbot reads format 1; "
                                  "retrain the model or use a matching nnbot.")


def weights_of(model_dir: Path) -> dict[str, np.ndarray]:
    with np.load(model_dir / "weights.npz") as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parametrize("content", [
    b"not a zip file",  # numpy: "Cannot load file containing pickled data when allow_pickle=False"
    b"PK\x03\x04 half a zip file",
])
def test_a_damaged_weights_file_gets_our_sentence_not_numpys(model_dir: Path, content: bytes) -> None:
    (model_dir / "weights.npz").write_bytes(content)
    text = message(model_dir)
    assert text == DAMAGED.format(model_dir / "weights.npz") and "pickle" not in text


def test_an_npz_that_holds_no_weights_is_not_a_models(model_dir: Path) -> None:
    np.savez(model_dir / "weights.npz", **{k: np.array(["text"] * v.size) for k, v in weights_of(model_dir).items()})
    assert message(model_dir) == DAMAGED.format(model_dir / "weights.npz")
    np.savez(model_dir / "weights.npz", embedding=np.array([{"a": 1}], dtype=object))  # needs pickle to read
    assert message(model_dir) == DAMAGED.format(model_dir / "weights.npz")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_or_infinite_weights_are_a_damaged_model(model_dir: Path, bad: float) -> None:
    weights = weights_of(model_dir)
    weights["lstm_0/kernel"][0, 0] = bad
    weights["output/bias"][3] = bad
    np.savez(model_dir / "weights.npz", **weights)
    assert message(model_dir) == (f"{model_dir / 'weights.npz'} holds NaN or infinite values (in lstm_0/kernel, "
                                  "output/bias), so the model is damaged; retrain it.")
