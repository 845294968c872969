"""Reading a Bluesky account's posts from its author feed (`app.bsky.feed.getAuthorFeed`), newest first, page by page.

The feed is the AppView's. Logged in, a client reads it through the account's server (BLUESKY_URL), which passes the
request on; logged out, bsky.social answers `app.bsky.*` queries with 401 AuthMissing, so public reads go to
Bluesky's public AppView instead (`read_url`). Requests go through the atproto SDK, which never retries: reads that
fail on the way (a 5xx, a dropped connection) are tried again here, a few times, since a read changes nothing.
"""

from __future__ import annotations

import logging
import re
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import httpx

from scrapers.documents import Document, Page
from scrapers.errors import RateLimitError, ScrapeError, SourceUnavailableError
from scrapers.waiting import Waiter

if TYPE_CHECKING:
    from atproto import Client

logger = logging.getLogger(__name__)

SOURCE = "bluesky"  # documents' source
DEFAULT_SERVER = "https://bsky.social"  # BLUESKY_URL's default: Bluesky's own PDS (its entryway)
PUBLIC_APPVIEW = "https://public.api.bsky.app"  # Bluesky's AppView for reads without a login
POST = "app.bsky.feed.post"  # the collection (lexicon) of posts
POST_URL = "https://bsky.app/profile/{handle}/post/{rkey}"  # where a person opens a post
REPOST_REASON = "app.bsky.feed.defs#reasonRepost"  # a feed item that is the account's repost of a post
FEED_PAGE = 100  # the most posts getAuthorFeed gives per request
FEED_CAP = 10_000  # posts read at most in one scrape (BlueskySource's limit)
TIMEOUT = httpx.Timeout(30.0, connect=10.0)  # seconds: to connect, and for each read or write of a request
READ_RETRIES = 3  # tries after the first, for a read that failed on the way (5xx, connection dropped, timeout)
READ_BACKOFF = 2.0  # seconds before the first retry; doubles each time (times the sleep scale)
RESET_MARGIN = 1.0  # seconds added to RateLimit-Reset, a Unix time in whole seconds
DEFAULT_RESET = 300.0  # seconds: Bluesky's rate-limit windows are 5 minutes, for a 429 that does not say when
MAX_RATE_LIMIT_WAITS = 5  # 429s in a row for one request before giving up
REPLY, REPOST = "reply", "repost"  # skip reasons
HANDLE = re.compile(r"^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$")  # atproto's syntax
DID = re.compile(r"^did:[a-z]+:[a-zA-Z0-9._:%-]*[a-zA-Z0-9._-]$")
PROFILE_URL = re.compile(r"^https?://bsky\.app/profile/([^/?#]+)")  # a profile's address, pasted whole
NOT_FOUND = ("Profile not found", "Actor not found")  # the AppView's words for an actor it does not know
UNAVAILABLE_ERRORS = {"BlockedActor": "blocks this account", "BlockedByActor": "is blocked by this account",
                      "AccountTakedown": "was taken down", "AccountDeactivated": "is deactivated"}


def bluesky_actor(text: str) -> str:
    """'@Name.bsky.social', 'https://bsky.app/profile/name.bsky.social' or a DID -> 'name.bsky.social' or the DID;
    `ScrapeError` if it cannot be either."""
    name = text.strip()
    if found := PROFILE_URL.match(name):
        name = found.group(1)
    name = name.removeprefix("@")
    if DID.match(name):
        return name
    if HANDLE.match(name.lower()):
        return name.lower()
    hint = f" (a handle looks like {name.lower()}.bsky.social)" if re.fullmatch(r"[A-Za-z0-9-]+", name) else ""
    raise ScrapeError(f"{text!r} is not a Bluesky handle or DID{hint}; check the spelling.")


def read_url(server: str, *, logged_in: bool) -> str:
    """Where feeds are read: the account's server when logged in; logged out, Bluesky's public AppView in place of
    bsky.social, which serves feeds only to its own accounts, and any other server as it is (a test server, a
    self-hosted AppView)."""
    if logged_in or server.rstrip("/") != DEFAULT_SERVER:
        return server
    return PUBLIC_APPVIEW


