"""`bot run` killed (SIGKILL) at random points, 20 times, while a person rejects candidates between runs; on SQLite
and PostgreSQL. After all of it: no text posted twice, nothing posted that a person rejected, and every posted row
is one line of the destination."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

from sqlalchemy import select

from bot import posting, queue
from bot.config import load_bots_file, load_settings
from bot.store import open_store
from bot.store.schema import Candidate, Status
from tests.bot.service.helpers import add_candidates, file_bot, python, write_bots

KILLS = 20
SEED = 29  # the kill points are random, and the same in every run of the suite
KILL_AFTER = (1.0, 4.0)  # seconds after `bot run` starts (start-up takes about one of them)


def test_bot_run_killed_at_random_points_never_posts_twice_or_what_was_rejected(database_url, tmp_path,
                                                                               bot_home) -> None:
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", schedule='post = "1s"\nrefill = "100d"'))
    store = open_store(database_url)
    ids = add_candidates(store, "fb", [f"Killed and restarted, post {n}" for n in range(80)])
    rng = random.Random(SEED)
    rejected: set[int] = set()
    for _ in range(KILLS):
        process = python("-m", "bot.cli", "--config", str(config), "run", env={"BOT_DATABASE_URL": database_url},
                         stdout=subprocess.DEVNULL)
        time.sleep(rng.uniform(*KILL_AFTER))  # the fault's timing, not a wait for a condition
        process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=60)
        assert process.returncode == -signal.SIGKILL, err
        with store.session() as s:  # a person rejects the next approved candidate while the bot is down
            head = s.scalars(select(Candidate.id).where(Candidate.status == Status.APPROVED)
                             .order_by(Candidate.approved_at, Candidate.id).limit(1)).first()
        if head is not None:
            with store.session() as s:
                queue.reject(s, [head], reason="rejected between kills")
            rejected.add(head)
    # what the next start-up does first: the interrupted posts become unknown, and those in the file are found
    posting.reconcile(store, load_settings(), load_bots_file(config))
    path = bot_home / "posts.jsonl"
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    with store.session() as s:
        rows = {c.id: c for c in s.scalars(select(Candidate).where(Candidate.id.in_(ids)))}
    posted = {c.remote_id: c for c in rows.values() if c.status == Status.POSTED}
    assert len(lines) >= KILLS // 2, "the kills left too little posting to test"
    assert len({line["text"] for line in lines}) == len(lines), "a text was posted twice"
    assert sorted(posted) == sorted(line["id"] for line in lines)  # every line is one posted row, and back
    assert all(posted[line["id"]].text == line["text"] for line in lines)
    assert not {rows[i].text for i in rejected} & {line["text"] for line in lines}, "a rejected candidate was posted"
    assert all(rows[i].status == Status.REJECTED for i in rejected)
    assert {c.status for c in rows.values()} <= {Status.POSTED, Status.APPROVED, Status.REJECTED, Status.UNKNOWN}
    counts = {status: sum(c.status == status for c in rows.values()) for status in Status}
    print(f"{KILLS} kills: {len(lines)} lines checked; {counts}")  # shown with -s, for the record
    store.close()
