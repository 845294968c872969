"""Scraping Bluesky into the store and `bot scrape bluesky`: what lands in the corpus, whose login reads it, and what
the user sees."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import load_bots_file, load_settings
from bot.publishers.base import PostKey
from bot.publishers.bluesky import BlueskyPublisher
from bot.scraping import SourceSummary, scrape_bluesky
from bot.service import jobs
from bot.store import Store
from bot.store.schema import Corpus, StoredDocument
from scrapers.errors import ScrapeError
from tests.bot.service.helpers import file_bot, write_bots
from tests.fakes.bluesky import ACCOUNT, AUTHOR_FEED_PATH, FakeBluesky

ALICE = "alice.bsky.social"


def stored(store: Store, corpus: str) -> list[tuple[object, ...]]:
    with store.session() as session:
        rows = session.scalars(select(StoredDocument).join(Corpus).where(Corpus.name == corpus)
                               .order_by(StoredDocument.id))
        return [(d.source, d.external_id, d.text, d.author, d.created_at, d.url) for d in rows]


def counts(summary: SourceSummary) -> tuple[object, ...]:
    return (summary.source, summary.fetched, summary.added, summary.already_present, dict(summary.skipped),
            summary.error)


@pytest.fixture
def alice(fake_bluesky: FakeBluesky) -> FakeBluesky:
    """alice's feed, oldest first: two posts, a reply to someone, a repost, one more post."""
    fake_bluesky.add_actor(ALICE)
    fake_bluesky.add_actor("bob.bsky.social")
    fake_bluesky.post(ALICE, "First of mine", created_at="2024-01-01T10:00:00.000Z")
    fake_bluesky.post(ALICE, "Second of mine")
    fake_bluesky.post(ALICE, "To bob", reply_to=fake_bluesky.post("bob.bsky.social", "Bob's"))
    fake_bluesky.repost(ALICE, fake_bluesky.post("bob.bsky.social", "Bob's reposted"))
    fake_bluesky.post(ALICE, "Third of mine")
    return fake_bluesky


def test_bluesky_posts_land_in_the_store_and_a_second_scrape_adds_only_new_ones(store: Store,
                                                                                alice: FakeBluesky) -> None:
    summary = scrape_bluesky(store, load_settings(), "alice", "@alice.bsky.social")
    assert counts(summary) == ("@alice.bsky.social", 4, 3, 0, {"repost": 1}, None)
    rows = stored(store, "alice")
    assert [row[2] for row in rows] == ["Third of mine", "Second of mine", "First of mine"]
    first = alice.posts(ALICE)[0]
    assert rows[2] == ("bluesky", first.uri, "First of mine", ALICE, datetime(2024, 1, 1, 10, tzinfo=UTC),
                       f"https://bsky.app/profile/{ALICE}/post/{first.uri.rsplit('/', 1)[1]}")
    alice.post(ALICE, "Fourth of mine")
    again = scrape_bluesky(store, load_settings(), "alice", ALICE, replies=True)
    assert counts(again) == ("@alice.bsky.social", 6, 2, 3, {"repost": 1}, None)  # new: the fourth, and the reply
    assert [row[2] for row in stored(store, "alice")][3:] == ["Fourth of mine", "To bob"]


def test_with_the_account_set_reading_uses_the_session_posting_keeps(store: Store, alice: FakeBluesky,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUESKY_HANDLE", ACCOUNT)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "abcd-efgh-ijkl-mnop")
    publisher = BlueskyPublisher(load_settings())
    publisher.publish("Posted first", key=PostKey("bb", 1, "Posted first", datetime.now(UTC)))
    publisher.close()
    assert counts(scrape_bluesky(store, load_settings(), "alice", ALICE))[2] == 3
    feed = [r for r in alice.server.requests if r.path == AUTHOR_FEED_PATH]
    assert feed and all(r.headers["authorization"].startswith("Bearer ") for r in feed)  # logged in
    assert alice.login_requests() == 1  # the session posting made, not another login


def test_a_refused_app_password_stops_the_scrape_in_one_sentence(store: Store, alice: FakeBluesky,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BLUESKY_HANDLE", ACCOUNT)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "wrong-pass-word-here")
    with pytest.raises(ScrapeError) as caught:
        scrape_bluesky(store, load_settings(), "alice", ALICE)
    assert str(caught.value) == (f"Bluesky refused the login of {ACCOUNT} with its app password (Invalid identifier "
                                 "or password); check BLUESKY_HANDLE, and make a new app password at "
                                 "https://bsky.app/settings/app-passwords for BLUESKY_APP_PASSWORD.")
    assert stored(store, "alice") == []


def test_the_scrape_job_reads_a_bots_bluesky_source(store: Store, tmp_path: Path, alice: FakeBluesky) -> None:
    config = write_bots(tmp_path / "b.toml", file_bot("fb", extra=f'sources = [{{ type = "bluesky", actor = '
                                                                  f'"{ALICE}", limit = 10 }}]'))
    runtime = jobs.Runtime(store=store, settings=load_settings(), bots=load_bots_file(config), owner="test",
                           reschedule=lambda job, when: None)
    result = jobs.run_job(runtime, "fb", "scrape")
    assert (result.outcome, result.message) == ("ok", "added 3 new documents to corpus 'fb'")
    assert jobs.run_job(runtime, "fb", "scrape").message == "added 0 new documents to corpus 'fb'"


# --- the command ---------------------------------------------------------------------------------------------


def test_scrape_bluesky_prints_a_summary(bot, alice: FakeBluesky) -> None:  # type: ignore[no-untyped-def]
    result = bot("scrape", "bluesky", "@alice.bsky.social", "--corpus", "alice")
    assert (result.code, result.err) == (0, "")
    assert result.out == "@alice.bsky.social: 4 fetched, 3 new, 0 already present, 1 skipped (1 repost).\n"
    again = bot("scrape", "bluesky", ALICE, "--corpus", "alice", "--replies", "--reposts", "--limit", "4", "--json")
    assert again.json == {"corpus": "alice", "source": "@alice.bsky.social", "fetched": 4, "added": 2,
                          "already_present": 2, "skipped": {}, "error": None}


def test_scrape_bluesky_of_an_unknown_account_says_so(bot, alice: FakeBluesky) -> None:  # type: ignore[no-untyped-def]
    result = bot("scrape", "bluesky", "nobody.bsky.social", "--corpus", "x")
    assert (result.code, result.out) == (1, "")
    assert result.err == "Error: Bluesky has no account @nobody.bsky.social; check the handle.\n"


def test_scrape_bluesky_refuses_a_name_before_fetching(bot, fake_bluesky: FakeBluesky) -> None:  # type: ignore[no-untyped-def]
    result = bot("scrape", "bluesky", "alice", "--corpus", "x")
    assert (result.code, result.err) == (1, "Error: 'alice' is not a Bluesky handle or DID (a handle looks like "
                                             "alice.bsky.social); check the spelling.\n")
    assert fake_bluesky.server.requests == []


def test_the_command_offers_what_the_scraper_and_bots_toml_accept() -> None:
    from bot.cli import scrape as cli
    from bot.config import BlueskySource
    from scrapers import bluesky

    limit = BlueskySource.model_fields["limit"]
    assert (cli.BLUESKY_LIMIT, cli.BLUESKY_DEFAULT) == (bluesky.FEED_CAP, limit.default)
    assert max(m.le for m in limit.metadata if hasattr(m, "le")) == bluesky.FEED_CAP