def xrpc_client(url: str, *, timeout: httpx.Timeout = TIMEOUT) -> Client:
    """An atproto SDK client for the XRPC server at `url`, with our timeouts (the SDK's own are 5 seconds)."""
    from atproto import Client
    from atproto_client.request import Request

    return Client(base_url=url, request=Request(timeout=timeout))


def xrpc_error(error: BaseException) -> tuple[int | None, str, str]:
    """The HTTP status, XRPC error name and message of an SDK error ("" where it carries none)."""
    response = getattr(error, "response", None)
    if response is None:
        return None, "", ""
    content = response.content
    name = getattr(content, "error", None) or (content.get("error") if isinstance(content, dict) else None)
    message = getattr(content, "message", None) or (content.get("message") if isinstance(content, dict) else None)
    return response.status_code, str(name or ""), str(message or "")


def reset_seconds(error: BaseException) -> float:
    """Seconds until a 429's RateLimit-Reset (a Unix time), with a margin; five minutes where it does not say."""
    response = getattr(error, "response", None)
    try:
        reset = float(response.headers["ratelimit-reset"])  # type: ignore[union-attr]
    except (AttributeError, KeyError, TypeError, ValueError):
        return DEFAULT_RESET
    return max(reset - time.time(), 0.0) + RESET_MARGIN


def post_url(uri: str, handle: str) -> str:
    """https://bsky.app/profile/HANDLE/post/RKEY for the post at://DID/app.bsky.feed.post/RKEY."""
    return POST_URL.format(handle=handle, rkey=uri.rsplit("/", 1)[-1])


def parse_time(value: object) -> datetime | None:
    """An atproto datetime ("2023-11-14T22:13:20.000Z", or with an offset) as aware UTC; None if it is not one."""
    try:
        moment = datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:  # the lexicon requires a zone; a naive one cannot be placed
        return None
    return moment.astimezone(UTC)


