"""Publishers: one module per platform behind `base.Publisher`; `open_publisher` picks the bot's.

Adding a platform means its publisher module here and its entry in `bot.platforms.PLATFORMS`.
"""

from __future__ import annotations

from pathlib import Path

from bot.config import BotConfig, Settings
from bot.errors import ConfigError
from bot.publishers.base import Outcome, Posted, Publisher, PublishError, RemotePost

__all__ = ["Outcome", "Posted", "PublishError", "Publisher", "RemotePost", "file_destination", "open_publisher"]


def file_destination(settings: Settings, destination: str) -> Path:
    """A `file` bot's destination: an absolute path, or one relative to BOT_HOME (never to the current folder).

    BOT_HOME is created when needed; any other folder must exist already.
    """
    path = Path(destination).expanduser()
    if not path.is_absolute():
        path = settings.bot_home / path
        path.parent.mkdir(parents=True, exist_ok=True)
    if not path.parent.is_dir():
        raise ConfigError(f"The folder {path.parent} for the posts file does not exist; create it or change the "
                          "bot's destination.")
    return path


def open_publisher(settings: Settings, bot: BotConfig) -> Publisher:
    """The publisher for `bot`'s platform and destination (`bot.platforms`); `ConfigError` when settings are
    missing."""
    from bot.platforms import platform

    return platform(bot.platform).open(settings, bot)
