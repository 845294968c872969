"""What each way a post can fail leaves in the database, through the real praw and tweepy and the local fakes."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot import posting
from bot.config import load_bots_file, load_settings
from bot.service.scheduler import next_runs, run_service
from bot.store.schema import BotState, Candidate, utcnow
from tests.bot.service.helpers import add_candidates, bot_config, kill_while_posting, row, wait_for, write_bots
from tests.fakes import x as fake_x
from tests.fakes.reddit import SUBMIT_PATH, FakeReddit
from tests.fakes.x import POST_PATH, FakeX

ROOT = Path(__file__).resolve().parents[3]
X_BOT = '[[bot]]\nname = "xb"\ncorpus = "xb"\nplatform = "x"\ndaily_cap = 50\n[bot.schedule]\npost = "1s"\nrefill = "1d"\n'
REDDIT_BOT = ('[[bot]]\nname = "rb"\ncorpus = "rb"\nplatform = "reddit"\ndestination = "r/test"\ndaily_cap = 50\n'
              '[bot.schedule]\npost = "1s"\nrefill = "1d"\n')


@pytest.fixture
def x_bot(x_account: FakeX, tmp_path: Path) -> Path:
    x_account.add_user(fake_x.ACCOUNT, [])
    return write_bots(tmp_path / "bots.toml", X_BOT)


@pytest.fixture
def reddit_bot(reddit_account: FakeReddit, tmp_path: Path) -> Path:
    reddit_account.add("test", [])
    return write_bots(tmp_path / "bots.toml", REDDIT_BOT)


def test_exactly_one_post_per_approved_candidate_on_x_and_reddit(store, x_bot, reddit_account, x_account) -> None:
    reddit_account.add("test", [])
    config = write_bots(x_bot, X_BOT + REDDIT_BOT)
    settings = load_settings()
    ids = {name: add_candidates(store, name, [f"{name} title one", f"{name} title two"]) for name in ("xb", "rb")}
    for name in ("xb", "rb"):
        outcomes = [posting.post_next(store, settings, bot_config(config, name)) for _ in range(3)]
        assert [o.status for o in outcomes] == ["posted", "posted", "empty"]
    assert [p["text"] for p in x_account.posted] == ["xb title one", "xb title two"]
    assert [p["title"] for p in reddit_account.created] == ["rb title one", "rb title two"]
    assert x_account.post_requests() == 2 and reddit_account.oauth.count("POST", SUBMIT_PATH) == 2
    first = row(store, ids["rb"][0])
    assert (first.remote_id, first.remote_url) == (
        reddit_account.created[0]["id"], f"{reddit_account.www.url}/r/test/comments/{reddit_account.created[0]['id']}/")
    assert row(store, ids["xb"][1]).remote_url == (
        f"https://x.com/{fake_x.ACCOUNT}/status/{x_account.posted[1]['id']}")


def test_an_x_rate_limit_waits_for_the_reset_then_posts(store, x_bot, x_account) -> None:
    settings, bots = load_settings(), load_bots_file(x_bot)
    [cid] = add_candidates(store, "xb", ["Posted after the reset"])
    x_account.server.fail(POST_PATH, **fake_x.rate_limited(reset_in=2))

    def run_once_until(status: str) -> bool:  # the first run also fills nothing (no model) and waits a second
        run_service(store, settings, bots, once=True)
        return row(store, cid).status == status

    wait_for(lambda: run_once_until("failed"), what="the rate-limited attempt")
    failed = row(store, cid)
    assert failed.retry_at is not None and failed.reason.startswith("X rate-limited")
    with store.session() as s:
        assert s.get(BotState, "xb").post_not_before == failed.retry_at
    assert next_runs(store)["xb:post"] == failed.retry_at  # the bot's post job moved to the reset
    # before the reset, nothing more goes out
    assert posting.post_next(store, settings, bot_config(x_bot, "xb")).status == "waiting"
    assert x_account.post_requests() == 1

    wait_for(lambda: run_once_until("posted"), what="the post after X's reset time")
    assert x_account.post_requests() == 2 and [p["text"] for p in x_account.posted] == ["Posted after the reset"]


def test_a_reddit_ratelimit_waits_as_told(store, reddit_bot, reddit_account) -> None:
    settings = load_settings()
    [cid] = add_candidates(store, "rb", ["Told to take a break"])
    reddit_account.rate_limit_posts(times=1, wait="9 minutes")
    outcome = posting.post_next(store, settings, bot_config(reddit_bot, "rb"))
    failed = row(store, cid)
    assert (outcome.status, failed.status, failed.attempts) == ("failed", "failed", 0)
    assert timedelta(minutes=9) <= failed.retry_at - failed.claimed_at <= timedelta(minutes=9, seconds=10)
    assert outcome.retry_at == failed.retry_at
    assert posting.post_next(store, settings, bot_config(reddit_bot, "rb")).status == "waiting"
    assert reddit_account.oauth.count("POST", SUBMIT_PATH) == 1 and reddit_account.created == []


def test_permanent_refusals_fail_with_the_platforms_words_and_are_not_retried(store, x_bot, x_account) -> None:
    settings, bot = load_settings(), bot_config(x_bot, "xb")
    x_account.add_user(fake_x.ACCOUNT, [fake_x.tweet(1, "Already said this")])
    [cid] = add_candidates(store, "xb", ["Already said this"])
    outcome = posting.post_next(store, settings, bot)
    failed = row(store, cid)
    assert (outcome.status, failed.status, failed.retry_at) == ("failed", "failed", None)
    assert failed.reason == ("X refused the post (You are not allowed to create a Tweet with duplicate content); "
                             "edit its text or reject it.")
    assert posting.post_next(store, settings, bot).status == "empty"
    assert x_account.post_requests() == 1


def test_refused_credentials_leave_the_candidate_approved(store, x_bot, x_account, monkeypatch) -> None:
    monkeypatch.setenv("X_ACCESS_TOKEN_SECRET", "not-the-secret")
    [cid] = add_candidates(store, "xb", ["Waiting for good keys"])
    outcome = posting.post_next(store, load_settings(), bot_config(x_bot, "xb"))
    kept = row(store, cid)
    assert (outcome.status, kept.status, kept.attempts) == ("approved", "approved", 0)
    assert "not-the-secret" not in outcome.message and x_account.post_requests() == 0


@pytest.mark.parametrize("failure", [{"status": 503, "body": fake_x.SERVICE_UNAVAILABLE}, {"hang_up": True}])
def test_an_answer_that_leaves_the_outcome_open_is_unknown_and_never_posted_again(store, x_bot, x_account,
                                                                                 failure) -> None:
    settings, bots = load_settings(), load_bots_file(x_bot)
    [cid] = add_candidates(store, "xb", ["Maybe it went out"])
    x_account.server.fail(POST_PATH, **failure)
    assert posting.post_next(store, settings, bots.get("xb")).status == "unknown"
    assert row(store, cid).status == "unknown"
    assert posting.post_next(store, settings, bots.get("xb")).status == "empty"
    assert x_account.post_requests() == 1


def test_transient_failures_are_retried_with_backoff_then_left_for_a_person(store, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("X_API_KEY", "k"), monkeypatch.setenv("X_API_SECRET", "s")
    monkeypatch.setenv("X_ACCESS_TOKEN", "1-t"), monkeypatch.setenv("X_ACCESS_TOKEN_SECRET", "ts")
    monkeypatch.setenv("X_API_URL", "http://127.0.0.1:9")  # nothing listens: refused before anything is sent
    config = write_bots(tmp_path / "bots.toml", X_BOT)
    settings, bot = load_settings(), bot_config(config, "xb")
    [cid] = add_candidates(store, "xb", ["Cannot connect yet"])
    for attempt in range(1, posting.MAX_POST_ATTEMPTS + 1):
        outcome = posting.post_next(store, settings, bot)  # BOT_SLEEP_SCALE=0: each retry is due at once
        assert (outcome.status, outcome.candidate_id) == ("failed", cid)
    last = row(store, cid)
    assert (last.attempts, last.retry_at) == (posting.MAX_POST_ATTEMPTS, None)
    assert last.reason.endswith(f"(gave up after {posting.MAX_POST_ATTEMPTS} attempts)")
    assert posting.post_next(store, settings, bot).status == "empty"
    assert posting.retry_delay(1, scale=1.0) == timedelta(minutes=1)
    assert posting.retry_delay(4, scale=1.0) == timedelta(minutes=8)
    assert posting.retry_delay(9, scale=1.0) == timedelta(hours=1)


@pytest.mark.parametrize("made", [True, False], ids=["post-made", "post-not-made"])
def test_a_sigkill_between_claim_and_answer_never_posts_twice(database_url, x_bot, x_account, monkeypatch, bot,
                                                              made: bool) -> None:
    from bot.store import open_store

    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    store = open_store(database_url)
    [cid] = add_candidates(store, "xb", ["Killed while posting"])
    release = threading.Event()
    x_account.server.fail(POST_PATH, hold=release, hang_up=not made, unhandled=not made)
    kill_while_posting(store, cid, x_bot, "xb", reached=lambda: x_account.post_requests() == 1, release=release,
                       platform="X")
    restarted = bot("--config", str(x_bot), "run", "--once")  # start-up: recover, then reconcile
    # the bot has no model, so its refill fails and says so; the start-up's recovery is what is tested here
    assert (restarted.code, restarted.err) == (1, "Error: 1 job failed (xb:refill); the lines above say why, and "
                                                  "`bot status` shows each bot's last error.\n")
    after = row(store, cid)
    if made:
        assert (after.status, after.remote_id) == ("posted", x_account.posted[0]["id"])
    else:
        assert after.status == "unknown"
        assert after.reason == ("not among the account's 100 latest posts; approve it again to post it, or "
                                "reject it")
    assert bot("--config", str(x_bot), "post", "--bot", "xb").code == 1  # nothing approved is left to post
    assert x_account.post_requests() == 1 and len(x_account.posted) == (1 if made else 0)
    store.close()


def test_start_up_turns_a_stale_posting_row_into_unknown_before_anything_runs(store, x_bot, x_account) -> None:
    [cid] = add_candidates(store, "xb", ["Claimed an hour ago"])
    with store.session() as s:
        c = s.get(Candidate, cid)
        c.status, c.claimed_by, c.claimed_at = "posting", "elsewhere:1:x", utcnow() - timedelta(hours=1)
    summary = run_service(store, load_settings(), load_bots_file(x_bot), once=True)
    assert summary.recovered == [cid] and row(store, cid).status == "unknown"
    assert x_account.post_requests() == 0
    with store.session() as s:
        assert list(s.scalars(select(Candidate.status))) == ["unknown"]


def test_a_reddit_ratelimit_then_success_with_nothing_sent_during_the_break(store, reddit_bot, reddit_account) -> None:
    settings, bot = load_settings(), bot_config(reddit_bot, "rb")
    [cid] = add_candidates(store, "rb", ["Posted after the break"])
    reddit_account.rate_limit_posts(times=1, wait="1 second")
    assert posting.post_next(store, settings, bot).status == "failed"
    # Until the break (plus the publisher's margin) is over, each try answers "waiting" and sends nothing.
    wait_for(lambda: posting.post_next(store, settings, bot).posted, what="the post after Reddit's break", every=0.5)
    assert row(store, cid).status == "posted" and row(store, cid).attempts == 1
    assert reddit_account.oauth.count("POST", SUBMIT_PATH) == 2
    assert [p["title"] for p in reddit_account.created] == ["Posted after the break"]
