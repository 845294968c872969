"""What every publisher is: post one text, say where it went, or say how it failed; list the account's recent posts.

A publisher knows one platform and nothing of the queue. The posting guarantees (claim before the call, record
after it, never re-post an `unknown`) live in `bot.posting`, which reads `PublishError.outcome` to decide what
the candidate becomes:

    TRANSIENT     the request never reached the platform (refused connection, DNS, a timeout while connecting):
                  nothing was posted; `failed`, retried later with backoff
    RATE_LIMITED  the platform refused for now and said until when (`retry_at`): nothing was posted; `failed`,
                  retried at `retry_at`, and the bot posts nothing else before then
    PERMANENT     the platform refused this post (duplicate content, a subreddit rule): `failed` with the
                  platform's words; a person decides
    ACCOUNT       the platform refused the account or app, not this post (bad credentials, no write access):
                  nothing was posted; the candidate goes back to where it was, and the job reports the error
    UNKNOWN       the request may have been acted on (a timeout after sending, a dropped connection, a 5xx answer
                  to the POST): `unknown`; never re-posted automatically, reconciled against `recent_posts`
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Protocol


class Outcome(StrEnum):
    TRANSIENT = "transient"
    RATE_LIMITED = "rate_limited"
    PERMANENT = "permanent"
    ACCOUNT = "account"
    UNKNOWN = "unknown"


class PublishError(Exception):
    """A post that did not (certainly) happen; the message is one sentence for people, with no secret in it."""

    def __init__(self, message: str, *, outcome: Outcome, retry_at: datetime | None = None) -> None:
        super().__init__(message)
        self.outcome = outcome
        self.retry_at = retry_at  # aware UTC; RATE_LIMITED only: when the platform will take posts again


@dataclass(frozen=True)
class Posted:
    """Where a post went: the platform's id for it and a link a person can open."""

    remote_id: str
    url: str


@dataclass(frozen=True)
class PostKey:
    """What makes a post the same post when it is sent again: the bot, the candidate and its text (an edited text is
    another post). Platforms that can refuse a repeat take it from here: Mastodon's Idempotency-Key, Bluesky's record
    key. Stable across claims, so a candidate approved again after an unknown outcome cannot post twice there."""

    bot: str
    candidate_id: int
    text: str
    created_at: datetime  # when the candidate was sampled (aware UTC): a stable time, for keys that hold one

    @property
    def digest(self) -> str:
        """32 hex characters, the same for the same bot, candidate and text."""
        return hashlib.sha256(f"nnbot\0{self.bot}\0{self.candidate_id}\0{self.text}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class RemotePost:
    """One of the account's own recent posts, as the platform lists it (for reconciling `unknown` candidates)."""

    remote_id: str
    url: str
    text: str  # the Reddit title, the X post's text, the file line's text
    created_at: datetime | None  # aware UTC
    destination: str | None = None  # the subreddit ("test", no "r/"), None where the platform has no such thing
    bot: str | None = None  # the bot that made it, where the platform records that (the file's lines); else None


class Publisher(Protocol):
    """One platform account (and destination) to post to."""

    def describe(self) -> str:
        """Where posts go, for people: "r/test as u/alice", "@nnbot on X", "the file /srv/posts.jsonl"."""
        ...

    def publish(self, text: str, *, key: PostKey) -> Posted:
        """Post `text` once; no retry of the request after it may have been sent. Raises `PublishError`. `key` is the
        same each time the same candidate's text is sent: a platform that can refuse a repeat uses it."""
        ...

    def recent_posts(self, *, limit: int) -> list[RemotePost]:
        """The account's newest posts, newest first; raises `PublishError` when they cannot be read."""
        ...

    def close(self) -> None: ...
