"""`bot scrape reddit`, `x`, `mastodon` and `bluesky`: posts of subreddits or of an account into a corpus."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Self

import typer

from bot.cli import app
from bot.cli.options import JSON, corpus_name

if TYPE_CHECKING:
    from rich.progress import TaskID

    from bot.scraping import SourceSummary
    from scrapers.waiting import Wait

# Short: `bot --help` cuts a longer help; the commands below name the platforms.
scrape_app = typer.Typer(help="Scrape subreddits or an account into a corpus.", no_args_is_help=True)
app.add_typer(scrape_app, name="scrape")

SORTS = ("top", "hot", "new")  # scrapers.reddit.SORTS, repeated so `bot --help` imports no scraper
TIMES = ("hour", "day", "week", "month", "year", "all")
REDDIT_LIMIT, X_LIMIT = 1000, 3200  # what the APIs serve at most: a listing's 1,000, an account's 3,200 latest
MASTODON_LIMIT, MASTODON_DEFAULT = 10_000, 3200  # scrapers.mastodon.STATUSES_CAP, and bots.toml's default limit
BLUESKY_LIMIT, BLUESKY_DEFAULT = 10_000, 3200  # scrapers.bluesky.FEED_CAP, and bots.toml's default limit
SKIP_LABELS: dict[str, Callable[[int], str]] = {  # how a summary names each reason, given the count; in this order
    "stickied": lambda n: "stickied",
    "removed": lambda n: "removed or deleted",
    "nsfw": lambda n: "NSFW",
    "reply": lambda n: "reply" if n == 1 else "replies",
    "boost": lambda n: "boost" if n == 1 else "boosts",
    "repost": lambda n: "repost" if n == 1 else "reposts",
    "private": lambda n: "not public",
    "content_warning": lambda n: "behind a content warning",
    "no_text": lambda n: "without text",
}
PUBLIC_NOTE = ("Reading Reddit's public listings without credentials, at most 10 requests a minute; "
               "set REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET to read faster (see the README).")
WAIT_MESSAGE = ("Rate limited by {service}; waiting {seconds:.0f}s (until {until:%H:%M:%S}). "
                "Ctrl-C stops, keeping what is stored.")


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def check(value: str) -> str:
        if value not in choices:
            raise typer.BadParameter(f"use one of {', '.join(choices)}")
        return value
    return check


@scrape_app.command("reddit", short_help="Add subreddits' post titles to a corpus.")
def reddit(
    subreddits: Annotated[list[str], typer.Argument(help="Subreddits, like AskReddit or r/AskReddit.")],
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus to add the posts to.", callback=corpus_name)],
    sort: Annotated[str, typer.Option("--sort", help="top|hot|new", callback=_one_of(SORTS))] = "top",
    time: Annotated[str, typer.Option("--time", help="hour|day|week|month|year|all (for --sort top)",
                                      callback=_one_of(TIMES))] = "week",
    limit: Annotated[int, typer.Option("--limit", min=1, max=REDDIT_LIMIT,
                                       help="Posts to read per subreddit; Reddit serves 1000 at most.")] = 1000,
    with_body: Annotated[bool, typer.Option("--with-body", help="Add self-posts' text to their titles.")] = False,
    include_nsfw: Annotated[bool, typer.Option("--include-nsfw", help="Keep posts marked NSFW.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Fail instead of waiting out a rate limit.")] = False,
    json_: JSON = False,
) -> None:
    """Add the titles of subreddits' posts to a corpus; scraping again adds only what is new."""
    from bot import scraping
    from bot.cli import context, output

    settings = context.settings()
    access = scraping.reddit_access(settings)
    if access.mode == "public":
        output.errors.print(PUBLIC_NOTE, markup=False)
    with ScrapeDisplay(print_summaries=not json_) as display, display.interruptible():
        summaries = scraping.scrape_reddit(context.store(), settings, corpus, subreddits, sort=sort, time=time,
                                           limit=limit, with_body=with_body, include_nsfw=include_nsfw,
                                           no_wait=no_wait, reporter=display)
    if json_:
        output.print_json({"corpus": corpus, "access": access.mode,
                           "subreddits": [s.to_json() for s in summaries]})
    _exit_on_errors(summaries)


@scrape_app.command("x", short_help="Add an X account's posts to a corpus.")
def x(
    username: Annotated[str, typer.Argument(help="The account, like jack or @jack.")],
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus to add the posts to.", callback=corpus_name)],
    limit: Annotated[int, typer.Option("--limit", min=1, max=X_LIMIT,
                                       help="Posts to read, newest first; X serves the latest 3200.")] = X_LIMIT,
    include_replies: Annotated[bool, typer.Option("--include-replies", help="Keep replies.")] = False,
    include_retweets: Annotated[bool, typer.Option("--include-retweets", help="Keep reposts.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Fail instead of waiting out a rate limit.")] = False,
    json_: JSON = False,
) -> None:
    """Add an X account's posts to a corpus (needs X_BEARER_TOKEN); scraping again adds only what is new."""
    from bot import scraping
    from bot.cli import context, output

    with ScrapeDisplay(print_summaries=not json_) as display, display.interruptible():
        summary = scraping.scrape_x(context.store(), context.settings(), corpus, username, limit=limit,
                                    include_replies=include_replies, include_retweets=include_retweets,
                                    no_wait=no_wait, reporter=display)
    if json_:
        output.print_json({"corpus": corpus, **summary.to_json()})
    _exit_on_errors([summary])


