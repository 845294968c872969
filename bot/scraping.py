"""Scraping into a corpus: pages from Reddit, X, Mastodon and Bluesky stored as they arrive, a transaction each."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from bot import __version__
from bot.config import Settings
from bot.corpus import add_documents
from bot.store import Store
from scrapers.bluesky import FEED_CAP, BlueskyReader, bluesky_actor, read_url, xrpc_client
from scrapers.documents import Page
from scrapers.errors import ScrapeError, SourceUnavailableError
from scrapers.mastodon import (
    STATUSES_CAP,
    MastodonAccess,
    MastodonReader,
    home_instance,
    instance_domain,
    mastodon_account,
)
from scrapers.reddit import LISTING_CAP, RedditAccess, SubredditReader, subreddit_name, user_agent
from scrapers.waiting import Wait, Waiter
from scrapers.x import TIMELINE_CAP, XAccess, XReader, x_username

if TYPE_CHECKING:
    from atproto import Client

logger = logging.getLogger(__name__)


@dataclass
class SourceSummary:
    """What one subreddit or account gave: read, stored, already there, left out (by reason), and any error."""

    source: str  # "r/python", "@jack"
    fetched: int = 0
    added: int = 0
    stored: int = 0  # documents offered to the corpus: added + already present
    skipped: Counter[str] = field(default_factory=Counter)
    error: str | None = None  # the sentence, when reading stopped early; what came before it is stored

    @property
    def already_present(self) -> int:
        return self.stored - self.added

    def to_json(self) -> dict[str, object]:
        return {"source": self.source, "fetched": self.fetched, "added": self.added,
                "already_present": self.already_present, "skipped": dict(sorted(self.skipped.items())),
                "error": self.error}


class ScrapeReporter(Protocol):
    """How a scrape shows itself: a progress bar per source, waits as they start, a summary per source."""

    def on_start(self, source: str, *, limit: int) -> None: ...

    def on_page(self, summary: SourceSummary) -> None: ...

    def on_wait(self, wait: Wait) -> None: ...

    def on_done(self, summary: SourceSummary) -> None: ...


def reddit_access(settings: Settings) -> RedditAccess:
    """The REDDIT_* settings for the scraper; the user agent is built from them unless REDDIT_USER_AGENT is set."""
    client_secret = settings.reddit_client_secret.get_secret_value() if settings.reddit_client_secret else None
    password = settings.reddit_password.get_secret_value() if settings.reddit_password else None
    agent = settings.reddit_user_agent or user_agent(version=__version__, client_id=settings.reddit_client_id,
                                                     username=settings.reddit_username)
    return RedditAccess(user_agent=agent, client_id=settings.reddit_client_id or None,
                        client_secret=client_secret or None, username=settings.reddit_username or None,
                        password=password or None, oauth_url=settings.reddit_oauth_url,
                        reddit_url=settings.reddit_url)


def x_access(settings: Settings) -> XAccess:
    token = settings.x_bearer_token.get_secret_value() if settings.x_bearer_token else None
    return XAccess(bearer_token=token or None, api_url=settings.x_api_url)


def scrape_reddit(store: Store, settings: Settings, corpus: str, subreddits: Iterable[str], *, sort: str = "top",
                  time: str = "week", limit: int = LISTING_CAP, with_body: bool = False,
                  include_nsfw: bool = False, no_wait: bool = False,
                  reporter: ScrapeReporter | None = None) -> list[SourceSummary]:
    """Scrape each subreddit into `corpus`, page by page; a subreddit that cannot be read is reported and the
    rest go on, while a failure that would stop them all (credentials, network) ends the scrape there."""
    names = [subreddit_name(s) for s in subreddits]  # every name checked before anything is fetched
    summaries: list[SourceSummary] = []
    with SubredditReader(reddit_access(settings), waiter=_waiter(settings, no_wait, reporter)) as reader:
        for name in names:
            summary = SourceSummary(source=f"r/{name}")
            summaries.append(summary)
            pages = reader.pages(name, sort=sort, time=time, limit=limit, with_body=with_body,
                                 include_nsfw=include_nsfw)
            if not _store_pages(store, corpus, pages, summary, limit=limit, reporter=reporter):
                break
    return summaries


def scrape_x(store: Store, settings: Settings, corpus: str, username: str, *, limit: int = TIMELINE_CAP,
             include_replies: bool = False, include_retweets: bool = False, no_wait: bool = False,
             reporter: ScrapeReporter | None = None) -> SourceSummary:
    """Scrape @`username`'s posts into `corpus`, newest first, page by page."""
    name = x_username(username)
    summary = SourceSummary(source=f"@{name}")
    with XReader(x_access(settings), waiter=_waiter(settings, no_wait, reporter)) as reader:
        pages = reader.pages(name, limit=limit, include_replies=include_replies, include_retweets=include_retweets)
        _store_pages(store, corpus, pages, summary, limit=limit, reporter=reporter)
    return summary


