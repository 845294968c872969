"""The one exception root of `scrapers`: every failure a user can fix is a `ScrapeError` with a full sentence."""


class ScrapeError(Exception):
    """Text could not be brought in; the message says what went wrong and how to fix it."""


class ImportFormatError(ScrapeError):
    """A file is empty, unreadable or not in the format it claims to be."""
