"""`bot post`, `bot run` and `bot status`: posting by hand, the scheduler, and what every bot is doing."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from bot.cli import app, state
from bot.cli.options import JSON, MAX_ID

if TYPE_CHECKING:
    from bot.config import BotConfig

CONFIG = Annotated[Path | None, typer.Option("--config", help="bots.toml (as `bot --config`).")]
NO_BOTS = "No bots are configured; describe them in bots.toml (see the README) and pass it with --config."


def _use_config(config: Path | None) -> None:
    """`bot run --config X` means the same as `bot --config X run`."""
    if config is not None:
        from bot.cli import context

        state.config = config
        for cached in (context.settings, context.bots, context.store):
            cached.cache_clear()


def _bot(name: str) -> BotConfig:
    from bot.cli import context
    from bot.errors import NotFoundError

    bot = context.bot_config(name)
    if bot is None:
        raise NotFoundError(f"No bot named {name!r} is in bots.toml; check the name, or pass the file with --config.")
    return bot


@app.command(short_help="Post one candidate now: by id, or a bot's next one.")
def post(
    candidate_id: Annotated[int | None, typer.Argument(help="The candidate to post (default: with --bot, the "
                                                              "bot's next one).", min=1, max=MAX_ID)] = None,
    bot: Annotated[str | None, typer.Option("--bot", help="Post this bot's next candidate.")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Say what would be sent and where; change nothing.")] = False,
    config: CONFIG = None,
    json_: JSON = False,
) -> None:
    """Post one candidate now: by id, or a bot's next approved one; within the bot's daily cap."""
    from bot import posting
    from bot.cli import context, output
    from bot.errors import QueueError
    from bot.queue import get_candidate

    _use_config(config)
    if (candidate_id is None) == (bot is None):
        raise QueueError("Name a candidate id or --bot NAME (one of them), like `bot post 12` or `bot post --bot hn`.")
    store, settings = context.store(), context.settings()
    if candidate_id is not None:
        with store.session() as session:
            bot = get_candidate(session, candidate_id).bot
    assert bot is not None
    config_ = _bot(bot)
    if dry_run:
        preview = posting.preview(store, settings, config_, candidate_id=candidate_id)
        _print_preview(preview, config_, json_)
        return
    outcome = posting.post_next(store, settings, config_, candidate_id=candidate_id)
    if json_:
        output.print_json({"bot": outcome.bot, "status": outcome.status, "candidate": outcome.candidate_id,
                           "url": outcome.url, "message": outcome.message,
                           "retry_at": outcome.retry_at.isoformat() if outcome.retry_at else None})
    if not outcome.posted:
        if not json_:
            output.fail(_sentence(outcome.message))
        raise SystemExit(1)
    if not json_:
        output.console.print(f"Posted candidate {outcome.candidate_id}: {outcome.url}", markup=False)


def _sentence(message: str) -> str:
    text = message[0].upper() + message[1:]
    return text if text.endswith((".", "?", "!")) else text + "."


def _print_preview(preview: Any, bot: BotConfig, json_: bool) -> None:
    from bot.cli import output

    c = preview.candidate
    if json_:
        output.print_json({"bot": bot.name, "where": preview.where, "candidate": c.id if c else None,
                           "text": c.text if c else None, "blocked": preview.blocked.message if preview.blocked else None})
        return
    if c is None:
        output.console.print(f"Nothing to post: {preview.nothing}.", markup=False)
    else:
        output.console.print(f"Would post candidate {c.id} to {preview.where}:\n  {c.text}", markup=False)
    if preview.blocked:
        output.console.print(f"But not now: {preview.blocked.message}.", markup=False)


@app.command(short_help="Run every bot's jobs on their schedules.")
def run(
    once: Annotated[bool, typer.Option("--once", help="Run each job that is due, once, and exit (for cron).")] = False,
    config: CONFIG = None,
    json_: JSON = False,
) -> None:
    """Run every bot's jobs on their schedules until stopped (Ctrl-C or SIGTERM finish the job in flight)."""
    import logging
    import signal
    import threading

    from bot.cli import context, output
    from bot.errors import ConfigError
    from bot.service.scheduler import run_service

    _use_config(config)
    bots = context.bots()
    if not bots.bot:
        raise ConfigError(NO_BOTS)
    if not once and logging.getLogger().level > logging.INFO:  # a service says what it does as it goes;
        logging.getLogger("bot").setLevel(logging.INFO)  # `--once` prints a line per job at the end instead
    stop = threading.Event()

    def stop_on_signal(signum: int, _frame: object) -> None:
        if not stop.is_set():
            output.errors.print("Stopping: the jobs in flight finish first.", markup=False)
        stop.set()

    if not once:
        signal.signal(signal.SIGINT, stop_on_signal)
        signal.signal(signal.SIGTERM, stop_on_signal)

    def started(changes: dict[str, str]) -> None:
        if not once and not json_:
            output.errors.print(f"Running {len(bots.bot)} bot{'s' if len(bots.bot) != 1 else ''} "
                                f"({len([c for c in changes.values() if c != 'removed'])} jobs); Ctrl-C stops.",
                                markup=False)

    summary = run_service(context.store(), context.settings(), bots, once=once, stop=stop, on_start=started)
    if json_:
        output.print_json({"ran": [{"job": j, "outcome": o, "message": m} for j, o, m in summary.ran],
                           "recovered": summary.recovered,
                           "reconciled": [{"candidate": i, "url": u} for i, u in summary.reconciled],
                           "lease_lost": summary.lease_lost})
    elif once:
        for job_id, outcome, message in summary.ran:
            output.console.print(f"{job_id}: {outcome}: {message}", markup=False)
        if not summary.ran:
            output.console.print("No job was due.", markup=False)
    failed = [job for job, outcome, _ in summary.ran if outcome == "error"]
    if failed:
        output.fail(f"{len(failed)} job{'s' if len(failed) != 1 else ''} failed ({', '.join(failed)}); the lines "
                    "above say why, and `bot status` shows each bot's last error.")
    if summary.lease_lost:
        output.fail("Another `bot run` took over this database while this one was not renewing its lease; "
                    "run only one `bot run` per database.")