@scrape_app.command("mastodon", short_help="Add a Mastodon account's statuses to a corpus.")
def mastodon(
    account: Annotated[str, typer.Argument(help="The account, like Gargron@mastodon.social; a bare name is on "
                                                "MASTODON_API_BASE_URL's instance.")],
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus to add the statuses to.", callback=corpus_name)],
    limit: Annotated[int, typer.Option("--limit", min=1, max=MASTODON_LIMIT,
                                       help="Statuses to read, newest first.")] = MASTODON_DEFAULT,
    replies: Annotated[bool, typer.Option("--replies", help="Keep replies to other accounts.")] = False,
    boosts: Annotated[bool, typer.Option("--boosts", help="Keep the posts the account boosted.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Fail instead of waiting out a rate limit.")] = False,
    json_: JSON = False,
) -> None:
    """Add a Mastodon account's public statuses to a corpus, read on its own instance (most need no token);
    scraping again adds only what is new."""
    from bot import scraping
    from bot.cli import context, output

    with ScrapeDisplay(print_summaries=not json_) as display, display.interruptible():
        summary = scraping.scrape_mastodon(context.store(), context.settings(), corpus, account, limit=limit,
                                           replies=replies, boosts=boosts, no_wait=no_wait, reporter=display)
    if json_:
        output.print_json({"corpus": corpus, **summary.to_json()})
    _exit_on_errors([summary])


@scrape_app.command("bluesky", short_help="Add a Bluesky account's posts to a corpus.")
def bluesky(
    actor: Annotated[str, typer.Argument(help="The account: a handle like bsky.app or @bsky.app, or a DID.")],
    corpus: Annotated[str, typer.Option("--corpus", help="Corpus to add the posts to.", callback=corpus_name)],
    limit: Annotated[int, typer.Option("--limit", min=1, max=BLUESKY_LIMIT,
                                       help="Posts to read, newest first.")] = BLUESKY_DEFAULT,
    replies: Annotated[bool, typer.Option("--replies", help="Keep replies.")] = False,
    reposts: Annotated[bool, typer.Option("--reposts", help="Keep the posts the account reposted.")] = False,
    no_wait: Annotated[bool, typer.Option("--no-wait", help="Fail instead of waiting out a rate limit.")] = False,
    json_: JSON = False,
) -> None:
    """Add a Bluesky account's posts to a corpus (logged in as BLUESKY_HANDLE where its app password is set, else
    through Bluesky's public AppView); scraping again adds only what is new."""
    from bot import scraping
    from bot.cli import context, output

    with ScrapeDisplay(print_summaries=not json_) as display, display.interruptible():
        summary = scraping.scrape_bluesky(context.store(), context.settings(), corpus, actor, limit=limit,
                                          replies=replies, reposts=reposts, no_wait=no_wait, reporter=display)
    if json_:
        output.print_json({"corpus": corpus, **summary.to_json()})
    _exit_on_errors([summary])


def _exit_on_errors(summaries: list[SourceSummary]) -> None:
    if any(s.error for s in summaries):
        raise SystemExit(1)  # each error was printed as its source finished


def describe(summary: SourceSummary, *, stopped: str | None = None) -> str:
    """'r/python: 250 fetched, 240 new, 0 already present, 10 skipped (2 stickied, 8 removed or deleted).'"""
    reasons = ", ".join(f"{summary.skipped[reason]:,} {label(summary.skipped[reason])}"
                        for reason, label in SKIP_LABELS.items() if summary.skipped.get(reason))
    return (f"{summary.source}: {summary.fetched:,} fetched, {summary.added:,} new, "
            f"{summary.already_present:,} already present, {sum(summary.skipped.values()):,} skipped"
            f"{f' ({reasons})' if reasons else ''}{f' before the {stopped}' if stopped else ''}.")


class ScrapeDisplay:
    """Implements bot.scraping.ScrapeReporter: a bar per source and waits on stderr, a summary line on stdout."""

    def __init__(self, *, print_summaries: bool) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        from bot.cli.output import errors

        self.print_summaries = print_summaries
        self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(), console=errors, transient=True,
                                 disable=not errors.is_terminal)  # bars only on a terminal
        self.task: TaskID | None = None
        self.current: SourceSummary | None = None  # the source being read, once a page of it is stored

    def __enter__(self) -> Self:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_start(self, source: str, *, limit: int) -> None:
        self.task = self.progress.add_task(f"Scraping {source}", total=limit)

    def on_page(self, summary: SourceSummary) -> None:
        self.current = summary
        if self.task is not None:
            self.progress.update(self.task, completed=summary.fetched)

    def on_wait(self, wait: Wait) -> None:
        self.progress.console.print(WAIT_MESSAGE.format(service=wait.service, seconds=wait.seconds,
                                                        until=wait.until.astimezone()), markup=False)

    def on_done(self, summary: SourceSummary) -> None:
        from bot.cli.output import console, errors

        if self.task is not None:
            self.progress.remove_task(self.task)
            self.task = None
        self.current = None
        if self.print_summaries and (summary.fetched or not summary.error):
            console.print(describe(summary, stopped="error" if summary.error else None), markup=False)
        if summary.error:
            errors.print(f"Error: {summary.error}", markup=False)

    @contextmanager
    def interruptible(self) -> Iterator[None]:
        """Ctrl-C: say how far the current source got; `main` then says that what is stored stays."""
        try:
            yield
        except KeyboardInterrupt:
            from bot.cli.output import console

            self.progress.stop()
            if self.print_summaries and self.current is not None:
                console.print(describe(self.current, stopped="interruption"), markup=False)
            raise  # bot.cli.main says it was interrupted and exits 130, as for every command
