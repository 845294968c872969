"""Reading an account's statuses on Mastodon through Mastodon.py, newest first, one page at a time.

An account is read on its own instance (`name@instance`), where its whole history is; public statuses need no token
on most instances. MASTODON_ACCESS_TOKEN is sent only to the instance of MASTODON_API_BASE_URL, never elsewhere.
Statuses come as HTML; `status_text` turns them back into the plain text that was posted.

What goes into a corpus: the account's own public and unlisted statuses, threads (replies to itself) included.
Left out, each counted by reason: boosts and replies to others (unless asked for), followers-only and direct
statuses (a token that can see them must not copy them into a bot's voice), statuses behind a content warning (their
author thought they needed one; a bot trained on them would post that kind of text without it), and statuses with
no text (media only).
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urlsplit

import requests

from scrapers.documents import Document, Page
from scrapers.errors import RateLimitError, ScrapeError, SourceUnavailableError
from scrapers.http import TIMEOUT, RetryingAdapter, describe
from scrapers.waiting import Waiter

if TYPE_CHECKING:
    from mastodon import Mastodon

logger = logging.getLogger(__name__)

MASTODON_SOURCE = "mastodon"
PAGE_SIZE = 40  # statuses per request: the most Mastodon serves
STATUSES_CAP = 10_000  # statuses one scrape reads at most (bots.toml's `limit` allows no more)
RESET_MARGIN = 1.0  # seconds added to X-RateLimit-Reset, against clocks that differ a little
DEFAULT_RESET = 300.0  # seconds: Mastodon's API limits are per 5 minutes, for a 429 that does not say when
MAX_RATE_LIMIT_WAITS = 5  # 429s in a row for one request before giving up
PUBLIC = ("public", "unlisted")  # visibilities anyone may read and a corpus may keep
EXTERNAL_ID_LENGTH = 128  # the store's column for a document's external id
# Skip reasons, as `Page.skipped` counts them
BOOST, REPLY, PRIVATE, CONTENT_WARNING, NO_TEXT = "boost", "reply", "private", "content_warning", "no_text"

# "name", "@name", "name@instance", "@name@instance" (Mastodon's username rule), or a profile URL
ACCOUNT = re.compile(r"^@?(?P<user>[A-Za-z0-9_]+(?:[A-Za-z0-9_.-]*[A-Za-z0-9_])?)"
                     r"(?:@(?P<domain>[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*(?::\d+)?))?$")
PROFILE_URL = re.compile(r"^https?://(?P<domain>[^/@\s]+)/@(?P<user>[^/@\s]+)/?$")


@dataclass(frozen=True)
class MastodonAccess:
    """MASTODON_API_BASE_URL and MASTODON_ACCESS_TOKEN, from settings; both optional for reading."""

    api_base_url: str | None = None
    access_token: str | None = field(default=None, repr=False)
    user_agent: str | None = None  # sent with every request; instances' admins see who reads


@dataclass(frozen=True)
class AccountName:
    username: str
    domain: str | None  # the account's instance ("mastodon.social"); None: MASTODON_API_BASE_URL's

    def label(self, instance: str) -> str:
        return f"@{self.username}@{self.domain or instance}"


def mastodon_account(text: str) -> AccountName:
    """'Gargron@mastodon.social', '@Gargron', or 'https://mastodon.social/@Gargron'; `ScrapeError` otherwise."""
    cleaned = text.strip()
    if url := PROFILE_URL.match(cleaned):
        cleaned = f"{url['user']}@{url['domain']}"
    match = ACCOUNT.match(cleaned)
    if not match:
        raise ScrapeError(f"{text!r} is not a Mastodon account; write it as name@instance, like "
                          "Gargron@mastodon.social.")
    return AccountName(match["user"], match["domain"].lower() if match["domain"] else None)


def instance_domain(base_url: str) -> str:
    """'https://botsin.space/' -> 'botsin.space' (what `name@instance` names)."""
    return (urlsplit(base_url if "://" in base_url else f"https://{base_url}").netloc or base_url).lower()


def home_instance(account: AccountName, access: MastodonAccess) -> tuple[str, str | None]:
    """Where to read `account` (its own instance, which holds all of its statuses) and the token to send there: the
    token only when that is MASTODON_API_BASE_URL's instance, for which it was made."""
    base = access.api_base_url
    if account.domain is None:
        if not base:
            raise ScrapeError(f"Say which instance @{account.username} is on, like {account.username}@"
                              "mastodon.social, or set MASTODON_API_BASE_URL to it.")
        return base, access.access_token
    if base and instance_domain(base) == account.domain:
        return base, access.access_token
    return f"https://{account.domain}", None


