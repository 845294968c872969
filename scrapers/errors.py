"""The one exception root of `scrapers`: every failure a user can fix is a `ScrapeError` with a full sentence."""


class ScrapeError(Exception):
    """Text could not be brought in; the message says what went wrong and how to fix it."""


class ImportFormatError(ScrapeError):
    """A file is empty, unreadable or not in the format it claims to be."""


class SourceUnavailableError(ScrapeError):
    """One subreddit or account cannot be read (missing, private, banned); other sources may still be."""


class RateLimitError(ScrapeError):
    """The API asked us to wait and the user chose not to (`--no-wait`), or it kept refusing after waiting."""
