"""The service's exception root, and the tuple of errors the CLI turns into one sentence.

`models` and `scrapers` may not import `bot`, so each keeps its own root (`ModelError`, `ScrapeError`);
`USER_ERRORS` names the three so the CLI catches them in one place.
"""

from models.errors import ModelError
from scrapers.errors import ScrapeError


class BotError(Exception):
    """Something the user can fix; the message is one sentence that names the fix."""


class ConfigError(BotError):
    """Settings or `bots.toml` are invalid."""


class NotFoundError(BotError):
    """A named corpus, model, bot or candidate does not exist."""


class QueueError(BotError):
    """A queue operation is not allowed in the candidate's current state."""


USER_ERRORS: tuple[type[Exception], ...] = (BotError, ModelError, ScrapeError)
