"""A Bluesky bot end to end, on SQLite and PostgreSQL, through the real atproto SDK and the fake PDS: each candidate one
record at most, whatever fails, whoever retries, and whichever process dies; and an autonomous bot under `bot run`."""

from __future__ import annotations

import shutil
import signal
import threading
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import select

from bot import posting, queue
from bot.config import load_bots_file, load_settings
from bot.corpus import add_documents
from bot.publishers.base import PostKey
from bot.publishers.bluesky import BlueskyPublisher, record_key
from bot.store import open_store
from bot.store.schema import BotState, Candidate, JobRun, Status
from scrapers.documents import Document
from tests.bot.service.helpers import add_candidates, bot_config, kill_while_posting, python, row, wait_for, write_bots
from tests.fakes import bluesky as fake
from tests.fakes.bluesky import ACCOUNT, CREATE_RECORD_PATH, GET_RECORD_PATH, FakeBluesky

BLUESKY_BOT = ('[[bot]]\nname = "bb"\ncorpus = "bb"\nplatform = "bluesky"\ndaily_cap = 50\n'
               '[bot.schedule]\npost = "1s"\nrefill = "1d"\n')
AUTONOMOUS_BOT = ('[[bot]]\nname = "bb"\ncorpus = "bb"\nplatform = "bluesky"\nmode = "autonomous"\nqueue_size = 4\n'
                  'daily_cap = 1\n[bot.schedule]\npost = "1s"\nrefill = "1h"\n')
LOST = "the connection dropped before an answer"


def link(uri: str) -> str:
    return f"https://bsky.app/profile/{ACCOUNT}/post/{uri.rsplit('/', 1)[1]}"


@pytest.fixture
def bluesky_bot(bluesky_account: FakeBluesky, tmp_path: Path) -> Path:
    return write_bots(tmp_path / "bots.toml", BLUESKY_BOT)


def test_each_approved_candidate_is_one_record_and_where_it_went_is_recorded(store, bluesky_bot,
                                                                              bluesky_account) -> None:
    settings, bot = load_settings(), bot_config(bluesky_bot, "bb")
    ids = add_candidates(store, "bb", ["First for Bluesky", "Second for Bluesky"])
    outcomes = [posting.post_next(store, settings, bot) for _ in range(3)]
    assert [o.status for o in outcomes] == ["posted", "posted", "empty"]
    records = bluesky_account.posts()
    assert [r.value["text"] for r in records] == ["First for Bluesky", "Second for Bluesky"]  # rkeys sort by id too
    for candidate_id, record in zip(ids, records):
        posted = row(store, candidate_id)
        assert (posted.remote_id, posted.remote_url) == (record.uri, link(record.uri))
        assert record.uri.endswith("/" + record_key(PostKey("bb", candidate_id, posted.text, posted.created_at)))
    assert bluesky_account.login_requests() == 1 and bluesky_account.create_requests() == 2


def test_a_candidate_approved_again_after_an_unknown_outcome_never_makes_a_second_record(
        store, bluesky_bot, bluesky_account) -> None:
    settings, bot = load_settings(), bot_config(bluesky_bot, "bb")
    [cid] = add_candidates(store, "bb", ["Made, but nobody heard"])
    bluesky_account.server.fail(CREATE_RECORD_PATH, hang_up=True)  # made, then the connection dropped
    bluesky_account.server.fail(GET_RECORD_PATH, status=503, body=fake.INTERNAL_SERVER_ERROR)  # and the lookup failed
    assert posting.post_next(store, settings, bot).status == "unknown"
    assert row(store, cid).reason.startswith(f"Bluesky gave no clear answer to the post ({LOST}), and looking it up "
                                             "failed too")
    with store.session() as s:  # a person decides it did not go out, and approves it again
        queue.approve(s, [cid])
    outcome = posting.post_next(store, settings, bot)  # same key: the PDS refuses it (500), the lookup finds it
    (record,) = bluesky_account.posts()
    assert (outcome.status, row(store, cid).remote_id) == ("posted", record.uri)
    assert bluesky_account.create_requests() == 2


def test_a_timeout_after_the_record_was_made_is_posted_once(store, bluesky_bot, bluesky_account) -> None:
    settings, bot = load_settings(), bot_config(bluesky_bot, "bb")
    [cid] = add_candidates(store, "bb", ["Answered too late"])
    BlueskyPublisher(settings).recent_posts(limit=1)  # logged in: the short timeout below is for the post alone
    answer = threading.Event()
    bluesky_account.server.fail(CREATE_RECORD_PATH, hold=answer)
    try:
        outcome = posting.post_next(store, settings, bot,
                                    publisher=BlueskyPublisher(settings, timeout=httpx.Timeout(2.0, connect=10.0)))
    finally:
        answer.set()
    (record,) = bluesky_account.posts()
    assert (outcome.status, row(store, cid).remote_id, row(store, cid).attempts) == ("posted", record.uri, 1)
    assert bluesky_account.create_requests() == 1


def test_an_unknown_post_is_found_by_reconcile_among_the_accounts_records(store, bluesky_bot,
                                                                          bluesky_account) -> None:
    settings, bots = load_settings(), load_bots_file(bluesky_bot)
    [cid] = add_candidates(store, "bb", ["Found by reconcile"])
    bluesky_account.indexing = False  # not in the AppView's feeds yet: reconcile reads the repo itself
    bluesky_account.server.fail(CREATE_RECORD_PATH, hang_up=True)
    bluesky_account.server.fail(GET_RECORD_PATH, status=503, body=fake.INTERNAL_SERVER_ERROR)
    assert posting.post_next(store, settings, bots.get("bb")).status == "unknown"
    (result,) = posting.reconcile(store, settings, bots)
    (record,) = bluesky_account.posts()
    assert result.found == [(cid, link(record.uri))]
    found = row(store, cid)
    assert (found.status, found.remote_id, found.remote_url) == ("posted", record.uri, link(record.uri))


