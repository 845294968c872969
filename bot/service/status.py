"""What `bot status` reports: the scheduler's holder, per bot its target, model, queue, posts and jobs, and the
workers (`bot worker`) with the tasks waiting and running on each queue."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select

from bot import registry
from bot.config import BotConfig, BotsFile, Settings, mask_password
from bot.errors import NotFoundError
from bot.posting import posts_today
from bot.service import lease
from bot.service.scheduler import next_runs
from bot.store import Store
from bot.store.schema import BotState, Candidate, JobRun, Status, Worker, utcnow
from models.errors import ModelError


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def service_status(store: Store, settings: Settings, bots: BotsFile) -> dict[str, Any]:
    """One JSON-ready document: {"scheduler": …, "bots": [...]}."""
    now = utcnow()
    holder = lease.holder(store, now=now)
    runs = next_runs(store)
    return {
        "scheduler": {"running": holder is not None, **(holder.to_json() if holder else {})},
        "bots": [_bot_status(store, settings, bot, runs, now) for bot in bots.bot],
        "workers": workers_status(store, settings, now),
    }


WORKERS_SEEN_SECONDS = 300  # workers whose heartbeat is this recent are listed


def workers_status(store: Store, settings: Settings, now: datetime) -> dict[str, Any]:
    """The broker (asked with a short timeout), the workers seen recently, tasks waiting and running per queue, the
    tasks running, and the last task that failed; all but the broker's own count from the database."""
    from bot.service.broker import QUEUES
    from bot.service.dispatch import task_gone, worker_alive

    with store.session() as session:
        workers = session.scalars(select(Worker).where(Worker.heartbeat_at >= now - timedelta(
            seconds=WORKERS_SEEN_SECONDS)).order_by(Worker.started_at)).all()
        open_tasks = session.scalars(select(JobRun).where(JobRun.queue.is_not(None), JobRun.outcome.is_(None))
                                     .order_by(JobRun.id)).all()
        failed = session.scalars(select(JobRun).where(JobRun.queue.is_not(None), JobRun.outcome == "error")
                                 .order_by(JobRun.id.desc()).limit(1)).first()
    # a task whose worker died (killed, its host gone) is not running, though its row says nobody has ended it yet:
    # the scheduler closes it and sends it again at the job's next run (bot.service.dispatch)
    gone = {t.id for t in open_tasks if task_gone(t, now)}
    queues = {queue: {"waiting": sum(1 for t in open_tasks if t.queue == queue and t.owner is None),
                      "running": sum(1 for t in open_tasks if t.queue == queue and t.owner is not None
                                     and t.id not in gone)}
              for queue in sorted(set(QUEUES.values()))}
    broker = None
    if settings.bot_broker_url:
        from bot.service.broker import queue_lengths

        broker = {"url": mask_password(settings.bot_broker_url), **queue_lengths(settings)}
    return {
        "broker": broker,
        "seen": [{"name": w.name, "queues": w.queues.split(","), "concurrency": w.concurrency,
                  "protocol": w.protocol, "started": _iso(w.started_at), "heartbeat": _iso(w.heartbeat_at),
                  "stopped": _iso(w.stopped_at),
                  "alive": worker_alive(w, now)}
                 for w in workers],
        "queues": queues,
        "running": [{"run": t.id, "bot": t.bot, "job": t.job, "owner": t.owner, "since": _iso(t.started_at),
                     "heartbeat": _iso(t.heartbeat_at), "gone": t.id in gone,
                     "progress": f"its worker stopped (last: {t.message}); the job sends it again at its next run"
                     if t.id in gone else t.message} for t in open_tasks if t.owner],
        "last_failure": {"run": failed.id, "bot": failed.bot, "job": failed.job,
                         "at": _iso(failed.finished_at or failed.started_at), "message": failed.message}
        if failed else None,
    }


def _bot_status(store: Store, settings: Settings, bot: BotConfig, runs: dict[str, datetime | None],
                now: datetime) -> dict[str, Any]:
    with store.session() as session:
        counts = dict(session.execute(select(Candidate.status, func.count()).where(Candidate.bot == bot.name)
                                      .group_by(Candidate.status)).all())
        today = posts_today(session, bot, now)
        last = session.scalars(select(Candidate).where(Candidate.bot == bot.name, Candidate.status == Status.POSTED)
                               .order_by(Candidate.posted_at.desc()).limit(1)).first()
        error = session.scalars(select(JobRun).where(JobRun.bot == bot.name, JobRun.outcome == "error")
                                .order_by(JobRun.id.desc()).limit(1)).first()
        state = session.get(BotState, bot.name)
    waiting = state.post_not_before if state and state.post_not_before and state.post_not_before > now else None
    return {
        "name": bot.name, "mode": bot.mode, "platform": bot.platform, "destination": bot.destination,
        "corpus": bot.corpus, "model": _model(store, settings, bot, now),
        "queue": {status.value: counts.get(status.value, 0) for status in Status},
        "posts_today": today, "daily_cap": bot.daily_cap, "timezone": bot.schedule.timezone,
        "last_post": {"id": last.id, "at": _iso(last.posted_at), "url": last.remote_url, "text": last.text}
        if last else None,
        "next_runs": {job: _iso(runs.get(f"{bot.name}:{job}")) for job in bot.schedule.entries()},
        "waiting_until": _iso(waiting), "waiting_reason": state.wait_reason if waiting and state else None,
        "last_error": {"job": error.job, "at": _iso(error.finished_at or error.started_at), "message": error.message}
        if error else None,
    }


def _model(store: Store, settings: Settings, bot: BotConfig, now: datetime) -> dict[str, Any]:
    """The model that serves: this host's folder where it holds the version published in the database (or none was
    published), else the published version's summary, which this host fetches on its first use."""
    from bot.model_store import HASH_PREFIX, local_hash, serving_version

    name = bot.model_name
    published = serving_version(store, name)
    folder = settings.model_dir(name)
    version = {"version": published[0][:HASH_PREFIX]} if published else {}
    if published is None and not folder.exists():
        return {"name": name, "problem": f"not trained yet; the bot's first refill under `bot run` trains it once "
                                         f"corpus {bot.corpus!r} holds texts (or now: `bot train {bot.corpus} "
                                         f"--model {name}`)"}
    if published is None or (folder.exists() and local_hash(folder) == published[0]):
        try:
            model = registry.load(settings, name)
        except (NotFoundError, ModelError) as error:
            return {"name": name, "problem": str(error)}
        about = {"valid_perplexity": model.metrics.get("valid_perplexity"), "created_at": model.info.get("created_at")}
        here = True
    else:
        about, here = published[1], False
    created = about.get("created_at")
    age = None
    try:
        age = round((now - datetime.fromisoformat(created)).total_seconds() / 3600, 1)
    except (TypeError, ValueError):  # missing or damaged: no age rather than no status
        created = None
    return {"name": name, "valid_perplexity": _finite(about.get("valid_perplexity")), "trained_at": created,
            "age_hours": age, **version, "here": here}


def _finite(value: Any) -> float | None:
    """A number from a file people can edit, or None where it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
