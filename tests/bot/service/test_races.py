"""Races between real processes, on SQLite and PostgreSQL: two reviewers on one candidate, and the scheduler posting
while a person rejects. Every change of a candidate is a compare-and-set on its version, so the loser is told."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import select

from bot.store.schema import Candidate
from tests.bot.service.helpers import add_candidates, file_bot, python, write_bots

PAIRS = 20  # candidates two reviewers act on at once

# A reviewer: waits for the go file, then acts on each candidate with the version the page showed, and prints
# "id ok" or "id lost" for each.
REVIEWER = """
import os, sys, time
from bot.store import open_store
from bot.web import review
store, action, go, text = open_store(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
pairs = [p.split(":") for p in sys.argv[5:]]
while not os.path.exists(go):
    time.sleep(0.001)
for candidate_id, version in pairs:
    seen = {int(candidate_id): version}
    try:
        if action == "approve":
            review.approve(store, seen)
        elif action == "reject":
            review.reject(store, seen, reason="rejected by B")
        else:
            from bot.config import BotsFile, load_settings
            review.edit_and_approve(store, load_settings(), BotsFile(bot=[]), int(candidate_id), version,
                                    text + " " + candidate_id)
        print(candidate_id, "ok", flush=True)
    except review.StaleCandidate:
        print(candidate_id, "lost", flush=True)
"""


def _reviewers(database_url: str, tmp_path: Path, first: str, second: str, ids: list[int], versions: dict[int, int]):
    go = tmp_path / "go"
    pairs = [f"{i}:{versions[i]}" for i in ids]
    procs = [python("-c", REVIEWER, database_url, action, str(go), "Edited title", *pairs)
             for action in (first, second)]
    go.touch()
    outputs = [p.communicate(timeout=180) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    return [dict(line.split() for line in out.splitlines()) for out, _ in outputs]


def _rows(store, ids):  # type: ignore[no-untyped-def]
    with store.session() as s:
        return {c.id: c for c in s.scalars(select(Candidate).where(Candidate.id.in_(ids)))}


def test_two_reviewers_on_one_candidate_one_wins_and_the_other_is_told(database_url, tmp_path) -> None:
    from bot.store import open_store

    store = open_store(database_url)
    for first, second in (("approve", "reject"), ("edit", "reject"), ("edit", "approve")):
        ids = add_candidates(store, "fb", [f"{first} against {second} number {n}" for n in range(PAIRS)],
                             approve=False)
        versions = {i: c.version for i, c in _rows(store, ids).items()}
        said = _reviewers(database_url, tmp_path, first, second, ids, versions)
        rows = _rows(store, ids)
        for i in ids:
            verdicts = (said[0][str(i)], said[1][str(i)])
            assert sorted(verdicts) == ["lost", "ok"], (first, second, i, verdicts)
            winner = first if verdicts[0] == "ok" else second
            row = rows[i]
            assert row.version == versions[i] + (2 if winner == "edit" else 1)  # edit, then approve
            if winner == "reject":
                assert (row.status, row.reason, row.text) == ("rejected", "rejected by B", row.sampled_text)
            elif winner == "approve":
                assert (row.status, row.reason, row.text) == ("approved", None, row.sampled_text)
            else:
                assert (row.status, row.reason, row.text) == ("approved", None, f"Edited title {i}")
        (tmp_path / "go").unlink()
    store.close()


POSTER = """
import sys
from bot.config import load_bots_file, load_settings
from bot.posting import post_next
from bot.store import open_store
store, bot = open_store(sys.argv[1]), load_bots_file(__import__("pathlib").Path(sys.argv[2])).get("fb")
while post_next(store, load_settings(), bot).status != "empty":
    pass
"""

# A person rejecting the head of the approved queue, again and again, until nothing approved is left.
REJECTER = """
import sys
from sqlalchemy import select
from bot import queue
from bot.store import open_store
from bot.store.schema import Candidate
store, rejected, lost = open_store(sys.argv[1]), 0, 0
while True:
    with store.session() as s:
        head = s.scalars(select(Candidate.id).where(Candidate.status == "approved")
                         .order_by(Candidate.approved_at, Candidate.id).limit(1)).first()
    if head is None:
        break
    try:
        with store.session() as s:
            queue.reject(s, [head], reason="rejected while the scheduler posts")
        rejected += 1
    except queue.QueueError:
        lost += 1
print(rejected, lost)
"""


def test_the_scheduler_never_posts_what_a_person_rejected_meanwhile(database_url, tmp_path, bot_home) -> None:
    from bot.store import open_store

    config = write_bots(tmp_path / "bots.toml", file_bot("fb", daily_cap=1000))
    store = open_store(database_url)
    ids = add_candidates(store, "fb", [f"Posted or rejected, number {n}" for n in range(100)])
    procs = [python("-c", code, database_url, str(config)) for code in (POSTER, REJECTER)]
    outputs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in outputs]
    assert "changed meanwhile" not in outputs[0][1]
    path = bot_home / "posts.jsonl"
    posted_lines = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    rows = _rows(store, ids)
    by_remote = {c.remote_id: c for c in rows.values() if c.remote_id}
    assert sorted(by_remote) == sorted(line["id"] for line in posted_lines)  # every line is one posted row
    for line in posted_lines:
        assert (by_remote[line["id"]].status, by_remote[line["id"]].text) == ("posted", line["text"])
    statuses = sorted({c.status for c in rows.values()})
    assert set(statuses) <= {"posted", "rejected"}, statuses
    rejected = int(outputs[1][0].split()[0])
    assert rejected == sum(c.status == "rejected" for c in rows.values())
    assert len(posted_lines) + rejected == len(ids)
    store.close()
