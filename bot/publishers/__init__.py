"""Publishers: one module per platform behind `base.Publisher`; `open_publisher` picks the bot's.

Adding a platform means one module and one line in `open_publisher`.
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
    """The publisher for `bot`'s platform and destination; `ConfigError` when credentials are missing."""
    if bot.platform == "reddit":
        from bot.publishers.reddit import RedditPublisher

        assert bot.destination  # BotConfig requires one for reddit
        return RedditPublisher(settings, subreddit=bot.destination, body=bot.reddit.body,
                               flair_id=bot.reddit.flair_id, flair_text=bot.reddit.flair_text)
    if bot.platform == "x":
        from bot.publishers.x import XPublisher

        return XPublisher(settings)
    if bot.platform == "file":
        from bot.publishers.file import FilePublisher

        assert bot.destination
        return FilePublisher(file_destination(settings, bot.destination), bot=bot.name)
    raise ConfigError(f"Bot {bot.name!r} posts to {bot.platform!r}, which nnbot cannot post to.")
