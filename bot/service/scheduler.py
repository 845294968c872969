"""`bot run`: APScheduler 3 drives every bot's jobs from its SQLAlchemy job store on BOT_DATABASE_URL.

Per bot, jobs with explicit ids (`NAME:refill`, `NAME:post`, `NAME:scrape`, `NAME:train`) whose targets are the
module-level functions of `bot.service.jobs`, taking the bot's name. A job whose schedule did not change is left
as stored, so a restart continues the schedule; a changed one is replaced, and jobs of bots no longer in
bots.toml are removed. Only the holder of the lease (`bot.service.lease`) runs a scheduler on a database.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from bot.config import BotConfig, BotsFile, Settings, is_cron, parse_duration
from bot.processes import process_owner
from bot.service import jobs, lease
from bot.store import Store
from bot.store.schema import utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

logger = logging.getLogger(__name__)

WORKERS = 4  # jobs of different bots that run at once (a training job runs beside them, one at a time)
# Seconds a job may start late (after a restart, or while a worker was busy) and still run; None: however late.
# A post more than an hour late waits for its next slot rather than landing at an odd hour.
MISFIRE_GRACE: dict[str, int | None] = {"refill": None, "post": 3600, "scrape": None, "train": None}
DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")  # cron's 0-7; APScheduler 3 counts from Monday


@dataclass
class RunSummary:
    """What a `bot run` did: jobs run by outcome, candidates recovered and reconciled at start-up."""

    ran: list[tuple[str, str, str]] = field(default_factory=list)  # (job id, outcome, message)
    recovered: list[int] = field(default_factory=list)
    reconciled: list[tuple[int, str]] = field(default_factory=list)
    lease_lost: bool = False


# ---- triggers


def cron_day_of_week(field_text: str) -> str:
    """Cron's numeric days (0 and 7 Sunday) as names, which APScheduler 3 reads as cron does ("1-5" -> "mon-fri")."""
    def name(token: str) -> str:
        return DAY_NAMES[int(token)] if token.isdigit() and int(token) < len(DAY_NAMES) else token

    parts = []
    for part in field_text.split(","):
        span, slash, step = part.partition("/")
        low, dash, high = span.partition("-")
        parts.append(name(low) + (dash + name(high) if dash else "") + slash + step)
    return ",".join(parts)


def trigger_for(entry: str, bot: BotConfig) -> Any:
    """An APScheduler trigger for a schedule entry: a duration ('4h') or a cron expression, with the bot's jitter."""
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    timezone = bot.schedule.timezone
    jitter = parse_duration(bot.schedule.jitter) if bot.schedule.jitter else None
    if is_cron(entry):
        minute, hour, day, month, day_of_week = entry.split()
        return CronTrigger(minute=minute, hour=hour, day=day, month=month,
                           day_of_week=cron_day_of_week(day_of_week), timezone=timezone, jitter=jitter)
    return IntervalTrigger(seconds=parse_duration(entry), timezone=timezone, jitter=jitter)


def job_spec(job: str, entry: str, bot: BotConfig) -> str:
    """The job's name in the store: it changes exactly when the job's schedule does."""
    return f"{bot.name}:{job} {entry} (jitter {bot.schedule.jitter or 0}, {bot.schedule.timezone})"


# ---- the scheduler


