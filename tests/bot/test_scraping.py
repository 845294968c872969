"""Scraping into the store and `bot scrape`: what lands in the corpus, exactly, and what the user sees."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.scraping import SourceSummary, scrape_reddit, scrape_x
from bot.store import Store, open_store
from bot.store.schema import Corpus, StoredDocument
from tests.fakes import x as fake_x_api
from tests.fakes.reddit import FakeReddit, post
from tests.fakes.x import FakeX, tweet

PUBLIC_NOTE = ("Reading Reddit's public listings without credentials, at most 10 requests a minute; set "
               "REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET to read faster (see the README).\n")


def stored(store: Store, corpus: str) -> list[tuple[object, ...]]:
    with store.session() as session:
        rows = session.scalars(select(StoredDocument).join(Corpus).where(Corpus.name == corpus)
                               .order_by(StoredDocument.id))
        return [(d.source, d.external_id, d.text, d.author, d.created_at, d.score, d.url) for d in rows]


def counts(summary: SourceSummary) -> tuple[object, ...]:
    return (summary.source, summary.fetched, summary.added, summary.already_present, dict(summary.skipped),
            summary.error)


@pytest.fixture
def cli_store(bot_home):  # type: ignore[no-untyped-def]
    """The store `bot` itself uses (BOT_HOME's SQLite database), to check what the commands stored."""
    s = open_store(load_settings().database_url)
    yield s
    s.close()


# --- the library: pages into the store ---------------------------------------------------------------------


def test_reddit_posts_land_in_the_store_and_a_second_scrape_adds_only_new_ones(
        store: Store, reddit_app: FakeReddit) -> None:
    reddit_app.add("Python", [post(1, "Tabs &amp; spaces", subreddit="Python", author="guido", score=99),
                              post(2, "Weekly thread", subreddit="Python", stickied=True)])
    settings = load_settings()
    (first,) = scrape_reddit(store, settings, "py", ["r/Python"])
    assert counts(first) == ("r/Python", 2, 1, 0, {"stickied": 1}, None)
    assert stored(store, "py") == [("reddit", "p00001", "Tabs & spaces", "guido",
                                    datetime(2023, 11, 14, 22, 14, 20, tzinfo=UTC), 99,
                                    f"{reddit_app.www.url}/r/Python/comments/p00001/tabs_amp_spaces/")]
    reddit_app.add("Python", [post(3, "Pattern matching", subreddit="Python")])
    (second,) = scrape_reddit(store, settings, "py", ["Python"])
    assert counts(second) == ("r/Python", 3, 1, 1, {"stickied": 1}, None)
    assert [row[2] for row in stored(store, "py")] == ["Tabs & spaces", "Pattern matching"]


def test_pages_stored_before_a_failure_are_kept_and_the_next_scrape_continues(
        store: Store, fake_reddit: FakeReddit) -> None:
    fake_reddit.add("test", [post(n, f"Post {n}") for n in range(250)])
    fake_reddit.www.fail("/r/test/top.json", call=3, truncate=True)
    (broken,) = scrape_reddit(store, load_settings(), "t", ["test"])
    assert counts(broken) == ("r/test", 200, 200, 0, {}, ("Reddit sent a page of r/test that is not valid JSON; "
                                                          "what was fetched is kept, so run the command again to "
                                                          "continue."))
    assert [row[2] for row in stored(store, "t")] == [f"Post {n}" for n in range(200)]
    (again,) = scrape_reddit(store, load_settings(), "t", ["test"])
    assert counts(again) == ("r/test", 250, 50, 200, {}, None)


def test_a_subreddit_that_cannot_be_read_does_not_stop_the_others(store: Store, fake_reddit: FakeReddit) -> None:
    fake_reddit.add("one", [post(1, "First")])
    fake_reddit.add("two", [post(2, "Second")])
    fake_reddit.make_unavailable("secret", "private")
    summaries = scrape_reddit(store, load_settings(), "c", ["one", "secret", "nope", "two"])
    assert [counts(s) for s in summaries] == [
        ("r/one", 1, 1, 0, {}, None),
        ("r/secret", 0, 0, 0, {}, ("r/secret is private; only its approved members can read it, so pick another "
                                   "subreddit.")),
        ("r/nope", 0, 0, 0, {}, "r/nope does not exist; check the spelling of the subreddit's name."),
        ("r/two", 1, 1, 0, {}, None),
    ]


def test_a_failure_that_would_stop_every_subreddit_ends_the_scrape(
        store: Store, reddit_app: FakeReddit, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "wrong")
    reddit_app.add("one", [post(1, "First")])
    summaries = scrape_reddit(store, load_settings(), "c", ["one", "two"])
    assert [counts(s) for s in summaries] == [
        ("r/one", 0, 0, 0, {}, ("Reddit refused REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (HTTP 401); copy both "
                                "again from your script app at https://www.reddit.com/prefs/apps."))]


def test_x_posts_land_in_the_store(store: Store, fake_x: FakeX) -> None:
    fake_x.add_user("jack", [tweet(2, "just setting up my twttr", likes=300), tweet(1, "@biz hi", reply_to="7")])
    summary = scrape_x(store, load_settings(), "jack", "@jack")
    assert counts(summary) == ("@jack", 2, 1, 0, {"reply": 1}, None)
    assert stored(store, "jack") == [("x", "1700000000000000002", "just setting up my twttr", "jack",
                                      datetime(2023, 11, 15, 0, 13, 20, tzinfo=UTC), 300,
                                      "https://x.com/jack/status/1700000000000000002")]
    assert counts(scrape_x(store, load_settings(), "jack", "jack")) == ("@jack", 2, 0, 1, {"reply": 1}, None)


# --- the command line --------------------------------------------------------------------------------------


def test_scrape_reddit_prints_a_summary_per_subreddit(bot, fake_reddit: FakeReddit) -> None:  # type: ignore[no-untyped-def]
    fake_reddit.add("python", [post(n, f"Post {n}") for n in range(1, 1201)] + [post(0, "Rules", stickied=True)])
    fake_reddit.add("rust", [post(2001, "Borrowing", over_18=True),
                             post(2002, "Lifetimes", removed_by_category="moderator"), post(2003, "Traits")])
    first = bot("scrape", "reddit", "python", "r/rust", "--corpus", "code", "--sort", "top", "--time", "week",
                "--limit", "1000")
    assert (first.code, first.err) == (0, PUBLIC_NOTE)
    assert first.out == ("r/python: 1,000 fetched, 1,000 new, 0 already present, 0 skipped.\n"
                         "r/rust: 3 fetched, 1 new, 0 already present, 2 skipped (1 removed or deleted, 1 NSFW).\n")
    again = bot("scrape", "reddit", "rust", "--corpus", "code", "--include-nsfw", "--json")
    assert again.code == 0
    assert again.json == {"corpus": "code", "access": "public", "subreddits": [
        {"source": "r/rust", "fetched": 3, "added": 1, "already_present": 1, "skipped": {"removed": 1},
         "error": None}]}
    assert bot("corpus", "list", "--json").json[0]["documents"] == 1002


def test_scrape_reddit_with_an_app_says_nothing_of_public_listings(bot, reddit_app: FakeReddit) -> None:  # type: ignore[no-untyped-def]
    reddit_app.add("test", [post(1, "Hello")])
    result = bot("scrape", "reddit", "test", "--corpus", "t", "--json")
    assert (result.code, result.err, result.json["access"]) == (0, "", "app-only")


def test_scrape_reddit_errors_are_sentences_and_the_rest_is_kept(bot, fake_reddit: FakeReddit) -> None:  # type: ignore[no-untyped-def]
    fake_reddit.add("test", [post(n, f"Post {n}") for n in range(250)])
    fake_reddit.make_unavailable("secret", "banned")
    fake_reddit.www.fail("/r/test/top.json", call=2, drop=True)
    result = bot("scrape", "reddit", "secret", "test", "--corpus", "t")
    assert result.code == 1
    assert result.out == "r/test: 100 fetched, 100 new, 0 already present, 0 skipped before the error.\n"
    assert result.err == (
        PUBLIC_NOTE
        + "Error: r/secret is banned by Reddit, so it has no posts to read; pick another.\n"
        + "Error: The connection to Reddit failed while reading r/test (the answer was cut off); what was fetched "
          "is kept, so check your network and run the command again to continue.\n")
    assert bot("corpus", "show", "t", "--json").json["documents"] == 100


def test_scrape_reddit_waits_out_a_rate_limit_visibly(bot, fake_reddit: FakeReddit) -> None:  # type: ignore[no-untyped-def]
    fake_reddit.add("test", [post(n, f"Post {n}") for n in range(150)])
    fake_reddit.www.fail("/r/test/top.json", call=2, status=429, headers={
        "x-ratelimit-used": "100", "x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "42"})
    result = bot("scrape", "reddit", "test", "--corpus", "t")
    assert result.out == "r/test: 150 fetched, 150 new, 0 already present, 0 skipped.\n"
    assert re.fullmatch(re.escape(PUBLIC_NOTE) + r"Rate limited by Reddit; waiting 42s \(until \d\d:\d\d:\d\d\)\. "
                        r"Ctrl-C stops, keeping what is stored\.\n", result.err)
    fake_reddit.www.fail("/r/test/top.json", status=429, headers={"retry-after": "42"})
    refused = bot("scrape", "reddit", "test", "--corpus", "t", "--no-wait")
    assert refused.code == 1 and refused.out == ""
    assert re.fullmatch(re.escape(PUBLIC_NOTE) + r"Error: Reddit rate-limited reading r/test until \d\d:\d\d:\d\d; "
                        r"run the command again then, or leave out --no-wait to wait automatically\.\n", refused.err)


def test_ctrl_c_mid_scrape_keeps_the_pages_stored(bot, fake_reddit: FakeReddit, cli_store: Store) -> None:  # type: ignore[no-untyped-def]
    fake_reddit.add("test", [post(n, f"Post {n}") for n in range(450)])
    fake_reddit.www.fail("/r/test/top.json", call=3, interrupt=True)
    result = bot("scrape", "reddit", "test", "--corpus", "t")
    assert result.code == 130
    assert result.out == "r/test: 200 fetched, 200 new, 0 already present, 0 skipped before the interruption.\n"
    assert result.err == PUBLIC_NOTE + "Error: Interrupted; what was stored before the interruption is kept.\n"
    assert [row[2] for row in stored(cli_store, "t")] == [f"Post {n}" for n in range(200)]


def test_scrape_reddit_refuses_bad_options_before_fetching(bot, fake_reddit: FakeReddit) -> None:  # type: ignore[no-untyped-def]
    assert bot("scrape", "reddit", "test", "--corpus", "t", "--sort", "best").code == 2
    assert bot("scrape", "reddit", "test", "--corpus", "t", "--limit", "1001").code == 2
    bad_name = bot("scrape", "reddit", "python", "no such sub", "--corpus", "t")
    assert (bad_name.code, bad_name.out) == (1, "")
    assert bad_name.err == PUBLIC_NOTE + ("Error: 'no such sub' is not a subreddit name (2-21 letters, digits or _, "
                                          "like r/AskReddit); check the spelling.\n")
    assert fake_reddit.www.requests == []


def test_scrape_x_prints_a_summary(bot, fake_x: FakeX) -> None:  # type: ignore[no-untyped-def]
    fake_x.add_user("jack", [tweet(n, f"Post {n}", reply_to="1" if n % 10 == 0 else None)
                             for n in range(150, 0, -1)])
    result = bot("scrape", "x", "@jack", "--corpus", "jack", "--limit", "120")
    assert (result.code, result.err) == (0, "")
    assert result.out == "@jack: 120 fetched, 108 new, 0 already present, 12 skipped (12 replies).\n"
    again = bot("scrape", "x", "jack", "--corpus", "jack", "--json")
    assert again.json == {"corpus": "jack", "source": "@jack", "fetched": 150, "added": 27, "already_present": 108,
                          "skipped": {"reply": 15}, "error": None}


def test_scrape_x_without_read_access_points_to_the_archive(bot, fake_x: FakeX) -> None:  # type: ignore[no-untyped-def]
    fake_x.add_user("jack", [tweet(1, "Hello")])
    fake_x.server.fail("/2/users/2244994945/tweets", status=403, body=fake_x_api.CLIENT_NOT_ENROLLED)
    result = bot("scrape", "x", "jack", "--corpus", "jack")
    assert (result.code, result.out) == (1, "")
    assert result.err == ("Error: X_BEARER_TOKEN's API access cannot read posts (HTTP 403 client-not-enrolled); use "
                          "an app whose plan includes reading posts, or import your X archive instead with `bot "
                          "import path/to/archive.zip --corpus NAME` (x.com: Settings, Your account, Download an "
                          "archive of your data).\n")
    assert bot("corpus", "list", "--json").json == []


def test_scrape_x_without_a_token_says_what_to_set(bot, fake_x: FakeX, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("X_BEARER_TOKEN")
    result = bot("scrape", "x", "jack", "--corpus", "jack")
    assert result.code == 1 and result.err.startswith("Error: Reading posts from X needs X_BEARER_TOKEN")
    assert fake_x.server.requests == []


def test_the_reddit_user_agent_names_the_user_from_settings(bot, fake_reddit: FakeReddit,  # type: ignore[no-untyped-def]
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import __version__

    fake_reddit.add("test", [post(1, "Hello")])
    monkeypatch.setenv("REDDIT_USERNAME", "alice")
    bot("scrape", "reddit", "test", "--corpus", "t")
    monkeypatch.setenv("REDDIT_USER_AGENT", "web:my.own.bot:2.0 (by /u/bob)")
    from bot.cli import context

    context.settings.cache_clear()
    bot("scrape", "reddit", "test", "--corpus", "t")
    assert [r.headers["user-agent"] for r in fake_reddit.www.requests] == [
        f"python:nnbot:{__version__} (by /u/alice)", "web:my.own.bot:2.0 (by /u/bob)"]
    assert [r.path for r in fake_reddit.www.requests] == ["/r/test/top.json"] * 2  # a username alone logs nobody in


def test_the_commands_offer_what_the_scrapers_accept() -> None:
    from bot.cli import scrape as cli
    from scrapers import reddit, x

    assert (cli.SORTS, cli.TIMES, cli.REDDIT_LIMIT, cli.X_LIMIT) == (reddit.SORTS, reddit.TIMES, reddit.LISTING_CAP,
                                                                     x.TIMELINE_CAP)
