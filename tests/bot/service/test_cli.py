"""`bot post`, `bot status` and `bot queue reconcile` as a person types them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy import update

from bot.cli import context
from bot.service import lease
from bot.store.schema import Candidate, Status, utcnow
from tests.bot.service.helpers import add_candidates, file_bot, write_bots


@pytest.fixture
def config(tmp_path: Path) -> Path:
    return write_bots(tmp_path / "bots.toml", file_bot("fb", daily_cap=2, schedule='post = "4h"'))


@pytest.fixture
def store():  # type: ignore[no-untyped-def]
    return context.store()  # the CLI's own store, in the test's BOT_HOME


def test_post_needs_a_candidate_or_a_bot(bot, config) -> None:
    run = bot("--config", str(config), "post")
    assert (run.code, run.err) == (1, ("Error: Name a candidate id or --bot NAME (one of them), like `bot post 12` "
                                       "or `bot post --bot hn`.\n"))
    run = bot("--config", str(config), "post", "--bot", "ghost")
    assert run.err == "Error: No bot named 'ghost' is in bots.toml; check the name, or pass the file with --config.\n"


def test_a_dry_run_says_what_and_where_and_changes_nothing(bot, config, store, bot_home) -> None:
    [cid] = add_candidates(store, "fb", ["The title it would post"])
    run = bot("--config", str(config), "post", "--bot", "fb", "--dry-run")
    assert run.code == 0
    assert run.out == f"Would post candidate {cid} to the file {bot_home / 'posts.jsonl'}:\n  The title it would post\n"
    with store.session() as s:
        assert s.get(Candidate, cid).status == "approved"
    assert not (bot_home / "posts.jsonl").exists()


def test_posting_by_hand_then_the_cap(bot, config, store, bot_home) -> None:
    ids = add_candidates(store, "fb", ["One by hand", "Two by hand", "Three by hand"])
    assert bot("--config", str(config), "post", str(ids[1])).out.startswith(f"Posted candidate {ids[1]}: file://")
    done = bot("--config", str(config), "post", "--bot", "fb", "--json")
    assert done.code == 0 and done.json["status"] == "posted" and done.json["candidate"] == ids[0]
    capped = bot("--config", str(config), "post", "--bot", "fb")
    assert capped.code == 1
    assert capped.err == ("Error: Bot 'fb' has made its 2 posts of the day (daily_cap); the next can go out after "
                          "midnight UTC.\n")
    dry = bot("--config", str(config), "post", "--bot", "fb", "--dry-run")
    assert dry.out.endswith("But not now: bot 'fb' has made its 2 posts of the day (daily_cap); the next can go out "
                            "after midnight UTC.\n")
    assert [json.loads(line)["text"] for line in (bot_home / "posts.jsonl").read_text().splitlines()] == [
        "Two by hand", "One by hand"]


def test_status_shows_each_bot_and_who_runs_the_scheduler(bot, config, store) -> None:
    ids = add_candidates(store, "fb", ["Will be posted now", "Stays approved"])
    add_candidates(store, "fb", ["Waits for a person"], approve=False)
    bot("--config", str(config), "post", str(ids[0]))
    empty = bot("--config", str(config), "status", "--json").json
    assert empty["scheduler"] == {"running": False}
    [fb] = empty["bots"]
    assert {k: fb[k] for k in ("name", "mode", "platform", "destination", "posts_today", "daily_cap", "last_error",
                               "waiting_until")} == {
        "name": "fb", "mode": "review", "platform": "file", "destination": "posts.jsonl", "posts_today": 1,
        "daily_cap": 2, "last_error": None, "waiting_until": None}
    assert {s: n for s, n in fb["queue"].items() if n} == {"pending": 1, "approved": 1, "posted": 1}
    assert fb["last_post"]["id"] == ids[0] and fb["last_post"]["url"].startswith("file://")
    assert fb["model"] == {"name": "fb", "problem": "not trained yet; the bot's first refill under `bot run` trains "
                                                    "it once corpus 'fb' holds texts (or now: `bot train fb --model "
                                                    "fb`)"}
    lease.acquire(store, "elsewhere:4242:abcd", seconds=60)
    text = bot("--config", str(config), "status").out.splitlines()
    assert text[0].startswith("Scheduler: running (pid 4242 on elsewhere, since ")
    assert text[2] == ("fb  review  file posts.jsonl  model fb: not trained yet; the bot's first refill under `bot "
                       "run` trains it once corpus 'fb' holds texts (or now: `bot train fb --model fb`)")
    assert text[3:5] == ["  queue:      1 pending, 1 approved, 1 posted", "  today:      1 of 2 posts (UTC)"]
    assert text[6] == "  next runs:  not scheduled yet"
    lease.release(store, "elsewhere:4242:abcd")
    stopped = bot("--config", str(config), "status").out.splitlines()
    assert stopped[6] == "  next runs:  none while the scheduler is not running (start `bot run`)"


def test_status_never_shows_a_past_next_run_as_upcoming() -> None:
    from datetime import UTC, datetime, timedelta

    from bot.cli.service import _next_runs

    past, future = datetime.now(UTC) - timedelta(minutes=3), datetime.now(UTC) + timedelta(hours=2)
    runs = {"refill": past.isoformat(timespec="seconds"), "post": future.isoformat(timespec="seconds")}
    assert _next_runs(runs, running=True) == (
        f"refill due now, post {future.isoformat(timespec='seconds').replace('T', ' ').replace('+00:00', ' UTC')}")
    assert _next_runs(runs, running=False) == (  # as `bot run --once` from cron keeps them
        f"refill due now, post {future.isoformat(timespec='seconds').replace('T', ' ').replace('+00:00', ' UTC')}, "
        "once `bot run` runs (or `bot run --once`; none is running now)")
    assert _next_runs({"refill": None}, running=False) == "none while the scheduler is not running (start `bot run`)"


def test_reconcile_reports_what_it_found_and_what_stays_for_a_person(bot, config, store, bot_home) -> None:
    ids = add_candidates(store, "fb", ["This one went out", "This one did not"])
    bot("--config", str(config), "post", str(ids[0]))
    with store.session() as s:
        s.execute(update(Candidate).where(Candidate.id.in_(ids)).values(
            status=Status.UNKNOWN, remote_id=None, remote_url=None, claimed_at=utcnow()))
    run = bot("--config", str(config), "queue", "reconcile")
    line = json.loads((bot_home / "posts.jsonl").read_text())
    assert run.out == (f"Candidate {ids[0]} (fb) was posted: {(bot_home / 'posts.jsonl').as_uri()}#{line['id']}\n"
                       f"Still unknown for bot 'fb': {ids[1]} (not among the latest posts); approve each again to "
                       "post it, or reject it.\n")
    assert bot("--config", str(config), "queue", "reconcile", "--json").json == [
        {"bot": "fb", "found": [], "still_unknown": [ids[1]], "error": None}]
    assert bot("queue", "approve", str(ids[1])).out == f"Approved candidate {ids[1]}.\n"  # a person decides


def test_run_without_bots_says_how_to_describe_them(bot) -> None:
    run = bot("run", "--once")
    assert run.err == ("Error: No bots are configured; describe them in bots.toml (see the README) and pass it with "
                       "--config.\n")


def test_run_once_exits_non_zero_when_a_job_failed(bot, tmp_path) -> None:
    config = write_bots(tmp_path / "fresh.toml", file_bot("fresh", schedule='post = "1h"\nrefill = "1h"'))
    run = bot("--config", str(config), "run", "--once")
    assert run.code == 1
    assert run.out.startswith("fresh:refill: error: model 'fresh' does not exist and corpus 'fresh' holds no texts")
    assert run.err == ("Error: 1 job failed (fresh:refill); the lines above say why, and `bot status` shows each "
                       "bot's last error.\n")


@pytest.mark.parametrize("metrics, shown", [('{"valid_perplexity": "abc"}', "no perplexity"),
                                            ('{"valid_perplexity": null}', "no perplexity"),
                                            ("null", "no perplexity"),
                                            ('{"valid_perplexity": 41.3}', "perplexity 41.3")])
def test_status_shows_a_model_whose_metrics_file_was_damaged(bot, config, bot_home, tiny_model_dir, metrics,
                                                            shown) -> None:
    import shutil

    shutil.copytree(tiny_model_dir, bot_home / "models" / "fb")
    (bot_home / "models" / "fb" / "metrics.json").write_text(metrics)
    run = bot("--config", str(config), "status")
    assert run.code == 0, run.err
    assert "fb  review  file posts.jsonl  model fb (" + shown + ")\n" in run.out
