"""The platforms nnbot posts to, each described once, and read by everything that differs between them.

A `Platform` says how long a post may be and how the platform counts it, whether mentions and links are allowed when
a bot does not say, what a bot's `destination` names there, which settings posting needs, how to open its publisher,
how to describe where a post goes, and which of an account's recent posts can be a bot's (for reconcile). The
filters, `BotConfig`, `open_publisher`, `bot post --dry-run`, reconcile, `bot init` and `bot check` all read it, so a
new platform is its publisher module and one entry in `PLATFORMS` below. Reading texts in is alike: a source type is
its scraper, its model in `bot.config.Source`, and one entry in `SOURCES` (the scrape job and `bot check` read it).

Nothing heavy is imported here: a publisher's module (and its client library) is imported when one is opened.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.config import BotConfig, Settings
    from bot.publishers.base import Publisher, RemotePost
    from bot.store import Store

URL_PATTERN = re.compile(r"\b(?:https?://|www\.)\S+", re.IGNORECASE)  # a link, as X shortens and counts it


@dataclass(frozen=True)
class Platform:
    name: str  # as bots.toml's `platform` names it
    label: str  # for people: "Reddit", "X", "a file"
    max_length: int | None  # what one post may hold, as `length` counts; None: no limit
    mentions_allowed: bool  # @mentions, where the bot's filters do not say (X: never unsolicited)
    links_allowed: bool  # links, where the bot's filters do not say
    destination: str | None  # what `destination` names there ("a subreddit"); None: the platform needs none
    credentials: tuple[str, ...]  # the settings posting needs, as environment variables
    open: Callable[[Settings, BotConfig], Publisher]  # the bot's publisher (ConfigError for missing settings)
    where: Callable[[Settings, BotConfig], str]  # where the bot's posts go, for people, contacting nothing
    about: str = ""  # what posting there does, for a comment in `bot init`'s bots.toml
    example_destination: str | None = None  # `bot init`'s example ("{name}": the bot's name)
    url_length: int | None = None  # what any link counts as (X: 23, its t.co links), None: its own length
    counts: Callable[[str], int] = len  # how the platform measures a text (code points; Bluesky: graphemes)
    unit: str = "characters"  # what `counts` counts, for people
    # reconcile: may this recent post of the account be one of the bot's (a Reddit account posts to many subreddits)
    holds: Callable[[BotConfig, RemotePost], bool] = lambda bot, post: True

    def length(self, text: str) -> int:
        """`text`'s length as the platform counts it against `max_length`."""
        if self.url_length is not None:
            text = URL_PATTERN.sub("_" * self.url_length, text)
        return self.counts(text)


# ---- the platforms


def _open_reddit(settings: Settings, bot: BotConfig) -> Publisher:
    from bot.publishers.reddit import RedditPublisher

    assert bot.destination  # BotConfig requires one
    return RedditPublisher(settings, subreddit=bot.destination, body=bot.reddit.body, flair_id=bot.reddit.flair_id,
                           flair_text=bot.reddit.flair_text)


def _reddit_where(settings: Settings, bot: BotConfig) -> str:
    from scrapers.reddit import subreddit_name

    user = f" as u/{settings.reddit_username}" if settings.reddit_username else ""
    return f"r/{subreddit_name(bot.destination or '')} on Reddit{user}"


def _reddit_holds(bot: BotConfig, post: RemotePost) -> bool:
    from scrapers.reddit import subreddit_name

    return (post.destination or "").lower() == subreddit_name(bot.destination or "").lower()


def _open_x(settings: Settings, bot: BotConfig) -> Publisher:
    from bot.publishers.x import XPublisher

    return XPublisher(settings)


def _open_file(settings: Settings, bot: BotConfig) -> Publisher:
    from bot.publishers import file_destination
    from bot.publishers.file import FilePublisher

    assert bot.destination  # BotConfig requires one
    return FilePublisher(file_destination(settings, bot.destination), bot=bot.name)


def _file_where(settings: Settings, bot: BotConfig) -> str:
    from bot.publishers import file_destination

    return f"the file {file_destination(settings, bot.destination or '')}"


