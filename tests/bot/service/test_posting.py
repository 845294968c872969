"""Posting at most once, on SQLite and PostgreSQL: claims, order, the daily cap, crashes, races, reconcile."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot import posting, queue
from bot.config import load_settings
from bot.errors import NotFoundError, QueueError
from bot.processes import process_owner
from bot.store.schema import Candidate, Status, utcnow
from tests.bot.service.helpers import add_candidates, bot_config, file_bot, write_bots

ROOT = Path(__file__).resolve().parents[3]


def statuses(store, ids):  # type: ignore[no-untyped-def]
    with store.session() as s:
        rows = {c.id: c for c in s.scalars(select(Candidate).where(Candidate.id.in_(ids)))}
        return [rows[i].status for i in ids]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_bots(tmp_path / "bots.toml", file_bot("fb", daily_cap=3) + "\n"
                      + file_bot("auto", mode="autonomous", destination="auto.jsonl",
                                 extra='[bot.filters]\nnovelty = false'))


def test_review_mode_posts_approved_candidates_once_each_in_approval_order(store, config, bot_home) -> None:
    settings, bot = load_settings(), bot_config(config, "fb")
    ids = add_candidates(store, "fb", ["First title here", "Second title here", "Third title here"], approve=False)
    with store.session() as s:  # approved in another order than queued
        queue.approve(s, [ids[2]])
    with store.session() as s:
        queue.approve(s, [ids[0]])
    outcomes = [posting.post_next(store, settings, bot) for _ in range(3)]
    assert [(o.status, o.candidate_id) for o in outcomes] == [("posted", ids[2]), ("posted", ids[0]), ("empty", None)]
    assert outcomes[2].message == ("bot 'fb' has no approved candidate to post (1 pending: approve some with `bot "
                                   "queue approve ID` or on the review page, `bot serve`)")
    assert [line["text"] for line in lines(bot_home / "posts.jsonl")] == ["Third title here", "First title here"]
    assert statuses(store, ids) == ["posted", "pending", "posted"]
    with store.session() as s:
        posted = s.get(Candidate, ids[2])
        assert posted.remote_id == lines(bot_home / "posts.jsonl")[0]["id"]
        assert posted.remote_url == f"{(bot_home / 'posts.jsonl').as_uri()}#{posted.remote_id}"
        assert posted.attempts == 1 and posted.claimed_by == process_owner() and posted.posted_at is not None


def test_the_daily_cap_counts_posted_posting_and_unknown_and_holds_across_a_restart(database_url, config) -> None:
    from bot.store import open_store

    settings, bot = load_settings(), bot_config(config, "fb")  # daily_cap = 3
    store = open_store(database_url)
    ids = add_candidates(store, "fb", [f"Title number {n} here" for n in range(6)])
    assert posting.post_next(store, settings, bot).posted
    with store.session() as s:  # one in flight elsewhere, one whose outcome is unknown: both count
        s.execute(update(Candidate).where(Candidate.id == ids[1]).values(
            status=Status.POSTING, claimed_by="elsewhere:1:x", claimed_at=utcnow()))
        s.execute(update(Candidate).where(Candidate.id == ids[2]).values(status=Status.UNKNOWN, claimed_at=utcnow()))
    store.close()
    restarted = open_store(database_url)
    outcome = posting.post_next(restarted, settings, bot)
    assert outcome.status == "cap"
    assert outcome.message == ("bot 'fb' has made its 3 posts of the day (daily_cap); the next can go out after "
                               "midnight UTC")
    assert outcome.retry_at == posting.next_day_start(utcnow(), "UTC")
    assert statuses(restarted, ids[3:]) == ["approved"] * 3
    restarted.close()


def test_the_day_is_the_bots_time_zone() -> None:
    now = datetime(2026, 3, 29, 23, 30, tzinfo=UTC)  # 01:30 the next day in Berlin, on the night clocks move
    assert posting.day_start(now, "UTC") == datetime(2026, 3, 29, tzinfo=UTC)
    assert posting.day_start(now, "Europe/Berlin") == datetime(2026, 3, 29, 22, tzinfo=UTC)
    assert posting.next_day_start(now, "Europe/Berlin") == datetime(2026, 3, 30, 22, tzinfo=UTC)


def test_autonomous_mode_posts_the_best_pending_candidate_that_still_passes_the_filters(store, tmp_path) -> None:
    config = write_bots(tmp_path / "bots.toml", file_bot(
        "auto", mode="autonomous", destination="auto.jsonl",
        extra='[bot.filters]\nnovelty = false\nblocklist = ["crypto"]'))
    settings, bot = load_settings(), bot_config(config, "auto")
    # mean log-probability per token: -1.0 (blocked since it was queued), -2.0, -3.0
    ids = add_candidates(store, "auto", ["Buy crypto now please", "A fluent title here", "A worse title here"],
                         approve=False, logprobs=[-5.0, -10.0, -15.0])
    outcome = posting.post_next(store, settings, bot)
    assert (outcome.status, outcome.candidate_id) == ("posted", ids[1])
    assert statuses(store, ids) == ["rejected", "posted", "pending"]
    with store.session() as s:
        assert s.get(Candidate, ids[0]).reason == ("blocklist: contains the blocked term 'crypto' "
                                                   "(checked when posting)")


def test_review_mode_never_posts_what_nobody_approved(store, config) -> None:
    ids = add_candidates(store, "fb", ["Pending title number one"], approve=False)
    outcome = posting.post_next(store, load_settings(), bot_config(config, "fb"))
    assert outcome.status == "empty" and statuses(store, ids) == ["pending"]


def test_posting_by_hand_checks_the_candidate(store, config, bot_home) -> None:
    settings, bot = load_settings(), bot_config(config, "fb")
    ids = add_candidates(store, "fb", ["A pending title by hand", "An unknown one here"], approve=False)
    with store.session() as s:
        s.execute(update(Candidate).where(Candidate.id == ids[1]).values(status=Status.UNKNOWN))
    assert posting.post_next(store, settings, bot, candidate_id=ids[0]).posted  # a person's choice: pending is fine
    with pytest.raises(QueueError, match=r"^Candidate 2 may already be posted \(its outcome is unknown\); run `bot "
                                         r"queue reconcile`, or approve it again"):
        posting.post_next(store, settings, bot, candidate_id=ids[1])
    with pytest.raises(QueueError, match="^Candidate 1 is posted; only approved, pending, failed candidates can"):
        posting.post_next(store, settings, bot, candidate_id=ids[0])
    with pytest.raises(NotFoundError, match="^Bot 'fb' has no candidate 99"):
        posting.post_next(store, settings, bot, candidate_id=99)
    assert len(lines(bot_home / "posts.jsonl")) == 1


def test_a_posting_row_of_an_ended_process_becomes_unknown_and_is_never_posted_again(store, tmp_path) -> None:
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", daily_cap=1000))
    settings, bot = load_settings(), bot_config(config, "fb")
    ids = add_candidates(store, "fb", ["Claimed by a dead process", "Claimed by a live one", "Claimed long ago"])
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    dead_owner = f"{os.uname().nodename}:{int(ended.stdout)}:deadbeef"
    now = utcnow()
    with store.session() as s:
        for id_, owner, when in [(ids[0], dead_owner, now), (ids[1], process_owner(), now),
                                 (ids[2], "otherhost:1:x", now - timedelta(hours=1))]:
            s.execute(update(Candidate).where(Candidate.id == id_).values(
                status=Status.POSTING, claimed_by=owner, claimed_at=when))
    assert posting.recover_interrupted(store) == [ids[0], ids[2]]
    assert statuses(store, ids) == ["unknown", "posting", "unknown"]
    assert posting.post_next(store, settings, bot).status == "empty"


def test_reconcile_finds_an_unknown_post_that_exists_and_leaves_the_rest_for_a_person(store, config,
                                                                                      bot_home) -> None:
    from bot.config import load_bots_file

    settings, bot = load_settings(), bot_config(config, "fb")
    ids = add_candidates(store, "fb", ["It reached the file", "It never did reach"])
    assert posting.post_next(store, settings, bot).posted
    with store.session() as s:  # as if the answer had been lost: the line is in the file, the row unknown
        s.execute(update(Candidate).where(Candidate.id == ids[0]).values(
            status=Status.UNKNOWN, remote_id=None, remote_url=None))
        s.execute(update(Candidate).where(Candidate.id == ids[1]).values(status=Status.UNKNOWN, claimed_at=utcnow()))
    [result] = posting.reconcile(store, settings, load_bots_file(config))
    line = lines(bot_home / "posts.jsonl")[0]
    assert result.found == [(ids[0], f"{(bot_home / 'posts.jsonl').as_uri()}#{line['id']}")]
    assert result.missing == [ids[1]] and result.error is None
    assert statuses(store, ids) == ["posted", "unknown"]
    with store.session() as s:
        assert s.get(Candidate, ids[1]).reason == ("not among the account's 100 latest posts; approve it again to "
                                                  "post it, or reject it")


WORKER = """
import sys
from bot.config import load_bots_file, load_settings
from bot.posting import post_next
from bot.store import open_store
store, bot = open_store(sys.argv[1]), load_bots_file(__import__("pathlib").Path(sys.argv[2])).get("fb")
posted = 0
while post_next(store, load_settings(), bot).posted:
    posted += 1
