"""Trained models by name: the directories under BOT_HOME/models, brought up to date from the database where the
caller gives the store and a version was published (`bot.model_store`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.errors import NotFoundError
from bot.names import is_valid_name
from models.artifact import CONFIG, ModelArtifact, load_model
from models.errors import ArtifactError

if TYPE_CHECKING:
    from bot.store import Store


@dataclass(frozen=True)
class ModelSummary:
    name: str
    path: Path
    corpus: str | None
    valid_perplexity: float | None
    best_epoch: int | None
    epochs_trained: int | None
    parameters: int | None
    vocab_size: int | None
    created_at: str | None
    problem: str | None = None  # why it does not load, if it does not

    def to_json(self) -> dict[str, Any]:
        return {**self.__dict__, "path": str(self.path)}


def resolve(settings: Settings, name_or_path: str, *, store: Store | None = None) -> Path:
    """The folder of a model given by name (under BOT_HOME/models; with `store`, first fetched if another host
    published a version this one lacks) or by path; NotFoundError if neither is one."""
    path = settings.model_dir(name_or_path) if is_valid_name(name_or_path) else None
    if path is not None and store is not None:
        _fetch(store, settings, name_or_path)
    if path is None or not path.exists():
        path = Path(name_or_path).expanduser()
    if not path.is_dir():
        raise NotFoundError(f"There is no model named {name_or_path!r}; train it first with `bot train CORPUS "
                            f"--model {name_or_path}`, or give the path of a model directory.")
    return path


def load(settings: Settings, name: str, *, store: Store | None = None) -> ModelArtifact:
    """The model named `name`. With `store`, it is first made the version that serves in the database, where one was
    published: one small query when this host has that version, a fetch when it does not."""
    if store is not None:
        _fetch(store, settings, name)
    path = settings.model_dir(name)
    if not path.exists():
        raise NotFoundError(f"There is no model named {name!r}; train one with `bot train CORPUS --model {name}`.")
    return load_model(path)


def _fetch(store: Store, settings: Settings, name: str) -> None:
    from bot.model_store import fetch_serving  # SQLAlchemy and the training module: only for callers with a store

    fetch_serving(store, settings, name)


def summarize(path: Path) -> ModelSummary:
    try:
        model = load_model(path)
    except ArtifactError as exc:
        return ModelSummary(path.name, path, None, None, None, None, None, None, None, problem=str(exc))
    m, i = model.metrics, model.info
    return ModelSummary(name=path.name, path=path, corpus=i.get("corpus"), valid_perplexity=m.get("valid_perplexity"),
                        best_epoch=m.get("best_epoch"), epochs_trained=i.get("epochs_trained"),
                        parameters=i.get("parameters"), vocab_size=i.get("vocab_size"), created_at=i.get("created_at"))


def list_models(settings: Settings) -> list[ModelSummary]:
    root = settings.models_dir
    if not root.is_dir():
        return []
    return [summarize(p) for p in sorted(root.iterdir()) if p.is_dir() and (p / CONFIG).exists()]