@app.command(short_help="Each bot's queue, posts, next runs and last error.")
def status(config: CONFIG = None, json_: JSON = False) -> None:
    """Each bot's mode, target, model, queue, posts today, last post, next runs and last error; and the scheduler."""
    from bot.cli import context, output
    from bot.service.status import service_status

    _use_config(config)
    data = service_status(context.store(), context.settings(), context.bots())
    if json_:
        output.print_json(data)
        return
    output.console.print(_scheduler_line(data["scheduler"]), markup=False)
    if not data["bots"]:
        output.console.print(NO_BOTS, markup=False)
    for b in data["bots"]:
        output.console.print("\n".join(_bot_lines(b, running=data["scheduler"]["running"])), markup=False)
    workers = data["workers"]
    if workers["broker"] or workers["seen"] or workers["running"] or workers["last_failure"]:
        output.console.print("\n".join(_worker_lines(workers)), markup=False)


def _scheduler_line(s: dict[str, Any]) -> str:
    from bot.processes import describe_owner

    if not s["running"]:
        return "Scheduler: not running (start it with `bot run`)."
    return (f"Scheduler: running ({describe_owner(s['owner'])}, since {_short(s['since'])}, lease until "
            f"{_short(s['expires'])}).")


def _worker_lines(w: dict[str, Any]) -> list[str]:
    """The broker, the workers seen, tasks per queue, the tasks running and the last that failed."""
    from bot.processes import describe_owner
    from bot.service.status import WORKERS_SEEN_SECONDS

    broker = w["broker"]
    if broker is None:
        lines = ["", "Broker: none (BOT_BROKER_URL is not set): `bot run` does every job itself."]
    elif broker["reachable"]:
        held = ", ".join(f"{queue} {n}" for queue, n in broker["queued"].items())
        lines = ["", f"Broker: {broker['url']}: tasks it holds: {held}."]
    else:
        lines = ["", f"Broker: {broker['url']} {broker['problem']}; `bot run` goes on posting, and a task it cannot "
                     "send runs at its job's next time."]
    seen = w["seen"]
    lines.append(f"Workers: {len(seen)} seen in the last {WORKERS_SEEN_SECONDS // 60} minutes"
                 + (":" if seen else " (start one with `bot worker`)."))
    for worker in seen:
        state = (f"heartbeat {_short(worker['heartbeat'])}" if worker["alive"] else
                 f"stopped at {_short(worker['stopped'])}" if worker["stopped"] else
                 f"silent since {_short(worker['heartbeat'])}")
        lines.append(f"  {describe_owner(worker['name'])}: queues {', '.join(worker['queues'])}, "
                     f"{worker['concurrency']} at a time, task protocol {worker['protocol']}; {state}")
    lines.append("Tasks:      " + "; ".join(f"{queue} {n['waiting']} waiting, {n['running']} running"
                                           for queue, n in w["queues"].items()))
    for task in w["running"]:
        lines.append(f"  {task['bot']} {task['job']} (run {task['run']}) on {describe_owner(task['owner'])} since "
                     f"{_short(task['since'])}: {task['progress']}")
    failure = w["last_failure"]
    if failure:
        lines.append(f"Last failed task: {failure['bot']} {failure['job']} (run {failure['run']}) at "
                     f"{_short(failure['at'])}: {failure['message']}")
    return lines


