"""A trained model as one directory: config, tokenizer, weights, metrics and versions that load as a unit.

    NAME/config.json      format version, ModelConfig, vocabulary size, what it was trained on
    NAME/tokenizer.json   the vocabulary (id -> piece)
    NAME/weights.npz      named float32 arrays (models.config.weight_shapes) of the best epoch (float16 is read too),
                          and the state a document starts from (models.config.start_state_shapes; older models: none)
    NAME/metrics.json     per-epoch losses and perplexities, the best epoch, timings
    NAME/versions.json    library versions that produced it
    NAME/checkpoint/      the latest epoch's weights and optimizer state, for `--resume`

Loading checks every part against the others (textgenrnn's most reported failure was weights loaded against
the wrong vocabulary), and says what does not match.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import zipfile
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from models.config import START_STATE, ModelConfig, start_state_shapes, weight_shapes
from models.errors import ArtifactError
from models.sampler import Sampler
from models.tokenizer import Tokenizer

FORMAT = 1  # bump when the directory layout changes incompatibly
CONFIG, TOKENIZER, WEIGHTS, METRICS, VERSIONS = (
    "config.json", "tokenizer.json", "weights.npz", "metrics.json", "versions.json")
CHECKPOINT = "checkpoint"
REQUIRED = (CONFIG, TOKENIZER, WEIGHTS, METRICS, VERSIONS)

log = logging.getLogger(__name__)


@dataclass
class ModelArtifact:
    path: Path
    config: ModelConfig
    tokenizer: Tokenizer
    weights: dict[str, np.ndarray]
    metrics: dict[str, Any] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)  # corpus, created_at, parameters, …
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return self.path.name

    def sampler(self) -> Sampler:
        return Sampler(self.config, self.tokenizer, self.weights)


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for dist in ("nnbot", "keras", "numpy", "tensorflow", "torch", "jax"):
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    found["keras_backend"] = os.environ.get("KERAS_BACKEND", "tensorflow")
    return found


def _write_atomic(path: Path, data: bytes) -> None:
    """Write to a sibling temporary file and rename, so a crash never leaves half a file behind."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def save_weights(path: Path, weights: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **{k: np.asarray(v, dtype=np.float32) for k, v in weights.items()})
    os.replace(tmp, path)


def write_json(path: Path, data: Any) -> None:
    _write_atomic(path, json.dumps(data, indent=2, ensure_ascii=False).encode())


def save_model(path: Path, *, config: ModelConfig, tokenizer: Tokenizer, weights: dict[str, np.ndarray],
               metrics: dict[str, Any], info: dict[str, Any]) -> None:
    """Write a complete model directory; the weights go last so a directory with weights is whole."""
    path.mkdir(parents=True, exist_ok=True)
    write_json(path / CONFIG, {"format": FORMAT, "config": config.to_dict(), "vocab_size": tokenizer.size, **info})
    _write_atomic(path / TOKENIZER, tokenizer.to_json().encode())
    write_json(path / METRICS, metrics)
    write_json(path / VERSIONS, library_versions())
    save_weights(path / WEIGHTS, weights)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"{path.name} in {path.parent} cannot be read ({exc}); retrain the model.") from exc


def load_weights(path: Path) -> dict[str, np.ndarray]:
    """The named arrays in `path`; never unpickles (numpy refuses to), and says so in our words, not numpy's."""
    damaged = ArtifactError(f"{path} is damaged or is not a model's weights; retrain the model or restore the file.")
    try:
        with np.load(path) as data:
            weights = {k: data[k] for k in data.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        # numpy's own message for a file that is not .npz advises loading it "unsafely using allow_pickle"
        log.debug("cannot load %s: %s", path, exc)
        raise damaged from exc
    if any(not np.issubdtype(array.dtype, np.floating) for array in weights.values()):
        raise damaged  # text or integer arrays: some other .npz file
    # A shipped model may store float16 (half the disk); every model computes in float32.
    return {k: v if v.dtype == np.float32 else v.astype(np.float32) for k, v in weights.items()}


def check_weights(weights: dict[str, np.ndarray], config: ModelConfig, vocab_size: int, where: Path) -> None:
    """Every expected array is there with the expected shape, and nothing else (but the start state, all of it or
    none); every value is a finite number."""
    expected = weight_shapes(config, vocab_size)
    if any(key.startswith(START_STATE) for key in weights):  # models trained before it have none
        expected |= start_state_shapes(config)
    missing = sorted(set(expected) - set(weights))
    extra = sorted(set(weights) - set(expected))
    if missing or extra:
        raise ArtifactError(
            f"{where} does not fit the model's config.json (missing: {', '.join(missing) or 'none'}; "
            f"unexpected: {', '.join(extra) or 'none'}); the directory mixes files of different models."
        )
    for key, shape in expected.items():
        if weights[key].shape != shape:
            raise ArtifactError(
                f"{where} holds {key} of shape {weights[key].shape} but config.json and tokenizer.json "
                f"({vocab_size} pieces) need {shape}; the weights belong to another model or vocabulary."
            )
    broken = [key for key in expected if not np.isfinite(weights[key]).all()]
    if broken:
        raise ArtifactError(
            f"{where} holds NaN or infinite values (in {', '.join(broken)}), so the model is damaged; retrain it."
        )


def load_model(path: Path) -> ModelArtifact:
    if not path.is_dir():
        raise ArtifactError(f"There is no model directory at {path}.")
    missing = [name for name in REQUIRED if not (path / name).is_file()]
    if missing:
        raise ArtifactError(
            f"The model directory {path} is incomplete ({', '.join(missing)} missing); "
            "training may have stopped before its first epoch ended, so train it again."
        )
    header = _read_json(path / CONFIG)
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise ArtifactError(
            f"{path / CONFIG} is format {header.get('format') if isinstance(header, dict) else '?'}, "
            f"this nnbot reads format {FORMAT}; retrain the model or use a matching nnbot."
        )
    config = ModelConfig.from_dict(header["config"])
    tokenizer = Tokenizer.from_json((path / TOKENIZER).read_text(encoding="utf-8"))
    if tokenizer.size != header.get("vocab_size"):
        raise ArtifactError(
            f"tokenizer.json in {path} has {tokenizer.size} pieces but config.json says {header.get('vocab_size')}; "
            "the directory mixes files of different models."
        )
    weights = load_weights(path / WEIGHTS)
    check_weights(weights, config, tokenizer.size, path / WEIGHTS)
    info = {k: v for k, v in header.items() if k not in ("format", "config")}
    metrics, versions = _read_json(path / METRICS), _read_json(path / VERSIONS)
    if not isinstance(metrics, dict):  # the record of training, not the model: a damaged one is left out
        log.warning("%s is not a JSON object; the model's training record is left out", path / METRICS)
        metrics = {}
    versions = versions if isinstance(versions, dict) else {}
    return ModelArtifact(path, config, tokenizer, weights, metrics, info, versions)
