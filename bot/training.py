"""Train a model on a corpus in the store and write it to BOT_HOME/models/NAME."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime

from bot.config import Settings
from bot.corpus import load_texts
from bot.errors import BotError
from bot.store import Store
from models.config import ModelConfig
from models.trainer import TrainingReporter, TrainingSummary, train_model


def train(store: Store, settings: Settings, corpus: str, model_name: str, config: ModelConfig, *,
          max_minutes: float | None = None, resume: bool = False, replace: bool = False,
          reporter: TrainingReporter | None = None) -> TrainingSummary:
    directory = settings.model_dir(model_name)
    if directory.exists() and not (resume or replace):
        raise BotError(
            f"A model named {model_name!r} exists; pass --resume to continue training it or --force to replace it."
        )
    if resume and not directory.exists():
        raise BotError(f"There is no model named {model_name!r} to resume; train it without --resume first.")
    with store.session() as session:
        texts = load_texts(session, corpus)
    if replace and not resume and directory.exists():
        shutil.rmtree(directory)
    info = {"corpus": corpus, "documents": len(texts), "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    return train_model(texts, directory, config, reporter=reporter, max_minutes=max_minutes, resume=resume, info=info)