def mastodon_access(settings: Settings) -> MastodonAccess:
    token = settings.mastodon_access_token.get_secret_value() if settings.mastodon_access_token else None
    return MastodonAccess(api_base_url=settings.mastodon_api_base_url or None, access_token=token or None,
                          user_agent=f"nnbot/{__version__}")


def scrape_mastodon(store: Store, settings: Settings, corpus: str, account: str, *, limit: int = STATUSES_CAP,
                    replies: bool = False, boosts: bool = False, no_wait: bool = False,
                    reporter: ScrapeReporter | None = None) -> SourceSummary:
    """Scrape a Mastodon account's statuses into `corpus`, newest first, page by page, on the account's instance."""
    access = mastodon_access(settings)
    name = mastodon_account(account)  # checked, and its instance known, before anything is fetched
    summary = SourceSummary(source=name.label(instance_domain(home_instance(name, access)[0])))
    with MastodonReader(access, waiter=_waiter(settings, no_wait, reporter)) as reader:
        pages = reader.pages(account, limit=limit, replies=replies, boosts=boosts)
        _store_pages(store, corpus, pages, summary, limit=limit, reporter=reporter)
    return summary


def bluesky_client(settings: Settings) -> tuple[Client, str]:
    """A client to read Bluesky with, and the server it reads from: logged in as BLUESKY_HANDLE when its app password
    is set (the session posting keeps, `bot.publishers.bluesky_session`), else anonymous (`read_url`)."""
    password = settings.bluesky_app_password
    if settings.bluesky_handle and password is not None and password.get_secret_value():
        from bot.publishers.base import PublishError
        from bot.publishers.bluesky_session import BlueskySession

        session = BlueskySession(settings)
        try:
            return session.ready(), settings.bluesky_url
        except PublishError as error:  # the login's sentence; a login has nothing to do with a post
            session.close()
            raise ScrapeError(str(error)) from error
    url = read_url(settings.bluesky_url, logged_in=False)
    return xrpc_client(url), url


def scrape_bluesky(store: Store, settings: Settings, corpus: str, actor: str, *, limit: int = FEED_CAP,
                   replies: bool = False, reposts: bool = False, no_wait: bool = False,
                   reporter: ScrapeReporter | None = None) -> SourceSummary:
    """Scrape a Bluesky account's posts into `corpus`, newest first, page by page."""
    name = bluesky_actor(actor)  # checked before anything is fetched, or logged in
    summary = SourceSummary(source=name if name.startswith("did:") else f"@{name}")
    client, url = bluesky_client(settings)
    with BlueskyReader(client, url=url, waiter=_waiter(settings, no_wait, reporter)) as reader:
        pages = reader.pages(name, limit=limit, replies=replies, reposts=reposts)
        _store_pages(store, corpus, pages, summary, limit=limit, reporter=reporter)
    return summary


def _waiter(settings: Settings, no_wait: bool, reporter: ScrapeReporter | None) -> Waiter:
    return Waiter(scale=settings.bot_sleep_scale, no_wait=no_wait, on_wait=reporter.on_wait if reporter else None)


def _store_pages(store: Store, corpus: str, pages: Iterator[Page], summary: SourceSummary, *, limit: int,
                 reporter: ScrapeReporter | None) -> bool:
    """Store each page in its own transaction, so a failure or Ctrl-C keeps every page before it.

    Returns False when the failure should stop the other sources too; the error is in the summary either way.
    """
    if reporter:
        reporter.on_start(summary.source, limit=limit)
    go_on = True
    try:
        for page in pages:
            if page.documents:
                with store.session() as session:
                    result = add_documents(session, corpus, page.documents)
                summary.added += result.added
                summary.stored += result.seen - result.empty  # documents left empty by cleaning are not stored
            summary.fetched += page.fetched
            summary.skipped.update(page.skipped)
            if reporter:
                reporter.on_page(summary)
    except ScrapeError as error:
        logger.info("%s stopped after %d posts: %s", summary.source, summary.fetched, error)
        summary.error = str(error)
        go_on = isinstance(error, SourceUnavailableError)
    if reporter:
        reporter.on_done(summary)
    return go_on