def _open_mastodon(settings: Settings, bot: BotConfig) -> Publisher:
    from bot.publishers.mastodon import MastodonPublisher

    return MastodonPublisher(settings, visibility=bot.mastodon.visibility, spoiler_text=bot.mastodon.spoiler_text,
                             language=bot.mastodon.language)


def _open_bluesky(settings: Settings, bot: BotConfig) -> Publisher:
    from bot.publishers.bluesky import BlueskyPublisher

    return BlueskyPublisher(settings)


def _graphemes(text: str) -> int:
    from bot.publishers.text import grapheme_count

    return grapheme_count(text)


PLATFORMS: dict[str, Platform] = {
    "reddit": Platform(
        "reddit", "Reddit", max_length=300, mentions_allowed=True, links_allowed=True,  # 300: a title's limit
        destination="the subreddit it posts to",
        credentials=("REDDIT_CLIENT_ID", "REDDIT_CLIENT_SECRET", "REDDIT_USERNAME", "REDDIT_PASSWORD"),
        open=_open_reddit, where=_reddit_where, holds=_reddit_holds,
        about="posts titles (self-posts) as REDDIT_USERNAME", example_destination="r/test"),
    "x": Platform(
        # X: automated posts carry no unsolicited @mentions, and a bot's links read as spam; every link counts 23
        "x", "X", max_length=280, mentions_allowed=False, links_allowed=False, destination=None,
        credentials=("X_API_KEY", "X_API_SECRET", "X_ACCESS_TOKEN", "X_ACCESS_TOKEN_SECRET"),
        open=_open_x, where=lambda settings, bot: "the X account of X_ACCESS_TOKEN", url_length=23,
        about="posts as the account of X_ACCESS_TOKEN"),
    "mastodon": Platform(
        # 500 is Mastodon's default; the publisher reads the instance's own limit and refuses longer posts
        "mastodon", "Mastodon", max_length=500, mentions_allowed=False, links_allowed=False, destination=None,
        credentials=("MASTODON_API_BASE_URL", "MASTODON_ACCESS_TOKEN"), open=_open_mastodon,
        where=lambda settings, bot: f"the Mastodon account of MASTODON_ACCESS_TOKEN on {settings.mastodon_api_base_url}",
        url_length=23, counts=_graphemes, unit="characters",
        about="posts statuses as the account of MASTODON_ACCESS_TOKEN (mark it a bot in its profile)"),
    "bluesky": Platform(
        "bluesky", "Bluesky", max_length=300, mentions_allowed=False, links_allowed=False, destination=None,
        credentials=("BLUESKY_HANDLE", "BLUESKY_APP_PASSWORD"), open=_open_bluesky,
        where=lambda settings, bot: f"@{settings.bluesky_handle} on Bluesky",
        counts=_graphemes, unit="graphemes", about="posts as BLUESKY_HANDLE, with an app password"),
    "file": Platform(
        # the dry-run publisher: each post a JSON line in a file
        "file", "a file", max_length=None, mentions_allowed=True, links_allowed=True,
        destination="a file path (relative to BOT_HOME, or absolute)", credentials=(),
        open=_open_file, where=_file_where, about="appends each post as a JSON line: a dry run that leaves a record",
        example_destination="{name}-posts.jsonl"),
}
NAMES = tuple(PLATFORMS)  # what bots.toml's `platform` may say


def platform(name: str) -> Platform:
    """The platform called `name`; ConfigError naming the ones there are."""
    try:
        return PLATFORMS[name]
    except KeyError:
        from bot.errors import ConfigError

        raise ConfigError(f"Unknown platform {name!r}; use one of {', '.join(NAMES)}.") from None


# ---- where texts come from: a bot's `sources` (their models, one per type, are `bot.config.Source`)


@dataclass(frozen=True)
class SourceKind:
    type: str  # as a source's `type` says
    # read the source into a corpus: (documents added, errors in a sentence each); rate limits end the run early
    scrape: Callable[[Store, Settings, str, Any], tuple[int, list[str]]]
    command: Callable[[Any, str], str]  # the command that reads it by hand, into a corpus
    example: str  # a source of this type as bots.toml writes it, for `bot init`
    about: str  # what it reads, for a comment next to `example`
    missing: Callable[[Settings, Any], str | None] = lambda settings, source: None  # what reading it lacks
    example_ready: bool = True  # False: the example names something that may not exist yet (a file)


