"""Posting to Mastodon: one status per call through Mastodon.py, as the account MASTODON_ACCESS_TOKEN belongs to.

Each status carries an Idempotency-Key made from the candidate (`PostKey.digest`). Mastodon keeps a key for an hour
and answers a repeat with the status it made first, creating nothing: a post whose answer was lost (UNKNOWN) and
that a person approves again within the hour comes back as the first status, not a second one. The instance's own
length limit is read once, and a longer text is refused before anything is sent.

Mastodon.py is told never to wait: its default rate-limit modes sleep through a 429 and send the request again, a
POST included; here a 429 raises and becomes RATE_LIMITED until X-RateLimit-Reset. Its network errors keep the
requests exception as their context, which tells a request that never went out (TRANSIENT) from one that may have
been acted on (UNKNOWN). Failures: 401, 403 (a token without write:statuses), an application's token without a user
are ACCOUNT; a 422 (the text: too long, blank) is PERMANENT; a 5xx, a timeout waiting for the answer or a dropped
connection after the POST are UNKNOWN. Reads (the instance, the account, its statuses) post nothing: their failures
are never UNKNOWN.
"""

from __future__ import annotations

import logging
import re
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from bot import __version__
from bot.config import Settings
from bot.errors import ConfigError
from bot.publishers.base import Outcome, PostKey, Posted, PublishError, RemotePost
from bot.publishers.sending import connection_failure
from bot.publishers.text import grapheme_count
from scrapers.http import TIMEOUT
from scrapers.mastodon import (
    DEFAULT_RESET,
    PAGE_SIZE,
    RESET_MARGIN,
    http_status,
    instance_domain,
    mastodon_words,
    open_client,
    status_text,
)

logger = logging.getLogger(__name__)

DEFAULT_MAX_CHARACTERS = 500  # Mastodon's own limit, for an instance that does not say
DEFAULT_URL_CHARACTERS = 23  # what Mastodon counts a link as, for an instance that does not say
URL = re.compile(r"https?://[^\s<>\"]*[^\s<>\".,:;!?)\]'’]", re.IGNORECASE)  # a link, as Mastodon finds it
REMOTE_MENTION = re.compile(r"(?<![=/\w])(@\w+(?:[\w.-]+\w)?)@\w+(?:[.-]+\w+)*")  # "@user@domain" counts as "@user"
NO_USER = "requires an authenticated user"  # in Mastodon's 422 for an application's own token
NEW_TOKEN = ("make a new application under the instance's Preferences, Development with the scopes write:statuses "
             "and read, and set MASTODON_ACCESS_TOKEN to its access token")
BOT_FLAG = "This is an automated account"  # the profile setting that marks an account as a bot


@dataclass(frozen=True)
class Limits:
    """How long a status may be on the instance, as it counts (configuration.statuses of /api/v2/instance)."""

    max_characters: int
    url_characters: int  # what any link counts as, whatever its length

    def length(self, text: str, spoiler_text: str = "") -> int:
        """Graphemes of the content warning and the stripped text, a link as `url_characters`, `@user@domain` as
        `@user`: Mastodon's StatusLengthValidator."""
        counted = REMOTE_MENTION.sub(r"\1", URL.sub("x" * self.url_characters, text.strip()))
        return grapheme_count(spoiler_text + counted)


