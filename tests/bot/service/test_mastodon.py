"""A Mastodon bot through claim, publish and record, `bot run` and reconcile, against the fake Mastodon through the
real Mastodon.py: each candidate posted once, whatever fails and however often it is sent."""

from __future__ import annotations

import shutil
import signal
import subprocess
import threading
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot import posting, queue
from bot.config import load_bots_file, load_settings
from bot.corpus import add_documents
from bot.publishers.base import PostKey
from bot.publishers.mastodon import MastodonPublisher
from bot.store import Store, open_store
from bot.store.schema import BotState, Candidate, JobRun, Status
from scrapers.documents import Document
from tests.bot.service.helpers import add_candidates, bot_config, kill_while_posting, python, row, wait_for, write_bots
from tests.fakes import mastodon as fake_api
from tests.fakes.mastodon import ACCOUNT, STATUSES_PATH, FakeMastodon, rate_limited

MASTODON_BOT = ('[[bot]]\nname = "mb"\ncorpus = "mb"\nplatform = "mastodon"\ndaily_cap = 50\n'
                '[bot.schedule]\npost = "1s"\nrefill = "1d"\n')
SHORT = (5.0, 0.3)  # seconds to connect and to answer: an answer held longer is a timeout after the post was sent


def digest(store: Store, candidate_id: int) -> str:
    candidate = row(store, candidate_id)
    return PostKey(bot=candidate.bot, candidate_id=candidate.id, text=candidate.text,
                   created_at=candidate.created_at).digest


@pytest.fixture
def mastodon_bot(mastodon_account: FakeMastodon, tmp_path: Path) -> Path:
    return write_bots(tmp_path / "bots.toml", MASTODON_BOT)


def test_a_post_is_recorded_with_the_statuss_id_and_url_and_sent_with_the_candidates_key(
        store: Store, mastodon_bot: Path, mastodon_account: FakeMastodon) -> None:
    settings, bot = load_settings(), bot_config(mastodon_bot, "mb")
    ids = add_candidates(store, "mb", ["First toot of the bot", "Second toot of the bot"])
    outcomes = [posting.post_next(store, settings, bot) for _ in range(3)]
    assert [o.status for o in outcomes] == ["posted", "posted", "empty"]
    first = row(store, ids[0])
    status = mastodon_account.posted[0]
    assert (first.remote_id, first.remote_url) == (status["id"], f"{mastodon_account.url}/@{ACCOUNT}/{status['id']}")
    assert [s["text"] for s in mastodon_account.posted] == ["First toot of the bot", "Second toot of the bot"]
    assert mastodon_account.idempotency_keys() == [digest(store, ids[0]), digest(store, ids[1])]
    assert [s["visibility"] for s in mastodon_account.posted] == ["unlisted", "unlisted"]


def test_a_timeout_after_the_post_was_made_is_unknown_and_approved_again_it_ends_posted_once(
        store: Store, mastodon_bot: Path, mastodon_account: FakeMastodon) -> None:
    settings, bot = load_settings(), bot_config(mastodon_bot, "mb")
    [cid] = add_candidates(store, "mb", ["Made while nobody listened"])
    answer = threading.Event()
    mastodon_account.server.fail(STATUSES_PATH, hold=answer)  # Mastodon makes the status; its answer never comes
    try:
        lost = posting.post_next(store, settings, bot, publisher=MastodonPublisher(settings, timeout=SHORT))
    finally:
        answer.set()
    assert (lost.status, row(store, cid).status) == ("unknown", "unknown")
    assert posting.post_next(store, settings, bot).status == "empty"  # never sent again by itself

    with store.session() as s:  # a person approves it again without looking (within Mastodon's hour)
        queue.approve(s, [cid])
    again = posting.post_next(store, settings, bot)
    posted = row(store, cid)
    assert (again.status, posted.status, posted.remote_id) == ("posted", "posted", mastodon_account.posted[0]["id"])
    assert len(mastodon_account.posted) == 1  # the same Idempotency-Key answered the first status
    assert mastodon_account.idempotency_keys() == [digest(store, cid)] * 2
    assert len(mastodon_account.timeline()) == 1