def test_a_refused_app_password_leaves_the_candidate_approved(store, bluesky_bot, bluesky_account,
                                                              monkeypatch) -> None:
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "wrong-pass-word-here")
    [cid] = add_candidates(store, "bb", ["Waiting for a good password"])
    outcome = posting.post_next(store, load_settings(), bot_config(bluesky_bot, "bb"))
    kept = row(store, cid)
    assert (outcome.status, kept.status, kept.attempts) == ("approved", "approved", 0)
    assert outcome.message.endswith("(Invalid identifier or password); check BLUESKY_HANDLE, and make a new app "
                                    "password at https://bsky.app/settings/app-passwords for BLUESKY_APP_PASSWORD.")
    assert "wrong-pass-word-here" not in outcome.message and bluesky_account.create_requests() == 0


def test_a_429_holds_the_bots_posts_until_bluesky_s_reset(store, bluesky_bot, bluesky_account) -> None:
    settings, bot = load_settings(), bot_config(bluesky_bot, "bb")
    [cid] = add_candidates(store, "bb", ["Posted after the reset"])
    bluesky_account.server.fail(CREATE_RECORD_PATH, **fake.rate_limited(reset_in=600))
    assert posting.post_next(store, settings, bot).status == "failed"
    failed = row(store, cid)
    assert failed.reason.startswith("Bluesky rate-limited the post until ")
    assert timedelta(minutes=9) < failed.retry_at - failed.claimed_at < timedelta(minutes=11)
    with store.session() as s:
        assert s.get(BotState, "bb").post_not_before == failed.retry_at
    assert posting.post_next(store, settings, bot).status == "waiting"
    assert bluesky_account.create_requests() == 1 and bluesky_account.posts() == []


@pytest.mark.parametrize("made", [True, False], ids=["post-made", "post-not-made"])
def test_a_sigkill_between_claim_and_answer_never_posts_twice(database_url, bluesky_bot, bluesky_account, monkeypatch,
                                                              bot, made: bool) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    store = open_store(database_url)
    [cid] = add_candidates(store, "bb", ["Killed while posting"])
    release = threading.Event()
    bluesky_account.server.fail(CREATE_RECORD_PATH, hold=release, hang_up=not made, unhandled=not made)
    kill_while_posting(store, cid, bluesky_bot, "bb", reached=lambda: bluesky_account.create_requests() == 1,
                       release=release, platform="Bluesky")
    restarted = bot("--config", str(bluesky_bot), "run", "--once")  # start-up: recover, then reconcile
    # the bot has no model, so its refill fails and says so; the start-up's recovery is what is tested here
    assert (restarted.code, restarted.err) == (1, "Error: 1 job failed (bb:refill); the lines above say why, and "
                                                  "`bot status` shows each bot's last error.\n")
    after = row(store, cid)
    if made:
        (record,) = bluesky_account.posts()
        assert (after.status, after.remote_id) == ("posted", record.uri)
    else:
        assert (after.status, after.reason) == ("unknown", "not among the account's 100 latest posts; approve it "
                                                           "again to post it, or reject it")
        assert bluesky_account.posts() == []
        with store.session() as s:  # a person approves it again: posted now, once
            queue.approve(s, [cid])
        assert bot("--config", str(bluesky_bot), "post", "--bot", "bb").code == 0
    assert bot("--config", str(bluesky_bot), "post", "--bot", "bb").code == 1  # nothing approved is left to post
    assert [r.value["text"] for r in bluesky_account.posts()] == ["Killed while posting"]
    assert bluesky_account.login_requests() == 1  # the killed process's session served every later one
    store.close()


def test_an_autonomous_bluesky_bot_fills_its_queue_and_posts_its_best_candidate_once_under_bot_run(
        database_url, tmp_path, tiny_model_dir, titles, bluesky_account) -> None:
    shutil.copytree(tiny_model_dir, load_settings().model_dir("bb"))
    store = open_store(database_url)
    with store.session() as s:  # the tiny model was trained on corpus "titles"; the bot's corpus is the same text
        for corpus in ("titles", "bb"):
            add_documents(s, corpus, [Document(source="file", external_id=str(i), text=t)
                                      for i, t in enumerate(titles)])
    config = write_bots(tmp_path / "bots.toml", AUTONOMOUS_BOT)
    process = python("-m", "bot.cli", "--config", str(config), "run", env={"BOT_DATABASE_URL": database_url})

    def runs() -> list[tuple[str, str | None]]:
        with store.session() as s:
            return [(r.job, r.outcome) for r in s.scalars(select(JobRun).order_by(JobRun.id))]

    try:  # the post job runs every second: after its post, the daily cap (1) leaves it nothing to do
        wait_for(lambda: ("post", "ok") in runs() and runs()[-1] == ("post", "nothing"),
                 what="the refill, one post, and a post job after it that found the day's cap reached", deadline=240)
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "Running 1 bot (2 jobs); Ctrl-C stops." in err
    assert runs()[0] == ("refill", "ok") and runs().count(("post", "ok")) == 1
    (record,) = bluesky_account.posts()
    with store.session() as s:
        ranked = list(s.scalars(select(Candidate).where(Candidate.status.in_((Status.POSTED, Status.PENDING)))
                                .order_by(*queue.best_first())))
    assert ranked[0].status == Status.POSTED and len(ranked) >= 2  # the best of those it could choose from
    assert (ranked[0].text, ranked[0].remote_id, ranked[0].remote_url) == (record.value["text"], record.uri,
                                                                          link(record.uri))
    assert bluesky_account.login_requests() == 1
    store.close()