def _short(iso: str | None) -> str:
    return iso.replace("T", " ").replace("+00:00", " UTC") if iso else "-"


def _next_runs(runs: dict[str, str | None], *, running: bool) -> str:
    """The stored next runs, while a scheduler runs them: one already past is due now, not upcoming."""
    from datetime import UTC, datetime

    if not any(runs.values()):
        return "not scheduled yet" if running else "none while the scheduler is not running (start `bot run`)"
    now = datetime.now(UTC)
    times = ", ".join(f"{job} " + ("due now" if at and datetime.fromisoformat(at) <= now else _short(at))
                      for job, at in runs.items() if at)
    # `bot run --once` from cron keeps these times too: a stopped scheduler's stored times are when they run next
    return times if running else f"{times}, once `bot run` runs (or `bot run --once`; none is running now)"


def _bot_lines(b: dict[str, Any], *, running: bool) -> list[str]:
    m = b["model"]
    if "problem" in m:
        model = f"model {m['name']}: {m['problem']}"
    else:
        ppl = f"perplexity {m['valid_perplexity']:.1f}" if m.get("valid_perplexity") else "no perplexity"
        age = f", trained {m['age_hours']:g} h ago" if m.get("age_hours") is not None else ""
        version = f", version {m['version']}" if m.get("version") else ""
        fetch = "" if m.get("here", True) else "; not on this host yet, fetched from the database on first use"
        model = f"model {m['name']} ({ppl}{age}{version}{fetch})"
    queue = ", ".join(f"{n} {s}" for s, n in b["queue"].items() if n) or "empty"
    target = f"{b['platform']} {b['destination']}" if b["destination"] else b["platform"]
    last = b["last_post"]
    lines = [
        "",
        f"{b['name']}  {b['mode']}  {target}  {model}",
        f"  queue:      {queue}",
        f"  today:      {b['posts_today']} of {b['daily_cap']} posts ({b['timezone']})",
        f"  last post:  {_short(last['at'])} {last['url'] or ''}" if last else "  last post:  none yet",
        "  next runs:  " + _next_runs(b["next_runs"], running=running),
    ]
    if b["waiting_until"]:
        lines.append(f"  waiting:    until {_short(b['waiting_until'])}: {b['waiting_reason']}")
    if b["last_error"]:
        e = b["last_error"]
        lines.append(f"  last error: {e['job']} at {_short(e['at'])}: {e['message']}")
    return lines
