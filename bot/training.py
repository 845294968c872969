"""Train a model on a corpus in the store and write it to BOT_HOME/models/NAME."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import UTC, datetime

from bot.config import Settings
from bot.corpus import count_words, load_texts
from bot.errors import BotError
from bot.store import Store
from models.config import ModelConfig, preset
from models.trainer import TrainingReporter, TrainingSummary, train_model

AUTO = "auto"
MEDIUM_FROM_WORDS = 200_000  # corpora this large train the "medium" recipe; smaller ones (titles, tweets) "small"


def choose_preset(texts: list[str]) -> str:
    """The preset `auto` stands for: the PTB-tuned "medium" recipe once a corpus has the words to feed it."""
    return "medium" if count_words(texts) >= MEDIUM_FROM_WORDS else "small"


def train(store: Store, settings: Settings, corpus: str, model_name: str, config: ModelConfig | str, *,
          max_minutes: float | None = None, resume: bool = False, replace: bool = False,
          reporter: TrainingReporter | None = None, overrides: dict[str, object] | None = None) -> TrainingSummary:
    """Train `config`, or the preset of that name ("auto": chosen by the corpus's size), changed by `overrides`."""
    preset_name = config if isinstance(config, str) else None
    if preset_name is not None and preset_name != AUTO:
        config = preset(preset_name)  # an unknown name fails here, before anything is read
    directory = settings.model_dir(model_name)
    if directory.exists() and not (resume or replace):
        raise BotError(
            f"A model named {model_name!r} exists; pass --resume to continue training it or --force to replace it."
        )
    if resume and not directory.exists():
        raise BotError(f"There is no model named {model_name!r} to resume; train it without --resume first.")
    with store.session() as session:
        texts = load_texts(session, corpus)
    if preset_name == AUTO:
        preset_name = choose_preset(texts)
        config = preset(preset_name)
    assert isinstance(config, ModelConfig)
    config = config.replace(**(overrides or {}))
    if replace and not resume and directory.exists():
        shutil.rmtree(directory)
    info = {"corpus": corpus, "documents": len(texts), "preset": preset_name,
            "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    summary = train_model(texts, directory, config, reporter=reporter, max_minutes=max_minutes, resume=resume,
                          info=info)
    return dataclasses.replace(summary, preset=preset_name)