class Answers:
    """The last HTTP answer a Mastodon.py client received: its 429 raises without the response, whose
    X-RateLimit-Reset says when to try again."""

    def __init__(self, session: requests.Session) -> None:
        self.last: requests.Response | None = None
        session.hooks["response"].append(self._keep)

    def _keep(self, response: requests.Response, *args: Any, **kwargs: Any) -> None:
        self.last = response

    def reset_at(self) -> datetime | None:
        return reset_at(self.last.headers) if self.last is not None else None


def open_client(base_url: str, *, token: str | None, user_agent: str | None, sleep_scale: float,
                timeout: tuple[float, float] = TIMEOUT, retries: bool = True) -> tuple[Mastodon, Answers]:
    """A Mastodon.py client that never sleeps or re-sends by itself: rate limits raise (Mastodon.py's "wait" and
    "pace" modes sleep and send a POST again), no version lookups, our timeouts (to connect, to answer).

    `retries`: GETs that meet a 5xx or a refused connection are tried again (`scrapers.http`); never for posting.
    """
    from mastodon import Mastodon

    session = requests.Session()
    adapter = RetryingAdapter(sleep_scale=sleep_scale, retries=retries)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    answers = Answers(session)
    options: dict[str, Any] = {"user_agent": user_agent} if user_agent else {}
    api = Mastodon(access_token=token, api_base_url=base_url, session=session, ratelimit_method="throw",
                   version_check_mode="none", request_timeout=timeout, **options)  # type: ignore[arg-type]
    return api, answers


def reset_at(headers: Mapping[str, str]) -> datetime | None:
    """X-RateLimit-Reset as a time (aware UTC): Mastodon writes ISO 8601, some compatible servers a Unix time."""
    value = headers.get("X-RateLimit-Reset")
    if not value:
        return None
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError):
        pass
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return parsed.astimezone(UTC) if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def http_status(error: BaseException) -> int | None:
    """The HTTP status of a Mastodon.py API error (its args are message, status, reason, Mastodon's words)."""
    args = getattr(error, "args", ())
    return args[1] if len(args) >= 4 and isinstance(args[1], int) else None


def mastodon_words(error: BaseException) -> str:
    """What Mastodon said ("The access token is invalid"), or the HTTP reason, without a final full stop."""
    args = getattr(error, "args", ())
    words = args[3] if len(args) >= 4 and args[3] else args[2] if len(args) >= 3 and args[2] else "no reason given"
    return str(words).rstrip(".")


# ---- HTML to the text that was posted