@pytest.mark.parametrize("made", [True, False], ids=["post-made", "post-not-made"])
def test_a_sigkill_between_claim_and_answer_never_posts_twice_and_reconcile_finds_it(
        database_url: str, mastodon_bot: Path, mastodon_account: FakeMastodon, monkeypatch: pytest.MonkeyPatch,
        bot, made: bool) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    store = open_store(database_url)
    [cid] = add_candidates(store, "mb", ["Killed while posting"])
    release = threading.Event()
    mastodon_account.server.fail(STATUSES_PATH, hold=release, hang_up=not made, unhandled=not made)
    kill_while_posting(store, cid, mastodon_bot, "mb", reached=lambda: len(mastodon_account.post_requests()) == 1,
                       release=release, platform="Mastodon")
    restarted = bot("--config", str(mastodon_bot), "run", "--once")  # start-up: recover, then reconcile
    # the bot has no model, so its refill fails and says so; the start-up's recovery is what is tested here
    assert (restarted.code, restarted.err) == (1, "Error: 1 job failed (mb:refill); the lines above say why, and "
                                                  "`bot status` shows each bot's last error.\n")
    after = row(store, cid)
    if made:
        status = mastodon_account.posted[0]
        assert (after.status, after.remote_id, after.remote_url) == (
            "posted", status["id"], f"{mastodon_account.url}/@{ACCOUNT}/{status['id']}")
    else:
        assert after.status == "unknown"
        assert after.reason == ("not among the account's 100 latest posts; approve it again to post it, or "
                                "reject it")
    assert bot("--config", str(mastodon_bot), "post", "--bot", "mb").code == 1  # nothing approved is left to post
    assert len(mastodon_account.post_requests()) == 1 and len(mastodon_account.posted) == (1 if made else 0)
    store.close()


def test_a_429_waits_for_x_ratelimit_reset_with_nothing_sent_meanwhile(store: Store, mastodon_bot: Path,
                                                                       mastodon_account: FakeMastodon) -> None:
    settings, bot = load_settings(), bot_config(mastodon_bot, "mb")
    [cid] = add_candidates(store, "mb", ["Posted after the reset"])
    limited = rate_limited(reset_in=120)
    mastodon_account.server.fail(STATUSES_PATH, **limited)
    outcome = posting.post_next(store, settings, bot)
    failed = row(store, cid)
    reset = datetime.fromisoformat(limited["headers"]["X-RateLimit-Reset"]) + timedelta(seconds=1)
    assert (outcome.status, failed.status, failed.attempts, failed.retry_at) == ("failed", "failed", 0, reset)
    assert failed.reason == (f"{mastodon_account.domain} rate-limited the post until {reset:%H:%M:%S} UTC; try again "
                             "after that.")
    with store.session() as s:
        assert s.get(BotState, "mb").post_not_before == reset  # type: ignore[union-attr]
    assert posting.post_next(store, settings, bot).status == "waiting"
    assert len(mastodon_account.post_requests()) == 1 and mastodon_account.posted == []


@pytest.mark.parametrize(("token", "says"), [("not-the-token", "(HTTP 401: The access token is invalid)"),
                                             (fake_api.READ_TOKEN, "(HTTP 403: This action is outside the "
                                                                   "authorized scopes)")],
                         ids=["refused-token", "no-write-scope"])
def test_a_refused_token_or_a_missing_scope_leaves_the_candidate_approved(
        store: Store, mastodon_bot: Path, mastodon_account: FakeMastodon, monkeypatch: pytest.MonkeyPatch,
        token: str, says: str) -> None:
    monkeypatch.setenv("MASTODON_ACCESS_TOKEN", token)
    settings, bot = load_settings(), bot_config(mastodon_bot, "mb")
    [cid] = add_candidates(store, "mb", ["Waiting for a good token"])
    outcome = posting.post_next(store, settings, bot)
    kept = row(store, cid)
    assert (outcome.status, kept.status, kept.attempts) == ("approved", "approved", 0)
    assert says in outcome.message and token not in outcome.message
    with store.session() as s:
        assert s.get(BotState, "mb").post_not_before is not None  # type: ignore[union-attr]
    assert mastodon_account.posted == []


