"""What every command needs: the settings, the store, the bots file."""

from __future__ import annotations

import os
from functools import cache
from pathlib import Path

from bot.cli import state
from bot.config import BotConfig, BotsFile, Settings, load_bots_file, load_settings
from bot.store import Store, open_store


def config_path() -> Path | None:
    """--config > $BOT_CONFIG > BOT_HOME/bots.toml when it exists; never a file in the current directory."""
    if state.config:
        return state.config
    if os.environ.get("BOT_CONFIG"):
        return Path(os.environ["BOT_CONFIG"])
    default = load_settings().bot_home / "bots.toml"
    return default if default.is_file() else None


@cache
def settings() -> Settings:
    return load_settings(config_path=config_path())


@cache
def bots() -> BotsFile:
    path = config_path()
    return load_bots_file(path) if path else BotsFile()


def bot_config(name: str) -> BotConfig | None:
    return bots().get(name)


@cache
def store() -> Store:
    return open_store(settings().database_url)