class BlueskyReader:
    """An account's posts from its author feed, through `client` (logged in, or anonymous at the public AppView)."""

    def __init__(self, client: Client, *, url: str, waiter: Waiter) -> None:
        """`url`: the server `client` reads from, for messages."""
        self.client = client
        self.waiter = waiter
        self.server = urlsplit(url).netloc or url

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.request.close()

    def pages(self, actor: str, *, limit: int = FEED_CAP, replies: bool = False,
              reposts: bool = False) -> Iterator[Page]:
        """`actor`'s posts, newest first, until `limit` were read or the feed ends (a page with no items or no
        cursor: a page may come back short, or even empty of posts, while more follow)."""
        from atproto import models

        name = bluesky_actor(actor)
        who = name if name.startswith("did:") else f"@{name}"
        # Replies are left out by the AppView itself (the filter); reposts come along and are left out here.
        kind = "posts_with_replies" if replies else "posts_no_replies"
        fetched, cursor = 0, None
        while fetched < limit:
            params = models.AppBskyFeedGetAuthorFeed.Params(actor=name, filter=kind, cursor=cursor,
                                                            limit=min(FEED_PAGE, limit - fetched))
            answer = self._call(lambda: self.client.app.bsky.feed.get_author_feed(params), who=who)
            items = list(answer.feed)[:limit - fetched]
            page = _page(items, replies=replies, reposts=reposts)
            fetched += page.fetched
            yield page
            cursor = answer.cursor
            if not items or not cursor:
                return

    def _call(self, request: Callable[[], Any], *, who: str) -> Any:
        """One query; rate limits waited out, failures on the way retried, Bluesky's refusals one sentence each."""
        from atproto_client import exceptions

        what, waits, retries = f"{who}'s posts", 0, 0
        while True:
            try:
                return request()
            except exceptions.RateLimitExceededError as error:
                waits += 1
                if waits > MAX_RATE_LIMIT_WAITS:
                    raise RateLimitError(f"Bluesky kept rate-limiting {what} after {MAX_RATE_LIMIT_WAITS} waits; "
                                         "try again later.") from error
                self.waiter.rate_limited(service="Bluesky", seconds=reset_seconds(error), what=f"reading {what}")
            except (exceptions.BadRequestError, exceptions.UnauthorizedError) as error:
                raise self._refusal(error, who=who) from error
            except (exceptions.RequestErrorBase, httpx.HTTPError) as error:  # 5xx, timeouts, dropped connections
                retries += 1
                if retries > READ_RETRIES:
                    raise self._failure(error, what=what) from error
                logger.info("reading %s failed (%s); trying again", what, describe(error))
                self.waiter.sleep(READ_BACKOFF * 2 ** (retries - 1) * self.waiter.scale)
            except exceptions.ModelError as error:
                raise ScrapeError(f"Bluesky answered {what} with something other than a feed of posts; try again "
                                  "later.") from error

    def _refusal(self, error: BaseException, *, who: str) -> ScrapeError:
        status, name, message = xrpc_error(error)
        words, what = message or name or f"HTTP {status}", f"{who}'s posts"
        if message in NOT_FOUND:
            return SourceUnavailableError(f"Bluesky has no account {who}; check the handle.")
        if name in UNAVAILABLE_ERRORS:
            return SourceUnavailableError(f"Bluesky will not show {what}: the account {UNAVAILABLE_ERRORS[name]} "
                                          f"({words}); pick another account.")
        if status in (401, 403) or name in ("AuthMissing", "ExpiredToken", "InvalidToken"):
            return ScrapeError(f"{self.server} wants a login to read {what} (HTTP {status} {words}); set "
                               "BLUESKY_HANDLE and BLUESKY_APP_PASSWORD, or leave BLUESKY_URL unset to read through "
                               "Bluesky's public AppView.")
        return ScrapeError(f"Bluesky refused to read {what} (HTTP {status} {words}); check the handle and "
                           "BLUESKY_URL.")

    def _failure(self, error: BaseException, *, what: str) -> ScrapeError:
        status, _, _ = xrpc_error(error)
        if status is not None:
            return ScrapeError(f"Bluesky kept failing (HTTP {status}) while reading {what}; what was fetched is "
                               "kept, so run the command again later to continue.")
        return ScrapeError(f"The connection to {self.server} failed while reading {what} ({describe(error)}); what "
                           "was fetched is kept, so check your network and BLUESKY_URL and run the command again.")


def describe(error: BaseException) -> str:
    """A few words on why a request got no answer: the SDK wraps httpx's errors (a hang-up comes unwrapped)."""
    chain = [error, error.__cause__]  # not __context__: an error raised while handling another is about itself
    if any(isinstance(e, httpx.ConnectTimeout) for e in chain):
        return "connecting timed out"
    if any(isinstance(e, httpx.ConnectError) for e in chain):
        return "no connection could be made"
    if any(isinstance(e, httpx.TimeoutException) for e in chain):
        return "no answer in time"
    if any(isinstance(e, (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)) for e in chain):
        return "the connection dropped before an answer"
    status, name, _ = xrpc_error(error)
    return f"HTTP {status} {name}".strip() if status else type(error).__name__


def _page(items: list[Any], *, replies: bool, reposts: bool) -> Page:
    documents, skipped = [], Counter[str]()
    for item in items:
        reason = getattr(item.reason, "py_type", None) if item.reason is not None else None
        if reason == REPOST_REASON and not reposts:
            skipped[REPOST] += 1
        elif item.reply is not None and not replies:  # the filter leaves replies out; this keeps it so
            skipped[REPLY] += 1
        else:
            documents.append(_document(item.post))
    return Page(documents=tuple(documents), fetched=len(items), skipped=dict(skipped))


def _document(post: Any) -> Document:
    # The SDK gives a model for a record it could validate, else a DotDict: both answer these attributes.
    record, handle = post.record, post.author.handle
    return Document(source=SOURCE, external_id=post.uri, text=str(getattr(record, "text", None) or "").strip(),
                    author=handle, created_at=parse_time(getattr(record, "created_at", None)),
                    score=post.like_count if isinstance(post.like_count, int) else None,
                    url=post_url(post.uri, handle))