print(posted)
"""


def test_processes_racing_for_the_same_candidates_post_each_exactly_once(database_url, tmp_path, bot_home) -> None:
    from bot.store import open_store

    config = write_bots(tmp_path / "bots.toml", file_bot("fb", daily_cap=1000))
    store = open_store(database_url)
    ids = add_candidates(store, "fb", [f"Racing title number {n}" for n in range(60)])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", WORKER, database_url, str(config)], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    results = [w.communicate(timeout=120) for w in workers]
    assert [w.returncode for w in workers] == [0, 0, 0], [err for _, err in results]
    assert sum(int(out) for out, _ in results) == 60
    posted = lines(bot_home / "posts.jsonl")
    assert sorted(p["text"] for p in posted) == sorted(f"Racing title number {n}" for n in range(60))
    assert statuses(store, ids) == ["posted"] * 60
    with store.session() as s:
        assert sorted(s.scalars(select(Candidate.remote_id))) == sorted(p["id"] for p in posted)
    store.close()


def test_a_control_character_never_reaches_a_platform_even_when_a_person_approved_it(store, config, bot_home) -> None:
    ids = add_candidates(store, "fb", ["Stored before the rule \x1b[2J", "A clean title here"])
    outcome = posting.post_next(store, load_settings(), bot_config(config, "fb"))
    assert (outcome.status, outcome.candidate_id) == ("posted", ids[1])
    assert statuses(store, ids) == ["rejected", "posted"]
    with store.session() as s:
        assert s.get(Candidate, ids[0]).reason == "controls: contains the control character \\x1b (checked when posting)"
    assert [line["text"] for line in lines(bot_home / "posts.jsonl")] == ["A clean title here"]


def test_reconcile_credits_a_bot_with_its_own_posts_only_where_two_bots_share_a_destination(store, tmp_path,
                                                                                            bot_home) -> None:
    from bot.config import load_bots_file

    config = write_bots(tmp_path / "bots.toml", file_bot("alpha", destination="shared.jsonl")
                        + file_bot("beta", destination="shared.jsonl"))
    settings, bots = load_settings(), load_bots_file(config)
    [alpha] = add_candidates(store, "alpha", ["The same title twice"])
    [beta] = add_candidates(store, "beta", ["The same title twice"])
    assert posting.post_next(store, settings, bot_config(config, "alpha")).posted
    with store.session() as s:  # beta's own attempt was lost before it reached the file
        s.execute(update(Candidate).where(Candidate.id == beta).values(status=Status.UNKNOWN, claimed_at=utcnow()))
    [result] = posting.reconcile(store, settings, bots, bot_name="beta")
    assert (result.found, result.missing) == ([], [beta])  # alpha's line says it is alpha's
    # A line that does not say which bot posted it (as on X, where two bots may share an account), credited to
    # another of alpha's candidates: it is not beta's either.
    path = bot_home / "shared.jsonl"
    path.write_text(path.read_text() + json.dumps({"id": "unsigned", "text": "The same title twice",
                                                   "posted_at": utcnow().isoformat()}) + "\n")
    [again] = add_candidates(store, "alpha", ["The same title twice"], approve=False)
    with store.session() as s:
        s.execute(update(Candidate).where(Candidate.id == again).values(status=Status.POSTED, remote_id="unsigned"))
    [result] = posting.reconcile(store, settings, bots, bot_name="beta")
    assert (result.found, result.missing) == ([], [beta])
    assert statuses(store, [alpha, beta]) == ["posted", "unknown"]
    with store.session() as s:  # once nobody holds it, the unsigned line may be beta's
        s.execute(update(Candidate).where(Candidate.id == again).values(remote_id=None))
    [result] = posting.reconcile(store, settings, bots, bot_name="beta")
    assert result.found == [(beta, f"{path.as_uri()}#unsigned")]