class MastodonPublisher:
    """The Mastodon account MASTODON_ACCESS_TOKEN belongs to, on the instance at MASTODON_API_BASE_URL."""

    def __init__(self, settings: Settings, *, visibility: str = "unlisted", spoiler_text: str | None = None,
                 language: str | None = None, timeout: tuple[float, float] = TIMEOUT) -> None:
        """`visibility`, `spoiler_text`, `language`: every status's, from the bot's `[bot.mastodon]`; `timeout`:
        seconds to connect, and to wait for an answer."""
        token = settings.mastodon_access_token.get_secret_value() if settings.mastodon_access_token else None
        fixes = {"MASTODON_API_BASE_URL": "set MASTODON_API_BASE_URL to the account's instance, like "
                                          "https://botsin.space",
                 "MASTODON_ACCESS_TOKEN": NEW_TOKEN}
        missing = [name for name, value in (("MASTODON_API_BASE_URL", settings.mastodon_api_base_url),
                                            ("MASTODON_ACCESS_TOKEN", token)) if not value]
        if missing:
            raise ConfigError(f"Posting to Mastodon needs {' and '.join(missing)}; "
                              f"{' and '.join(fixes[name] for name in missing)}.")
        assert settings.mastodon_api_base_url and token
        self.base_url = _base_url(settings.mastodon_api_base_url)
        self.instance = instance_domain(self.base_url)  # until the instance says its own domain
        self.options = {"visibility": visibility, "spoiler_text": spoiler_text, "language": language}
        self.spoiler_text = spoiler_text or ""
        self.api, self._answers = open_client(self.base_url, token=token, user_agent=f"nnbot/{__version__}",
                                              sleep_scale=settings.bot_sleep_scale, timeout=timeout, retries=False)
        self._limits: Limits | None = None
        self._account: dict[str, Any] | None = None  # {"id", "username", "acct" ("@name@instance"), "bot"}, once read

    def describe(self) -> str:
        if self._account:
            return f"{self._account['acct']} on Mastodon"
        return f"the Mastodon account of MASTODON_ACCESS_TOKEN on {self.instance}"

    def publish(self, text: str, *, key: PostKey) -> Posted:
        from mastodon import MastodonError

        limits = self.limits()  # both reads come before the POST: their failures have posted nothing
        account = self._me()
        length = limits.length(text, self.spoiler_text)
        if length > limits.max_characters:
            warning = " with its content warning" if self.spoiler_text else ""
            raise PublishError(f"The post is {length} characters long{warning} as {self.instance} counts them, more "
                               f"than its limit of {limits.max_characters}; shorten it or reject it.",
                               outcome=Outcome.PERMANENT)
        if not account["bot"]:
            logger.warning("%s is not marked as a bot; tick %r in its profile, as Mastodon's rules for bots ask",
                           account["acct"], BOT_FLAG)
        options = {name: value for name, value in self.options.items() if value}
        try:  # the same key for the same candidate's text: a repeat within Mastodon's hour answers the first status
            status = self.api.status_post(text, idempotency_key=key.digest, **options)
        except MastodonError as error:
            raise self._failure(error, what="the post", posting=True) from error
        status_id = status.get("id") if isinstance(status, Mapping) else None
        if not status_id:
            raise PublishError(f"{self.instance} accepted the post but sent no id for it, so it may have been "
                               f"posted; {self._look_for_it()}", outcome=Outcome.UNKNOWN)
        url = str(status.get("url") or status.get("uri") or f"{self.base_url}/@{account['username']}/{status_id}")
        logger.info("Posted to Mastodon: %s", url)
        return Posted(remote_id=str(status_id), url=url)

    def recent_posts(self, *, limit: int) -> list[RemotePost]:
        try:
            account = self._me()
            statuses = self._statuses(account, limit=limit)
        except PublishError as error:  # reading only: whatever failed, nothing was posted and it can be retried
            raise PublishError(str(error), outcome=Outcome.TRANSIENT) from error
        return [RemotePost(remote_id=str(s["id"]), url=str(s.get("url") or s.get("uri")),
                           text=status_text(s.get("content") or ""), created_at=_aware(s.get("created_at")))
                for s in statuses]

    def account_problem(self) -> str | None:
        """What Mastodon's rules for bot accounts ask that the account lacks (its bot flag), or why the account could
        not be read; None when all is well. Reads the account, posts nothing."""
        try:
            account = self._me()
        except PublishError as error:
            return str(error)
        if account["bot"]:
            return None
        return (f"the account {account['acct']} is not marked as a bot; tick '{BOT_FLAG}' in its profile "
                "(Preferences, Profile), as Mastodon's rules for bot accounts ask")

    def limits(self) -> Limits:
        """The instance's length limit, read once (/api/v2/instance; /api/v1/instance before Mastodon 4.0)."""
        from mastodon import MastodonError, MastodonNotFoundError
        from mastodon.errors import MastodonDeprecationWarning

        if self._limits is None:
            what = f"the settings of {self.instance}"
            try:
                instance = self.api.instance_v2()
            except MastodonNotFoundError:
                with warnings.catch_warnings():  # v1 is marked deprecated; it is the fallback for old instances
                    warnings.simplefilter("ignore", MastodonDeprecationWarning)
                    instance = self._read(self.api.instance_v1, what=what)
            except MastodonError as error:
                raise self._failure(error, what=what, posting=False) from error
            configuration = (instance.get("configuration") or {}).get("statuses") or {}
            self._limits = Limits(
                max_characters=_positive(configuration.get("max_characters") or instance.get("max_toot_chars"),
                                         DEFAULT_MAX_CHARACTERS),
                url_characters=_positive(configuration.get("characters_reserved_per_url"), DEFAULT_URL_CHARACTERS))
            self.instance = str(instance.get("domain") or instance.get("uri") or self.instance).lower()
        return self._limits

    def close(self) -> None:
        self.api.session.close()

    def _me(self) -> dict[str, Any]:
        """The id, handle and bot flag of the token's account, looked up once."""
        if self._account is None:
            self.limits()  # the instance's own domain, for the account's handle
            me = self._read(self.api.account_verify_credentials,
                            what="the lookup of MASTODON_ACCESS_TOKEN's account")
            if not (isinstance(me, Mapping) and me.get("id") and me.get("username")):
                raise PublishError(f"{self.instance} answered the lookup of MASTODON_ACCESS_TOKEN's account without "
                                   "the account; try again later.", outcome=Outcome.TRANSIENT)
            self._account = {"id": str(me["id"]), "username": str(me["username"]),
                             "acct": f"@{me['username']}@{self.instance}", "bot": bool(me.get("bot"))}
        return self._account

    def _statuses(self, account: Mapping[str, Any], *, limit: int) -> list[Mapping[str, Any]]:
        """The account's newest `limit` statuses (boosts left out: not its posts), newest first."""
        what = f"the list of {account['acct']}'s recent statuses"
        page = self._read(self.api.account_statuses, account["id"], exclude_reblogs=True,
                          limit=min(PAGE_SIZE, limit), what=what)
        statuses: list[Mapping[str, Any]] = []
        while page:
            statuses.extend(page[:limit - len(statuses)])
            if len(statuses) >= limit:
                break
            page = self._read(self.api.fetch_next, page, what=what)
        return statuses

    def _read(self, method: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
        """One GET; its failures as `PublishError`s, none of them UNKNOWN (a read posts nothing)."""
        from mastodon import MastodonError

        try:
            return method(*args, **kwargs)
        except MastodonError as error:
            raise self._failure(error, what=what, posting=False) from error

    def _look_for_it(self) -> str:
        acct = self._account["acct"] if self._account else "the account"
        return f"look for it among {acct}'s statuses before posting it again."

    def _failure(self, error: Exception, *, what: str, posting: bool) -> PublishError:
        """What a failed request means: whether it may have posted, and what to do about it, in one sentence."""
        from mastodon import MastodonNetworkError, MastodonRatelimitError

        status = http_status(error)
        answered = self._answers.last.status_code if self._answers.last is not None else None
        if isinstance(error, MastodonRatelimitError) and answered != 429:  # a rate-limit header it could not read
            if posting:
                return PublishError(f"{self.instance} answered the post with rate-limit headers Mastodon.py could not "
                                    f"read, so it may have been posted; {self._look_for_it()}", outcome=Outcome.UNKNOWN)
            return PublishError(f"{self.instance} answered {what} with rate-limit headers Mastodon.py could not read; "
                                "try again later.", outcome=Outcome.TRANSIENT)
        if isinstance(error, MastodonRatelimitError) or status == 429:
            retry_at = _retry_at(self._answers.reset_at())
            return PublishError(f"{self.instance} rate-limited {what} until {retry_at:%H:%M:%S} UTC; try again after "
                                "that.", outcome=Outcome.RATE_LIMITED, retry_at=retry_at)
        if isinstance(error, MastodonNetworkError):
            return connection_failure(error, where=self.instance, what=what, posting=posting,
                                      setting="MASTODON_API_BASE_URL", look=self._look_for_it())
        if status is None or status >= 500:  # an answer that is not JSON, or a server error: it may have acted
            said = "something that is not JSON" if status is None else f"HTTP {status} {mastodon_words(error)}"
            if posting:
                return PublishError(f"{self.instance} answered the post with {said}, so it may have been posted; "
                                    f"{self._look_for_it()}", outcome=Outcome.UNKNOWN)
            return PublishError(f"{self.instance} answered {what} with {said}; try again later.",
                                outcome=Outcome.TRANSIENT)
        return self._refusal(status, mastodon_words(error), what=what, posting=posting)

    def _refusal(self, status: int, words: str, *, what: str, posting: bool) -> PublishError:
        """A 4xx (not 429): Mastodon did not act on the request. ACCOUNT when the token or the settings are at
        fault (any post would be refused), PERMANENT when this post is (sending it again gets the same)."""
        if status == 401:
            return PublishError(f"{self.instance} refused MASTODON_ACCESS_TOKEN (HTTP 401: {words}); {NEW_TOKEN}.",
                                outcome=Outcome.ACCOUNT)
        if status == 403:
            return PublishError(f"{self.instance} refused {what} for MASTODON_ACCESS_TOKEN (HTTP 403: {words}); the "
                                f"token lacks a scope: {NEW_TOKEN}.", outcome=Outcome.ACCOUNT)
        if status == 422 and NO_USER in words:
            return PublishError(f"MASTODON_ACCESS_TOKEN is an application's own token, not an account's (HTTP 422: "
                                f"{words}); copy \"Your access token\" from the application's page under the "
                                "instance's Preferences, Development.", outcome=Outcome.ACCOUNT)
        if status in (404, 405, 410):
            return PublishError(f"{self.instance} has no Mastodon API where MASTODON_API_BASE_URL points (HTTP "
                                f"{status} for {what}: {words}); set it to the instance's address, like "
                                "https://botsin.space.", outcome=Outcome.ACCOUNT)
        if posting:
            return PublishError(f"{self.instance} refused the post (HTTP {status}: {words}); edit its text or reject "
                                "it.", outcome=Outcome.PERMANENT)
        return PublishError(f"{self.instance} answered {what} with HTTP {status} ({words}); try again later.",
                            outcome=Outcome.TRANSIENT)


def _base_url(value: str) -> str:
    """MASTODON_API_BASE_URL as a URL: 'botsin.space' means https://botsin.space; other schemes are refused."""
    url = value.strip().rstrip("/")
    if "://" not in url:
        url = f"https://{url}"
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"MASTODON_API_BASE_URL {value!r} is not an http(s) address; set it to the account's "
                          "instance, like https://botsin.space.")
    return url


def _retry_at(reset: datetime | None) -> datetime:
    """When posting may go on: X-RateLimit-Reset plus a margin, never in the past; 5 minutes when it is unsaid."""
    now = datetime.now(UTC)
    if reset is None:
        return now + timedelta(seconds=DEFAULT_RESET)
    return max(reset, now) + timedelta(seconds=RESET_MARGIN)


def _positive(value: object, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default


def _aware(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        return datetime.fromisoformat(str(value)).astimezone(UTC) if value else None
    except ValueError:
        return None