def build_scheduler(store: Store) -> BaseScheduler:
    from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler

    class Scheduler(BackgroundScheduler):  # type: ignore[misc]
        """Runs jobs only between `resume()` and `shutdown()`.

        APScheduler 3 processes due jobs once more in the instant between `shutdown()` marking itself stopped and
        its thread ending, even when it was started paused: that would advance (and fail to submit) jobs that
        `--once` or a sync only meant to look at.
        """

        processing = False

        def resume(self) -> None:
            self.processing = True
            super().resume()

        def shutdown(self, wait: bool = True) -> None:
            self.processing = False
            super().shutdown(wait)

        def _process_jobs(self) -> float | None:
            return super()._process_jobs() if self.processing else None

    scheduler = Scheduler(
        jobstores={"default": SQLAlchemyJobStore(engine=store.engine)},
        executors={"default": ThreadPoolExecutor(WORKERS), "train": ThreadPoolExecutor(1)},
        job_defaults={"coalesce": True, "max_instances": 1},
        timezone=UTC,
    )

    def on_event(event: Any) -> None:
        if event.code == EVENT_JOB_MISSED:
            logger.warning("job %s missed its run at %s (more than its grace time late)", event.job_id,
                           event.scheduled_run_time)
        else:
            logger.error("job %s failed: %r", event.job_id, event.exception)

    scheduler.add_listener(on_event, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler


def sync_jobs(scheduler: BaseScheduler, bots: BotsFile, *, now: datetime) -> dict[str, str]:
    """Make the stored jobs match bots.toml; returns {job id: "kept" | "added" | "changed" | "removed"}."""
    wanted = {f"{bot.name}:{job}": (job, entry, bot) for bot in bots.bot
              for job, entry in bot.schedule.entries().items()}
    stored = {job.id: job for job in scheduler.get_jobs(jobstore="default")}
    changes: dict[str, str] = {}
    for job_id, job in stored.items():
        if job_id not in wanted:
            job.remove()
            changes[job_id] = "removed"
    for job_id, (job, entry, bot) in wanted.items():
        spec = job_spec(job, entry, bot)
        if job_id in stored and stored[job_id].name == spec:
            changes[job_id] = "kept"
            continue
        first_refill = {"next_run_time": now} if job == "refill" and job_id not in stored else {}
        scheduler.add_job(f"bot.service.jobs:{job}", trigger_for(entry, bot), args=[bot.name], id=job_id, name=spec,
                          replace_existing=True, coalesce=True, max_instances=1,
                          misfire_grace_time=MISFIRE_GRACE[job], executor="train" if job == "train" else "default",
                          jobstore="default", **first_refill)
        changes[job_id] = "changed" if job_id in stored else "added"
    for job_id, change in sorted(changes.items()):
        if change != "kept":
            logger.info("job %s %s", job_id, change)
    return changes


def next_fire(trigger: Any, previous: datetime, now: datetime) -> datetime | None:
    """The trigger's first fire time after `now`, counting on from `previous` (runs missed meanwhile coalesce)."""
    fire = trigger.get_next_fire_time(previous, now)
    while fire is not None and fire <= now:
        fire = trigger.get_next_fire_time(fire, now)
    return fire


def run_service(store: Store, settings: Settings, bots: BotsFile, *, once: bool = False,
                stop: threading.Event | None = None,
                on_start: Callable[[dict[str, str]], None] | None = None) -> RunSummary:
    """Hold the lease and run every bot's jobs: until `stop` is set, or (`once`) each due job once."""
    owner = process_owner()
    lease.acquire(store, owner, seconds=settings.bot_lease_seconds)
    summary = RunSummary()
    stop = stop or threading.Event()
    scheduler = build_scheduler(store)
    once_waits: dict[str, datetime] = {}

    def reschedule(job_id: str, when: datetime) -> None:
        if once:
            once_waits[job_id] = when
        else:
            scheduler.modify_job(job_id, jobstore="default", next_run_time=when)

    runtime = jobs.Runtime(store=store, settings=settings, bots=bots, owner=owner, reschedule=reschedule)
    jobs.install(runtime)
    try:
        _start_up(store, settings, bots, summary)
        scheduler.start(paused=True)
        changes = sync_jobs(scheduler, bots, now=utcnow())
        if on_start:
            on_start(changes)
        if once:
            _run_due(scheduler, runtime, summary, once_waits)
        else:
            _run_until_stopped(scheduler, store, settings, owner, stop, summary)
            runtime.stopping.set()
    finally:
        runtime.stopping.set()
        if scheduler.running:
            scheduler.shutdown(wait=True)  # the jobs in flight finish and record what they did
        jobs.install(None)
        lease.release(store, owner)
    return summary


def _start_up(store: Store, settings: Settings, bots: BotsFile, summary: RunSummary) -> None:
    """Posts cut off by a crash become `unknown`; every `unknown` is looked for among the account's posts."""
    from bot.posting import reconcile, recover_interrupted

    summary.recovered = recover_interrupted(store)
    for result in reconcile(store, settings, bots):
        summary.reconciled += result.found
        if result.error:
            logger.warning("bot %s: could not reconcile unknown candidates: %s", result.bot, result.error)


def _run_due(scheduler: BaseScheduler, runtime: jobs.Runtime, summary: RunSummary,
             waits: dict[str, datetime]) -> None:
    """`--once`: run each job due now, in the order they fell due, then store when each runs next."""
    now = utcnow()
    due = sorted((j for j in scheduler.get_jobs(jobstore="default") if j.next_run_time and j.next_run_time <= now),
                 key=lambda j: j.next_run_time)
    for job in due:
        bot_name, _, kind = job.id.partition(":")
        late = (now - job.next_run_time).total_seconds()
        if job.misfire_grace_time is not None and late > job.misfire_grace_time:
            logger.warning("job %s missed its run at %s (more than its grace time late)", job.id, job.next_run_time)
            summary.ran.append((job.id, "missed", f"{late:.0f}s late"))
        else:
            result = jobs.run_job(runtime, bot_name, kind)
            summary.ran.append((job.id, result.outcome, result.message))
        following = waits.pop(job.id, None) or next_fire(job.trigger, job.next_run_time, utcnow())
        if following is None:
            job.remove()
        else:
            job.modify(next_run_time=following)


def _run_until_stopped(scheduler: BaseScheduler, store: Store, settings: Settings, owner: str,
                       stop: threading.Event, summary: RunSummary) -> None:
    from apscheduler.events import EVENT_JOB_EXECUTED

    def on_executed(event: Any) -> None:
        summary.ran.append((event.job_id, "run", ""))

    scheduler.add_listener(on_executed, EVENT_JOB_EXECUTED)
    scheduler.resume()
    renew_every = settings.bot_lease_seconds * lease.RENEW_FRACTION
    while not stop.wait(renew_every):
        if not lease.renew(store, owner, seconds=settings.bot_lease_seconds):
            summary.lease_lost = True
            logger.error("the scheduler lease was lost (another `bot run` took over); stopping")
            break


def next_runs(store: Store) -> dict[str, datetime | None]:
    """{job id: next run} as the job store holds them, without unpickling anything."""
    from sqlalchemy import select

    from bot.store.schema import scheduler_jobs

    with store.session() as session:
        rows = session.execute(select(scheduler_jobs.c.id, scheduler_jobs.c.next_run_time)).all()
    return {id_: datetime.fromtimestamp(t, UTC) if t is not None else None for id_, t in rows}


__all__ = ["RunSummary", "build_scheduler", "next_fire", "next_runs", "run_service", "sync_jobs", "trigger_for"]