BLOCKS = {"p", "blockquote", "pre", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6"}  # a blank line around each
VOID = {"br", "img", "hr", "wbr"}  # elements without an end tag


class _TextParser(HTMLParser):
    """Mastodon's `content` back to text: `<br>` a newline, paragraphs a blank line, a link its whole URL (Mastodon
    hides parts of it in `invisible` spans, which are text all the same), entities unescaped. The "RE: link" line a
    quote post carries (class `quote-inline`) is left out, as Mastodon's own page hides it."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.hidden = 0  # depth inside an element left out

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.hidden:
            self.hidden += tag not in VOID
        elif "quote-inline" in (dict(attrs).get("class") or "").split():
            self.hidden = 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n")
        elif tag in BLOCKS:
            self.parts.append("\n\n")

    def handle_endtag(self, tag: str) -> None:
        if self.hidden:
            self.hidden -= tag not in VOID
        elif tag in BLOCKS:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        if not self.hidden:
            self.parts.append(data)


def status_text(content: str) -> str:
    """'<p>Tom &amp; Jerry</p><p>a<br />b</p>' -> 'Tom & Jerry\\n\\na\\nb'."""
    parser = _TextParser()
    parser.feed(content or "")
    parser.close()
    return re.sub(r"\n{3,}", "\n\n", "".join(parser.parts)).strip()


# ---- reading an account


class MastodonReader:
    """An account's statuses, read on its own instance."""

    def __init__(self, access: MastodonAccess, *, waiter: Waiter) -> None:
        self.access = access
        self.waiter = waiter
        self._clients: list[Mastodon] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        for api in self._clients:
            api.session.close()

    def pages(self, account: str, *, limit: int = STATUSES_CAP, replies: bool = False,
              boosts: bool = False) -> Iterator[Page]:
        """`account`'s statuses, newest first, until `limit` were read or there are no more."""
        name = mastodon_account(account)
        base_url, token = home_instance(name, self.access)
        instance = instance_domain(base_url)
        label = name.label(instance)
        api, answers = open_client(base_url, token=token, user_agent=self.access.user_agent,
                                   sleep_scale=self.waiter.scale)
        self._clients.append(api)
        call = _Caller(self.waiter, answers, instance=instance, token_sent=token is not None)
        found = call(api.account_lookup, name.username, what=label)
        what, limit = f"{label}'s statuses", min(limit, STATUSES_CAP)
        page = call(api.account_statuses, found["id"], exclude_reblogs=not boosts, exclude_replies=not replies,
                    limit=min(PAGE_SIZE, limit), what=what)
        fetched = 0
        while True:
            statuses = list(page)[:limit - fetched]
            result = _page(statuses, account_id=str(found["id"]), instance=instance, replies=replies, boosts=boosts)
            fetched += result.fetched
            yield result
            if not statuses or fetched >= limit:
                return
            page = call(api.fetch_next, page, what=what)
            if page is None:
                return


class _Caller:
    """One API call at a time: Mastodon's errors become one sentence each, and rate limits a wait."""

    def __init__(self, waiter: Waiter, answers: Answers, *, instance: str, token_sent: bool) -> None:
        self.waiter, self.answers, self.instance, self.token_sent = waiter, answers, instance, token_sent

    def __call__(self, method: Callable[..., Any], *args: Any, what: str, **kwargs: Any) -> Any:
        from mastodon import MastodonAPIError, MastodonNetworkError, MastodonRatelimitError

        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            try:
                return method(*args, **kwargs)
            except MastodonRatelimitError:
                self._wait(what)
            except MastodonNetworkError as error:
                found = next((c for c in _chain(error) if isinstance(c, requests.RequestException)), error)
                raise ScrapeError(f"The connection to {self.instance} failed while reading {what} "
                                  f"({describe(found)}); what was fetched is kept, so check your network and run "
                                  "the command again.") from error
            except MastodonAPIError as error:
                if http_status(error) != 429:  # a 429 comes as MastodonRatelimitError; this is in case it does not
                    raise self._failure(error, what=what) from error
                self._wait(what)
        raise RateLimitError(f"{self.instance} kept rate-limiting {what} after {MAX_RATE_LIMIT_WAITS} waits; try "
                             "again later.")

    def _wait(self, what: str) -> None:
        reset = self.answers.reset_at()
        now = datetime.now(UTC)
        seconds = max((reset - now).total_seconds(), 0.0) + RESET_MARGIN if reset else DEFAULT_RESET
        self.waiter.rate_limited(service=self.instance, seconds=seconds, what=f"reading {what}")

    def _failure(self, error: Exception, *, what: str) -> ScrapeError:
        status, words = http_status(error), mastodon_words(error)
        if status is None:  # an answer that is not JSON
            return ScrapeError(f"{self.instance} sent an answer for {what} that is not valid JSON; what was fetched "
                               "is kept, so run the command again to continue.")
        if status in (401, 403) and self.token_sent:
            return ScrapeError(f"{self.instance} refused MASTODON_ACCESS_TOKEN while reading {what} (HTTP {status}: "
                               f"{words}); make a new token with the read scope (Preferences, Development).")
        if status in (401, 403):
            return ScrapeError(f"{self.instance} shows {what} only to signed-in accounts (HTTP {status}: {words}); "
                               "set MASTODON_API_BASE_URL to that instance and MASTODON_ACCESS_TOKEN to a token of "
                               "an account there.")
        if status in (404, 410):
            return SourceUnavailableError(f"{self.instance} has no {what} (HTTP {status}: {words}); check the "
                                          "spelling, and that the account is on that instance.")
        if status >= 500:
            return ScrapeError(f"{self.instance} kept failing (HTTP {status}) while reading {what}; what was "
                               "fetched is kept, so run the command again later to continue.")
        return ScrapeError(f"{self.instance} answered HTTP {status} ({words}) while reading {what}; check the "
                           "account and MASTODON_API_BASE_URL.")


def _chain(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it was raised from or during (Mastodon.py raises its network error inside `except`)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _page(statuses: list[Any], *, account_id: str, instance: str, replies: bool, boosts: bool) -> Page:
    documents, skipped = [], Counter[str]()
    for status in statuses:
        reason = _skip_reason(status, account_id=account_id, replies=replies, boosts=boosts)
        document = None if reason else _document(status.get("reblog") or status, instance=instance)
        if document is None:
            skipped[reason or NO_TEXT] += 1
        else:
            documents.append(document)
    return Page(documents=tuple(documents), fetched=len(statuses), skipped=dict(skipped))


def _skip_reason(status: Mapping[str, Any], *, account_id: str, replies: bool, boosts: bool) -> str | None:
    original = status.get("reblog")
    if original and not boosts:
        return BOOST  # Mastodon left them out already (exclude_reblogs); a server that did not is caught here
    if not replies and status.get("in_reply_to_id") and str(status.get("in_reply_to_account_id")) != account_id:
        return REPLY  # a reply to someone else; a thread's replies to itself are the account's own text
    shown = original or status
    if shown.get("visibility") not in PUBLIC:
        return PRIVATE
    if (shown.get("spoiler_text") or "").strip():
        return CONTENT_WARNING
    return None


def _document(status: Mapping[str, Any], *, instance: str) -> Document | None:
    text = status_text(status.get("content") or "")
    if not text:
        return None
    account = status.get("account") or {}
    acct = str(account.get("acct") or account.get("username") or "")
    favourites = status.get("favourites_count")
    created = status.get("created_at")
    return Document(
        source=MASTODON_SOURCE,
        external_id=_external_id(status),
        text=text,
        author=acct if "@" in acct or not acct else f"{acct}@{instance}",
        created_at=created.astimezone(UTC) if isinstance(created, datetime) else None,
        score=favourites if isinstance(favourites, int) else None,
        url=status.get("url") or status.get("uri"),
    )


def _external_id(status: Mapping[str, Any]) -> str:
    """The status's URI (its ActivityPub id): the same whichever instance it is read on, where the numeric id is
    each instance's own. A URI too long for the store is kept as its hash."""
    uri = str(status.get("uri") or status["id"])
    if len(uri) <= EXTERNAL_ID_LENGTH:
        return uri
    return "sha256:" + hashlib.sha256(uri.encode()).hexdigest()
