"""Getting text in: file importers, Reddit and X scrapers, each yielding `Document` records."""

from scrapers.documents import Document
from scrapers.errors import ScrapeError

__all__ = ["Document", "ScrapeError"]