def test_reconcile_finds_a_status_whose_answer_was_lost_and_not_one_never_made(
        store: Store, mastodon_bot: Path, mastodon_account: FakeMastodon) -> None:
    settings, bot = load_settings(), bot_config(mastodon_bot, "mb")
    [made, lost] = add_candidates(store, "mb", ["Made, then silence & a shrug", "Never made"])
    mastodon_account.server.fail(STATUSES_PATH, hang_up=True)  # made, but the connection closed without an answer
    assert posting.post_next(store, settings, bot).status == "unknown"
    mastodon_account.server.fail(STATUSES_PATH, hang_up=True, unhandled=True)  # closed before anything was made
    assert posting.post_next(store, settings, bot).status == "unknown"
    mastodon_account.add_status("alice", "Made, then silence & a shrug")  # the same text by another account: not ours

    (result,) = posting.reconcile(store, settings, load_bots_file(mastodon_bot))
    status = mastodon_account.posted[0]
    assert result.found == [(made, f"{mastodon_account.url}/@{ACCOUNT}/{status['id']}")] and result.error is None
    assert (row(store, made).status, row(store, made).remote_id) == ("posted", status["id"])
    assert row(store, lost).status == "unknown"
    assert len(mastodon_account.post_requests()) == 2 and len(mastodon_account.posted) == 1


# --- a review-mode Mastodon bot under `bot run` ----------------------------------------------------------------


def test_a_review_mode_mastodon_bot_under_bot_run_posts_what_a_person_approved_once(
        database_url: str, mastodon_account: FakeMastodon, tmp_path: Path, tiny_model_dir: Path,
        titles: list[str]) -> None:
    settings = load_settings()
    shutil.copytree(tiny_model_dir, settings.model_dir("mb"))
    store = open_store(database_url)
    with store.session() as s:  # the tiny model was trained on corpus "titles"; the bot's corpus is the same text
        for corpus in ("titles", "mb"):
            add_documents(s, corpus, [Document(source="file", external_id=str(i), text=t)
                                      for i, t in enumerate(titles)])
    config = write_bots(tmp_path / "bots.toml", '[[bot]]\nname = "mb"\ncorpus = "mb"\nplatform = "mastodon"\n'
                                                'mode = "review"\nqueue_size = 3\n[bot.schedule]\npost = "1s"\n'
                                                'refill = "1h"\n')

    def candidates(status: str) -> list[int]:
        with store.session() as s:
            return list(s.scalars(select(Candidate.id).where(Candidate.bot == "mb", Candidate.status == status)
                                  .order_by(Candidate.id)))

    def post_runs() -> int:
        with store.session() as s:
            return s.scalar(select(func.count()).select_from(JobRun).where(
                JobRun.bot == "mb", JobRun.job == "post", JobRun.finished_at.is_not(None))) or 0

    process = python("-m", "bot.cli", "--config", str(config), "run", env={"BOT_DATABASE_URL": database_url},
                     stdout=subprocess.DEVNULL)
    try:
        pending = wait_for(lambda: len(candidates(Status.PENDING)) == 3 and candidates(Status.PENDING),
                           what="the first refill to queue three candidates", deadline=180)
        wait_for(lambda: post_runs() >= 2, what="post jobs that find nothing approved")
        assert mastodon_account.post_requests() == []  # review mode: nothing goes out unapproved
        chosen = pending[1]
        with store.session() as s:
            queue.approve(s, [chosen])
        wait_for(lambda: row(store, chosen).status == Status.POSTED, what="the approved candidate to be posted")
        runs = post_runs()
        wait_for(lambda: post_runs() >= runs + 2, what="two more post jobs after it")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    posted = row(store, chosen)
    (status,) = mastodon_account.posted
    assert (status["text"], status["visibility"]) == (posted.text, "unlisted")
    assert (posted.remote_id, posted.remote_url) == (status["id"], f"{mastodon_account.url}/@{ACCOUNT}/{status['id']}")
    assert mastodon_account.idempotency_keys() == [digest(store, chosen)]
    assert sorted(candidates(Status.PENDING)) == sorted(set(pending) - {chosen})
    store.close()
