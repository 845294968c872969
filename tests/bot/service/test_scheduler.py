"""`bot run`: jobs from bots.toml in APScheduler's job store, `--once`, the long-running mode, restarts, the lease."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.config import load_bots_file, load_settings
from bot.corpus import add_documents
from bot.service import lease
from bot.config import cron_day_of_week
from bot.service.scheduler import build_scheduler, next_runs, run_service, sync_jobs, trigger_for
from bot.store import open_store
from bot.store.schema import Candidate, JobRun, Status, utcnow
from scrapers.documents import Document
from tests.bot.service.helpers import add_candidates, bot_config, file_bot, wait_for, write_bots

ROOT = Path(__file__).resolve().parents[3]


@pytest.mark.parametrize("cron, apscheduler", [("1-5", "mon-fri"), ("0,6", "sun,sat"), ("7", "sun"), ("*", "*"),
                                               ("*/2", "sun,tue,thu,sat"), ("mon-fri", "mon-fri"),
                                               ("0-6", "sun,mon-sat"), ("0-4", "sun,mon-thu"), ("1-7", "mon-sun"),
                                               ("0-0", "sun"), ("6-7", "sat-sun"), ("1-5/2", "mon,wed,fri")])
def test_cron_days_are_counted_from_sunday_as_cron_does(cron: str, apscheduler: str) -> None:
    assert cron_day_of_week(cron) == apscheduler


@pytest.mark.parametrize("days, fires", [("0-6", 7), ("0-4", 5), ("1-7", 7), ("7", 1), ("0,7", 1), ("*/2", 4)])
def test_every_cron_day_of_week_that_validates_fires_on_the_days_cron_would(tmp_path: Path, days: str,
                                                                           fires: int) -> None:
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", schedule=f'post = "0 9 * * {days}"'))
    bot = bot_config(config, "fb")
    trigger = trigger_for(bot.schedule.post, bot)
    start = datetime(2026, 12, 6, 0, 0, tzinfo=UTC)  # a Sunday
    fired, previous = [], None
    for _ in range(fires + 1):
        previous = trigger.get_next_fire_time(previous, previous or start)
        fired.append(previous.strftime("%a"))
    week = fired[:fires]
    assert len(set(week)) == fires and fired[fires] == week[0]  # each day once a week, then the same again
    if days in ("7", "0,7"):
        assert week == ["Sun"]
    if days == "*/2":
        assert week == ["Sun", "Tue", "Thu", "Sat"]
    if days == "0-4":
        assert week == ["Sun", "Mon", "Tue", "Wed", "Thu"]


@pytest.mark.parametrize("days", ["8", "3-1", "0-9", "*/0"])
def test_a_day_of_week_cron_never_reads_is_refused_before_anything_runs(tmp_path: Path, days: str) -> None:
    from bot.errors import ConfigError

    config = write_bots(tmp_path / "bots.toml", file_bot("fb", schedule=f'post = "0 9 * * {days}"'))
    with pytest.raises(ConfigError, match="is not a valid cron expression"):
        load_bots_file(config)


@pytest.mark.parametrize("entry", ['post = "99999999999d"', 'post = "1h"\njitter = "99999999999d"'])
def test_an_interval_past_a_year_is_refused_with_one_sentence(tmp_path: Path, entry: str) -> None:
    from bot.errors import ConfigError

    config = write_bots(tmp_path / "bots.toml", file_bot("fb", schedule=entry))
    with pytest.raises(ConfigError, match="is longer than 366 days; give a shorter duration"):
        load_bots_file(config)


def test_a_cron_entry_fires_at_its_hours_in_the_bots_time_zone(tmp_path: Path) -> None:
    config = write_bots(tmp_path / "b.toml", file_bot(schedule='post = "0 9,13,18 * * 1-5"\n'
                                                               'timezone = "Europe/Berlin"'))
    trigger = trigger_for("0 9,13,18 * * 1-5", bot_config(config, "fb"))
    friday_evening = datetime(2026, 11, 27, 18, 30, tzinfo=UTC)  # 19:30 in Berlin
    assert trigger.get_next_fire_time(None, friday_evening) == datetime(2026, 11, 30, 8, 0, tzinfo=UTC)  # Mon 9:00


def _sync(store, config: Path) -> tuple[dict[str, str], dict[str, datetime | None]]:  # type: ignore[no-untyped-def]
    scheduler = build_scheduler(store)
    scheduler.start(paused=True)
    try:
        changes = sync_jobs(scheduler, load_bots_file(config), now=utcnow())
    finally:
        scheduler.shutdown(wait=False)
    return changes, next_runs(store)


def test_a_restart_keeps_the_schedule_and_a_changed_file_changes_the_jobs(store, tmp_path: Path) -> None:
    config = write_bots(tmp_path / "b.toml", file_bot("a", schedule='post = "4h"\nscrape = "1d"')
                        + file_bot("b", destination="b.jsonl"))
    changes, first = _sync(store, config)
    assert changes == {"a:refill": "added", "a:post": "added", "a:scrape": "added", "b:refill": "added",
                       "b:post": "added"}
    assert first["a:refill"] <= utcnow()  # a new bot fills its queue at once; the rest wait for their time
    assert first["a:post"] > utcnow()
    changes, again = _sync(store, config)  # a restart
    assert set(changes.values()) == {"kept"} and again == first
    write_bots(config, file_bot("a", schedule='post = "2h"'))  # a's post changes, its scrape and bot b go
    changes, third = _sync(store, config)
    assert changes == {"a:refill": "kept", "a:post": "changed", "a:scrape": "removed", "b:refill": "removed",
                       "b:post": "removed"}
    assert set(third) == {"a:refill", "a:post"} and third["a:refill"] == first["a:refill"]


@pytest.fixture
def served(store, tmp_path: Path, tiny_model_dir: Path, titles: list[str]):  # type: ignore[no-untyped-def]
    """A file bot `fb` with a trained model and its corpus, posting every second."""
    settings = load_settings()
    shutil.copytree(tiny_model_dir, settings.model_dir("fb"))
    with store.session() as s:  # the tiny model was trained on corpus "titles"; the bot's corpus is the same text
        for corpus in ("titles", "fb"):
            add_documents(s, corpus, [Document(source="file", external_id=str(i), text=t)
                                      for i, t in enumerate(titles)])
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", extra="queue_size = 4",
                                                         schedule='post = "1s"\nrefill = "1h"'))
    return settings, config


def test_once_runs_what_is_due_and_keeps_running_on_a_schedule_of_seconds(store, served, bot_home) -> None:
    settings, config = served
    bots = load_bots_file(config)
    first = run_service(store, settings, bots, once=True)
    assert [(job, outcome) for job, outcome, _ in first.ran] == [("fb:refill", "ok")]
    assert first.ran[0][2].startswith("queued 4 of 4 wanted from 100 samples")
    with store.session() as s:
        ids = list(s.scalars(select(Candidate.id).where(Candidate.status == Status.PENDING).order_by(Candidate.id)))
    assert len(ids) == 4
    from bot import queue

    with store.session() as s:
        queue.approve(s, ids[:2])

    def posted() -> int:
        run_service(store, settings, bots, once=True)
        with store.session() as s:
            return s.scalar(select(func.count()).where(Candidate.status == Status.POSTED))

    wait_for(lambda: posted() == 2, what="two posts from `bot run --once` runs, a second apart")
    assert [json.loads(line)["text"] for line in (bot_home / "posts.jsonl").read_text().splitlines()] == [
        c for c in _texts(store, ids[:2])]
    assert lease.holder(store) is None  # given back each time
    with store.session() as s:
        outcomes = set(s.execute(select(JobRun.job, JobRun.outcome)).all())
    assert {("refill", "ok"), ("post", "ok")} <= outcomes


def _texts(store, ids):  # type: ignore[no-untyped-def]
    with store.session() as s:
        return [s.get(Candidate, i).text for i in ids]


def _bot_run(config: Path, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config), "run", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_bot_run_posts_on_schedule_refuses_a_second_run_and_stops_cleanly_on_sigterm(database_url, served,
                                                                                     monkeypatch, bot, bot_home):
    _, config = served
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    store = open_store(database_url)
    ids = add_candidates(store, "fb", ["First of the scheduled", "Second of the scheduled", "Third of them"])
    process = _bot_run(config)
    try:
        wait_for(lambda: lease.holder(store), what="`bot run` to take the lease")
        second = bot("--config", str(config), "run", "--once")
        assert second.code == 1
        assert second.err.startswith("Error: Another `bot run` (pid ")
        assert "stop it first, or wait for its lease to expire." in second.err

        def all_posted() -> bool:
            with store.session() as s:
                return s.scalar(select(func.count()).where(Candidate.id.in_(ids),
                                                           Candidate.status == Status.POSTED)) == 3

        wait_for(all_posted, what="the three approved candidates to be posted, one a second")
    finally:
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    assert "Running 1 bot (2 jobs); Ctrl-C stops." in err and "Stopping: the jobs in flight finish first." in err
    assert lease.holder(store) is None
    texts = [json.loads(line)["text"] for line in (bot_home / "posts.jsonl").read_text().splitlines()]
    assert texts == ["First of the scheduled", "Second of the scheduled", "Third of them"]
    store.close()
