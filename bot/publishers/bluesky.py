"""Posting to Bluesky: one `app.bsky.feed.post` record per post, created at a record key the candidate fixes, so the
same post sent again can never become a second post.

The record key (rkey) is a TID derived from the `PostKey` (`record_key`): every claim of a candidate's text writes at
the same key, and Bluesky's server (the PDS) never creates a record where one exists (it answers 500 and writes
nothing: bluesky-social/atproto#3718). So after an answer that leaves the outcome open (a 5xx, a timeout or dropped
connection after sending), the post is looked up at its key (`com.atproto.repo.getRecord`): found means posted,
RecordNotFound means not posted (TRANSIENT: the retry writes at the same key), and only a failed lookup leaves it
UNKNOWN, for reconcile. A request that certainly never left (no connection) is TRANSIENT; Bluesky's refusals are
RATE_LIMITED (429, until its RateLimit-Reset), PERMANENT (this post: the PDS's words) or ACCOUNT (the login).

A text over 300 graphemes is refused before sending (nnbot's filters count the same way). The record holds the text
and the time only: no facets, so a mention or link would stay plain, unlinked text (the default filters reject both
for Bluesky bots), and no `langs`, since nnbot does not know the corpus's language. The login, shared by every
process, is `bot.publishers.bluesky_session`.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
from atproto_core.exceptions import AtProtocolError

from bot.config import Settings
from bot.errors import ConfigError
from bot.platforms import PLATFORMS
from bot.publishers.base import Outcome, PostKey, Posted, PublishError, RemotePost
from bot.publishers.bluesky_session import APP_PASSWORDS, BlueskySession, certainly_not_sent, identifier
from bot.publishers.text import grapheme_count
from scrapers.bluesky import POST, TIMEOUT, describe, parse_time, post_url, reset_seconds, xrpc_error

logger = logging.getLogger(__name__)

MAX_GRAPHEMES = PLATFORMS["bluesky"].max_length  # 300, the post lexicon's maxGraphemes
LIST_PAGE = 100  # the most records listRecords gives per request
TID_ALPHABET = "234567abcdefghijklmnopqrstuvwxyz"  # base32-sortable: a TID sorts as its number does
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CREDENTIALS = "BLUESKY_HANDLE and BLUESKY_APP_PASSWORD"
FAILED_ON_THE_WAY = (AtProtocolError, httpx.HTTPError)  # the SDK's errors, and httpx's that it leaves unwrapped


def record_key(key: PostKey) -> str:
    """The post's rkey: a TID (13 characters: 53 bits of microseconds since 1970, 10 bits of clock id), the same each
    time this candidate's text is sent.

    Its time is when the candidate was sampled, to the millisecond; the microseconds are the candidate's id (mod
    1000), since a refill queues its candidates with one `created_at`; the clock id is 10 bits of the key's digest,
    so an edited text gets another key. Two candidates share a key only if sampled in the same millisecond with ids
    1000 apart and the same 10 bits of digest; the post that finds its key taken is refused, not lost (`publish`).
    """
    created = key.created_at if key.created_at.tzinfo else key.created_at.replace(tzinfo=UTC)
    micros = (created - EPOCH) // timedelta(milliseconds=1) * 1000 + key.candidate_id % 1000
    number = (micros << 10) | (int(key.digest, 16) & 0x3FF)
    return "".join(TID_ALPHABET[(number >> shift) & 31] for shift in range(60, -1, -5))


class BlueskyPublisher:
    """The Bluesky account of BLUESKY_HANDLE: posts go to its feed (Bluesky has no destination)."""

    def __init__(self, settings: Settings, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        """`timeout`: httpx's, for connecting and for each read and write of a request."""
        app_password = settings.bluesky_app_password
        missing = [name for name, value in (("BLUESKY_HANDLE", identifier(settings)),
                                            ("BLUESKY_APP_PASSWORD", app_password and app_password.get_secret_value()))
                   if not value]
        if missing:
            raise ConfigError(f"Posting to Bluesky needs {' and '.join(missing)}: the account's handle, and an app "
                              f"password made for nnbot at {APP_PASSWORDS} (Settings, Privacy and security, App "
                              "passwords).")
        server = urlsplit(settings.bluesky_url)
        if server.scheme not in ("http", "https") or not server.netloc:
            raise ConfigError(f"BLUESKY_URL {settings.bluesky_url!r} is not an http(s) URL; set it to the account's "
                              "server, or leave it unset for https://bsky.social.")
        self.session = BlueskySession(settings, timeout=timeout)

    def describe(self) -> str:
        return f"@{self.session.identifier} on Bluesky"

    def publish(self, text: str, *, key: PostKey) -> Posted:
        length = grapheme_count(text)
        if length > MAX_GRAPHEMES:
            raise PublishError(f"The post is {length} graphemes long, over Bluesky's {MAX_GRAPHEMES}; shorten it or "
                               "reject it.", outcome=Outcome.PERMANENT)
        rkey = record_key(key)
        created_at = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        try:
            created = self.session.call(lambda client: client.com.atproto.repo.create_record({
                "repo": self.session.did, "collection": POST, "rkey": rkey,
                "record": {"$type": POST, "text": text, "createdAt": created_at}}))
        except FAILED_ON_THE_WAY as error:
            return self._after(error, text=text, rkey=rkey)
        url = post_url(created.uri, self.session.handle)
        logger.info("Posted to Bluesky: %s", url)
        return Posted(remote_id=created.uri, url=url)

    def recent_posts(self, *, limit: int) -> list[RemotePost]:
        """The account's newest posts by record key (a TID: for nnbot's, when the candidate was sampled), newest
        first, from its own repo: a post shows there at once, unlike in the AppView's feeds."""
        records: list = []
        cursor = None
        try:
            while len(records) < limit:
                page = self.session.call(lambda client, cursor=cursor: client.com.atproto.repo.list_records({
                    "repo": self.session.did, "collection": POST, "limit": min(LIST_PAGE, limit - len(records)),
                    "cursor": cursor}))
                records.extend(page.records[:limit - len(records)])
                cursor = page.cursor
                if not page.records or not cursor:
                    break
        except PublishError as error:  # reading only: whatever failed, nothing was posted and it can be retried
            raise PublishError(str(error), outcome=Outcome.TRANSIENT) from error
        except FAILED_ON_THE_WAY as error:
            raise PublishError(f"Bluesky did not list @{self.session.identifier}'s recent posts ({describe(error)}); "
                               "try again later.", outcome=Outcome.TRANSIENT) from error
        if not records:
            return []
        handle = self.session.handle
        return [RemotePost(remote_id=r.uri, url=post_url(r.uri, handle), text=str(getattr(r.value, "text", "")),
                           created_at=parse_time(getattr(r.value, "created_at", None))) for r in records]

    def close(self) -> None:
        self.session.close()

    def _after(self, error: BaseException, *, text: str, rkey: str) -> Posted:
        """What a failed createRecord means; where the post may exist, the answer is looked up at its key."""
        from atproto_client.exceptions import BadRequestError, RateLimitExceededError, UnauthorizedError

        status, name, message = xrpc_error(error)
        words = (message or name or f"HTTP {status}").rstrip(".")
        if isinstance(error, RateLimitExceededError):
            retry_at = datetime.now(UTC) + timedelta(seconds=reset_seconds(error))
            raise PublishError(f"Bluesky rate-limited the post until {retry_at:%H:%M:%S} UTC; try again after that.",
                               outcome=Outcome.RATE_LIMITED, retry_at=retry_at) from error
        if isinstance(error, UnauthorizedError) or name in ("ExpiredToken", "InvalidToken"):
            raise PublishError(f"Bluesky refused the post for the account (HTTP {status} {words}); check "
                               f"{CREDENTIALS}, or make a new app password at {APP_PASSWORDS}.",
                               outcome=Outcome.ACCOUNT) from error
        if isinstance(error, BadRequestError):
            raise PublishError(f"Bluesky refused the post ({words}); edit its text or reject it.",
                               outcome=Outcome.PERMANENT) from error
        if certainly_not_sent(error):
            raise PublishError(f"Could not connect to Bluesky ({describe(error)}), so nothing was posted; check the "
                               "network and BLUESKY_URL.", outcome=Outcome.TRANSIENT) from error
        return self._look_up(rkey, text=text, why=describe(error))

    def _look_up(self, rkey: str, *, text: str, why: str) -> Posted:
        """The post after an unclear answer (`why`): at its record key, or not there, or not known (the lookup
        failed)."""
        from atproto_client.exceptions import BadRequestError

        handle = self.session.identifier
        try:
            found = self.session.call(lambda client: client.com.atproto.repo.get_record({
                "repo": self.session.did, "collection": POST, "rkey": rkey}))
        except BadRequestError as error:
            if xrpc_error(error)[1] != "RecordNotFound":
                raise self._unknown(why, error) from error
            raise PublishError(f"Bluesky gave no clear answer to the post ({why}) and holds no post at its record key "
                               f"{rkey}, so it was not posted; it is tried again later at the same key, where Bluesky "
                               "never makes a second post.", outcome=Outcome.TRANSIENT) from error
        except (*FAILED_ON_THE_WAY, PublishError) as error:
            raise self._unknown(why, error) from error
        if getattr(found.value, "text", None) != text:  # the key was taken before: this post cannot have made it
            raise PublishError(f"Bluesky holds another post at this post's record key {rkey} (@{handle}'s "
                               f"{found.uri}), so this one was not posted; edit its text or reject it.",
                               outcome=Outcome.PERMANENT)
        url = post_url(found.uri, self.session.handle)
        logger.info("Bluesky gave no clear answer to the post (%s), but it was made: %s", why, url)
        return Posted(remote_id=found.uri, url=url)

    def _unknown(self, why: str, error: BaseException) -> PublishError:
        lookup = str(error).rstrip(".") if isinstance(error, PublishError) else describe(error)
        return PublishError(f"Bluesky gave no clear answer to the post ({why}), and looking it up failed too "
                            f"({lookup}), so it may have been posted; look for it among @{self.session.identifier}'s "
                            "posts (`bot queue reconcile` does) before posting it again.", outcome=Outcome.UNKNOWN)

