"""The record every source yields: one document of a corpus, with where it came from."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Document:
    """One text of a corpus.

    `(source, external_id)` identifies it within a corpus, so re-importing or re-scraping adds only what is new.
    """

    source: str  # "file", "reddit", "x", ...
    external_id: str  # the source's id (post id, tweet id) or, for plain files, a hash of the text
    text: str
    author: str | None = None
    created_at: datetime | None = None  # timezone-aware UTC where the source says
    score: int | None = None  # upvotes, likes
    url: str | None = None


@dataclass(frozen=True, slots=True)
class Page:
    """One fetched page of a listing or timeline: what to store, and what was read but left out, and why."""

    documents: tuple[Document, ...]
    fetched: int  # items the API returned that count toward the limit: documents plus skipped
    skipped: dict[str, int]  # reason ("stickied", "removed", "nsfw", "reply", ...) -> how many
