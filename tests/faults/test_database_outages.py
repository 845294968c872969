"""Faults under a running `bot run`: the SQLite file locked by another process, the PostgreSQL database cut off.

After each: no candidate posted twice, every posted row matches one line of the destination, and the scheduler is
either running jobs again or has exited non-zero with one sentence.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text

from bot.service import lease
from bot.store import open_store
from bot.store.schema import Candidate, Status
from tests.bot.service.helpers import add_candidates, file_bot, python, wait_for, write_bots

LOCK_SECONDS = 60  # the fault: another process holds the SQLite write lock this long
CUT_SECONDS = 20  # PostgreSQL refuses this database's connections this long
LEASE_SECONDS = 4  # the scheduler's lease in these tests: `bot status` notices a stopped heartbeat quickly

LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
db.execute("ROLLBACK")
"""


def _bot_run(config: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    return python("-m", "bot.cli", "--config", str(config), "run", env=env)


def _posted(store) -> int:  # type: ignore[no-untyped-def]
    with store.session() as s:
        return s.scalar(select(func.count()).where(Candidate.status == Status.POSTED)) or 0


def check_posts(store, path: Path) -> int:  # type: ignore[no-untyped-def]
    """No candidate posted twice, and every posted row is one line of the file: returns the posts."""
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
    with store.session() as s:
        rows = {c.remote_id: c for c in s.scalars(select(Candidate).where(Candidate.status == Status.POSTED))}
    assert len({line["text"] for line in lines}) == len(lines), "a text was posted twice"
    assert sorted(rows) == sorted(line["id"] for line in lines)
    assert all(rows[line["id"]].text == line["text"] for line in lines)
    return len(lines)


@pytest.fixture
def setup(tmp_path: Path):  # type: ignore[no-untyped-def]
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", schedule='post = "1s"\nrefill = "100d"'))
    return config


def test_a_locked_sqlite_file_pauses_the_scheduler_which_then_goes_on(tmp_path, setup, bot_home) -> None:
    url = f"sqlite:///{bot_home / 'bot.db'}"
    bot_home.mkdir(parents=True, exist_ok=True)
    store = open_store(url)
    add_candidates(store, "fb", [f"Posted around a lock, number {n}" for n in range(200)])
    process = _bot_run(setup, {"BOT_DATABASE_URL": url, "BOT_LEASE_SECONDS": str(LEASE_SECONDS)})
    try:
        wait_for(lambda: _posted(store) >= 2, what="the first posts")
        locker = python("-c", LOCKER, str(bot_home / "bot.db"), str(LOCK_SECONDS))
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        before = _posted(store)  # readers go on in WAL mode; the writer waits
        # While no job can run, no heartbeat: `bot status` stops saying "running" when the lease runs out.
        wait_for(lambda: lease.holder(store) is None, what="the lease to lapse while the database is locked",
                 deadline=LOCK_SECONDS)
        assert locker.poll() is None, "the lock ended before the lease lapsed"
        assert _posted(store) <= before + 1  # a post that had its claim in before the lock
        assert locker.wait(timeout=LOCK_SECONDS + 30) == 0
        after = _posted(store)
        wait_for(lambda: _posted(store) >= after + 3, what="posts to go on after the lock", deadline=120)
        wait_for(lambda: lease.holder(store), what="the heartbeat to come back")
        assert process.poll() is None, process.communicate()[1]
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    assert "the scheduler cannot use the database (database is locked)" in err
    assert "the database answers again after" in err
    assert "Traceback" not in err
    assert check_posts(store, bot_home / "posts.jsonl") >= 5
    store.close()


def _cut(admin_url: str, database: str, allow: bool) -> None:
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS {"true" if allow else "false"}'))
        if not allow:
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                         {"d": database})
    admin.dispose()


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)  # emptied again after each test
@pytest.mark.parametrize("outage, exits", [(CUT_SECONDS, False), (None, True)])
def test_a_postgresql_database_cut_off_pauses_the_scheduler_or_stops_it_with_one_sentence(
        tmp_path, setup, bot_home, database_url, outage, exits) -> None:
    from tests.conftest import POSTGRES_ADMIN_URL

    store = open_store(database_url)
    database = store.engine.url.database
    add_candidates(store, "fb", [f"Posted around a cut, number {n}" for n in range(200)])
    env = {"BOT_DATABASE_URL": database_url, "BOT_LEASE_SECONDS": str(LEASE_SECONDS)}
    if exits:
        env["BOT_OUTAGE_SECONDS"] = "5"
    process = _bot_run(setup, env)
    try:
        wait_for(lambda: _posted(store) >= 2, what="the first posts")
        store.engine.dispose()
        _cut(POSTGRES_ADMIN_URL, database, allow=False)
        try:
            if exits:
                process.wait(timeout=120)
            else:  # the outage itself is the fault: it lasts this long, and `bot run` outlives it
                with pytest.raises(subprocess.TimeoutExpired):
                    process.wait(timeout=outage)
        finally:
            _cut(POSTGRES_ADMIN_URL, database, allow=True)
        if not exits:
            after = _posted(store)
            wait_for(lambda: _posted(store) >= after + 3, what="posts to go on after the cut", deadline=120)
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)
    assert "Traceback" not in err, err[-3000:]
    if exits:
        assert process.returncode == 1
        last = err.strip().splitlines()[-1]
        assert last.startswith("Error: The database could not be used for "), err[-2000:]
        assert last.endswith("`bot run` stopped: restart it once the database is back (systemd and compose do), "
                             "or raise BOT_OUTAGE_SECONDS.")
    else:
        assert process.returncode == 0, err[-2000:]
        assert "the database answers again after" in err
    assert check_posts(store, bot_home / "posts.jsonl") >= 2
    store.close()
