"""`bot run`: APScheduler 3 drives every bot's jobs from its SQLAlchemy job store on BOT_DATABASE_URL.

Per bot, jobs with explicit ids (`NAME:refill`, `NAME:post`, `NAME:scrape`, `NAME:train`) whose targets are the
module-level functions of `bot.service.jobs`, taking the bot's name. A job whose schedule did not change is left
as stored, so a restart continues the schedule; a changed one is replaced, and jobs of bots no longer in
bots.toml are removed. Only the holder of the lease (`bot.service.lease`) runs a scheduler on a database.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

from bot.config import BotConfig, BotsFile, Settings, cron_trigger, is_cron, parse_duration
from bot.errors import BotError
from bot.processes import process_owner
from bot.service import jobs, lease
from bot.store import Store, one_line
from bot.store.schema import utcnow

if TYPE_CHECKING:
    from apscheduler.schedulers.base import BaseScheduler

logger = logging.getLogger(__name__)

WORKERS = 4  # jobs of different bots that run at once (a training job runs beside them, one at a time)
# Seconds a job may start late (after a restart, or while a worker was busy) and still run; None: however late.
# A post more than an hour late waits for its next slot rather than landing at an odd hour.
MISFIRE_GRACE: dict[str, int | None] = {"refill": None, "post": 3600, "scrape": None, "train": None}
HEARTBEAT_SECONDS = 5.0  # the scheduler's loop wakes at least this often, so its health is known
RETRY_FIRST_SECONDS = 1.0  # after the job store's database failed, the loop tries again after this, doubling
RETRY_MAX_SECONDS = 30.0  # and never waits longer


class Health:
    """How the scheduler's loop last fared with its job store's database: a loop that has not reached it since
    `down_since` runs no job, and the `bot run` holding it neither renews its lease (so `bot status` stops saying
    "running") nor goes on past `bot_outage_seconds`."""

    def __init__(self) -> None:
        self.failures = 0
        self.down_since: float | None = None  # time.monotonic() of the first failure in a row
        self.reason = ""
        self.reached = False  # set by the job store each time it read the due jobs

    def failed(self, reason: str) -> float:
        """Record a failure; returns the seconds to wait before the next try."""
        self.failures += 1
        if self.down_since is None:
            self.down_since = time.monotonic()
        self.reason = reason
        delay = min(RETRY_MAX_SECONDS, RETRY_FIRST_SECONDS * 2 ** (self.failures - 1))
        logger.warning("the scheduler cannot use the database (%s); no job runs until it can, next try in %.0f s",
                       reason, delay)
        return delay

    def ok(self) -> None:
        if self.down_since is not None:
            logger.warning("the database answers again after %.0f s; the jobs go on",
                           time.monotonic() - self.down_since)
        self.failures, self.down_since, self.reason = 0, None, ""

    def down_for(self) -> float:
        return 0.0 if self.down_since is None else time.monotonic() - self.down_since


@dataclass
class RunSummary:
    """What a `bot run` did: jobs run by outcome, candidates recovered and reconciled at start-up."""

    ran: list[tuple[str, str, str]] = field(default_factory=list)  # (job id, outcome, message)
    recovered: list[int] = field(default_factory=list)
    reconciled: list[tuple[int, str]] = field(default_factory=list)
    lease_lost: bool = False


# ---- triggers


def trigger_for(entry: str, bot: BotConfig) -> Any:
    """An APScheduler trigger for a schedule entry: a duration ('4h') or a cron expression, with the bot's jitter."""
    from apscheduler.triggers.interval import IntervalTrigger

    timezone = bot.schedule.timezone
    jitter = parse_duration(bot.schedule.jitter) if bot.schedule.jitter else None
    if is_cron(entry):
        return cron_trigger(entry, timezone=timezone, jitter=jitter)
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

    health = Health()

    class JobStore(SQLAlchemyJobStore):  # type: ignore[misc]
        def get_due_jobs(self, now: datetime) -> list[Any]:
            due = super().get_due_jobs(now)  # when it raises, APScheduler logs it and tries again later
            health.reached = True
            return due

    class Scheduler(BackgroundScheduler):  # type: ignore[misc]
        """Runs jobs only between `resume()` and `shutdown()`, and survives a database that is locked or gone.

        APScheduler 3 processes due jobs once more in the instant between `shutdown()` marking itself stopped and
        its thread ending, even when it was started paused: that would advance (and fail to submit) jobs that
        `--once` or a sync only meant to look at. And an error while it stores a job's next run time ("database is
        locked") ends its thread for good: here it is logged and retried with backoff (`Health`).
        """

        processing = False

        def resume(self) -> None:
            self.processing = True
            super().resume()

        def shutdown(self, wait: bool = True) -> None:
            self.processing = False
            super().shutdown(wait)

        def _process_jobs(self) -> float | None:
            if not self.processing:
                return None
            health.reached = False
            try:
                wait = super()._process_jobs()
            except Exception as error:  # storing a job's next run: the database is locked, gone, restarting
                return health.failed(one_line(error))
            if not health.reached:  # reading the due jobs failed (APScheduler logged why)
                return health.failed("the due jobs could not be read")
            health.ok()
            return HEARTBEAT_SECONDS if wait is None else min(wait, HEARTBEAT_SECONDS)

    scheduler = Scheduler(
        jobstores={"default": JobStore(engine=store.engine)},
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
    scheduler.health = health
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

    runtime = jobs.Runtime(store=store, settings=settings, bots=bots, owner=owner, reschedule=reschedule,
                           dispatch=_dispatcher(settings))
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
        try:
            lease.release(store, owner)
        except SQLAlchemyError as error:  # the database is gone: the lease expires by itself
            logger.warning("could not give the scheduler lease back (%s); it expires by itself", one_line(error))
    return summary


def _dispatcher(settings: Settings) -> Callable[[jobs.Runtime, BotConfig, str], jobs.JobResult] | None:
    """With BOT_BROKER_URL, refills and trainings go to `bot worker`s (bot.service.dispatch); else None."""
    if not settings.bot_broker_url:
        return None
    from bot.service.dispatch import Dispatcher

    return Dispatcher(settings)


def _start_up(store: Store, settings: Settings, bots: BotsFile, summary: RunSummary) -> None:
    """Posts cut off by a crash become `unknown`; every `unknown` is looked for among the account's posts; tasks still
    waiting for a worker on behalf of bots that left bots.toml are dropped."""
    from bot.posting import reconcile, recover_interrupted
    from bot.service.dispatch import drop_removed

    summary.recovered = recover_interrupted(store)
    drop_removed(store, bots)
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
    health: Health = scheduler.health  # type: ignore[attr-defined]
    renew_every = min(settings.bot_lease_seconds * lease.RENEW_FRACTION, HEARTBEAT_SECONDS)
    renew_failed: float | None = None  # time.monotonic() when renewing the lease began to fail
    while not stop.wait(renew_every):
        if not scheduler._thread.is_alive():  # noqa: SLF001 - APScheduler's loop; a dead one runs no job
            raise BotError("The scheduler's loop stopped unexpectedly (its log says why); `bot run` exits so that "
                           "it can be restarted.")
        down = max(health.down_for(), time.monotonic() - renew_failed if renew_failed else 0.0)
        if down > settings.bot_outage_seconds:
            reason = health.reason or "see the log"
            raise BotError(f"The database could not be used for {down:.0f} seconds ({reason}); `bot run` stopped: "
                           "restart it once the database is back (systemd and compose do), or raise "
                           "BOT_OUTAGE_SECONDS.")
        if health.down_since is not None:
            continue  # no heartbeat while no job can run: `bot status` stops saying "running" when the lease ends
        try:
            renewed = lease.renew(store, owner, seconds=settings.bot_lease_seconds)
        except SQLAlchemyError as error:
            renew_failed = renew_failed or time.monotonic()
            health.reason = one_line(error)
            logger.warning("could not renew the scheduler lease (%s); trying again", health.reason)
            continue
        renew_failed = None
        if not renewed:
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