def _scrape_reddit(store: Store, settings: Settings, corpus: str, source: Any) -> tuple[int, list[str]]:
    from bot import scraping

    summaries = scraping.scrape_reddit(store, settings, corpus, source.subreddits, sort=source.sort,
                                       time=source.time, limit=source.limit, no_wait=True)
    return sum(s.added for s in summaries), [f"{s.source}: {s.error}" for s in summaries if s.error]


def _scrape_x(store: Store, settings: Settings, corpus: str, source: Any) -> tuple[int, list[str]]:
    from bot import scraping

    summary = scraping.scrape_x(store, settings, corpus, source.username, limit=source.limit, no_wait=True)
    return summary.added, [f"{summary.source}: {summary.error}"] if summary.error else []


def _scrape_mastodon(store: Store, settings: Settings, corpus: str, source: Any) -> tuple[int, list[str]]:
    from bot import scraping

    summary = scraping.scrape_mastodon(store, settings, corpus, source.account, limit=source.limit,
                                       replies=source.replies, boosts=source.boosts, no_wait=True)
    return summary.added, [f"{summary.source}: {summary.error}"] if summary.error else []


def _scrape_bluesky(store: Store, settings: Settings, corpus: str, source: Any) -> tuple[int, list[str]]:
    from bot import scraping

    summary = scraping.scrape_bluesky(store, settings, corpus, source.actor, limit=source.limit,
                                      replies=source.replies, reposts=source.reposts, no_wait=True)
    return summary.added, [f"{summary.source}: {summary.error}"] if summary.error else []


def _x_missing(settings: Settings, source: Any) -> str | None:
    token = settings.x_bearer_token
    return None if token and token.get_secret_value() else "reading posts from X needs X_BEARER_TOKEN"


def source_file(settings: Settings, source: Any) -> Path:
    """A file source's path: as written where absolute, else under BOT_HOME."""
    return source.path if source.path.is_absolute() else settings.bot_home / source.path


def _scrape_file(store: Store, settings: Settings, corpus: str, source: Any) -> tuple[int, list[str]]:
    from bot.corpus import add_documents
    from scrapers.files import read_documents

    documents = read_documents(source_file(settings, source), format=source.format, column=source.column)
    with store.session() as session:
        return add_documents(session, corpus, documents).added, []


def _file_missing(settings: Settings, source: Any) -> str | None:
    path = source_file(settings, source)
    return None if path.exists() else f"the source file {path} does not exist"


SOURCES: dict[str, SourceKind] = {
    "reddit": SourceKind(
        "reddit", _scrape_reddit,
        lambda source, corpus: f"bot scrape reddit {' '.join(source.subreddits)} --corpus {corpus}",
        example='{ type = "reddit", subreddits = ["showerthoughts"], time = "week" }',
        about="top posts' titles; no keys needed"),
    "x": SourceKind(
        "x", _scrape_x, lambda source, corpus: f"bot scrape x {source.username} --corpus {corpus}",
        example='{ type = "x", username = "jack" }', about="an account's posts; needs X_BEARER_TOKEN",
        missing=_x_missing),
    "mastodon": SourceKind(
        "mastodon", _scrape_mastodon, lambda source, corpus: f"bot scrape mastodon {source.account} --corpus {corpus}",
        example='{ type = "mastodon", account = "Gargron@mastodon.social" }',
        about="an account's public posts, boosts and replies left out"),
    "bluesky": SourceKind(
        "bluesky", _scrape_bluesky, lambda source, corpus: f"bot scrape bluesky {source.actor} --corpus {corpus}",
        example='{ type = "bluesky", actor = "bsky.app" }', about="an account's posts, reposts and replies left out"),
    "file": SourceKind(
        "file", _scrape_file, lambda source, corpus: f"bot import {source.path} --corpus {corpus}",
        example='{ type = "file", path = "posts.txt" }',
        about="a text per line (or csv, jsonl, an X archive); a relative path is under BOT_HOME",
        missing=_file_missing, example_ready=False),
}
