"""`bot worker`: runs the refill and train tasks `bot run` sends through the broker, on any host that reaches the
database and the broker.

A worker is a Celery worker (prefork: each task runs in a child process, one at a time per child) whose one task,
`run_task`, does what `bot.service.jobs.run_job` does in-process, on the row the scheduler wrote for it
(`bot.service.dispatch`):

1. refuses a task of another protocol (`bot.service.broker.TASK_PROTOCOL`) in one sentence on its row;
2. takes the row (`claim`): only while it waits, or while the worker that took it before is gone (the task was
   handed out again after that worker died); a row that is over is dropped. A copy of a task still running
   elsewhere (handed out again because it outlived the visibility timeout) is watched for a while: taken over if
   that worker dies meanwhile, dropped if it finishes, else put back in the queue to be looked at again;
3. runs the job (`jobs.perform`), beating a heartbeat on the row and recording a training's progress there;
4. writes the outcome, on the row it still owns.

A train task handed out again finds the version its earlier attempt swapped in, if it got that far, and does not
train again; otherwise it trains from the start (`bot.training.retrain` writes into a fresh version folder and swaps
only a finished one). The worker itself writes a heartbeat row in `workers`, which `bot status` lists.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, update
from sqlalchemy.exc import DBAPIError

from bot.config import BotConfig, BotsFile, Settings
from bot.processes import describe_owner, process_owner
from bot.service import jobs
from bot.service.broker import TASK_NAME, TASK_PROTOCOL, celery_app
from bot.service.dispatch import database_trouble, task_gone
from bot.store import Store, insert_ignoring_conflict, one_line, open_store
from bot.store.schema import JobRun, Worker, utcnow

if TYPE_CHECKING:
    from celery import Celery

logger = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 10.0  # a worker, and each task it runs, writes its heartbeat this often
MAX_ATTEMPTS = 3  # workers that may start one task: a task whose worker dies every time (out of memory) stops there
# A copy of a task that runs elsewhere is watched this long (at most half the visibility timeout, so that Redis does
# not hand it out once more meanwhile), then goes back to the queue; a worker stopping waits for it no longer.
WATCH_SECONDS = 30.0
WATCH_EVERY = 1.0  # seconds between looks at the row of a task being watched
DATABASE_PAUSE_SECONDS = 5.0  # a task that found the database unusable goes back to the queue after this pause
FORGET_DAYS = 7  # rows of workers silent this long are deleted when a worker starts


# ---- the worker process


_settings: Settings | None = None  # the worker's settings, inherited by its child processes
_process_store: tuple[int, Store] | None = None  # (pid, store): each child process opens its own connections


def run_worker(settings: Settings, *, queues: list[str], concurrency: int) -> int:
    """Take tasks from `queues` until stopped (SIGTERM or Ctrl-C: the tasks in flight finish first); the exit code."""
    from celery.signals import worker_process_init

    global _settings
    _settings = settings
    store = open_store(settings.database_url)  # brings the schema up to date before any task runs
    name = process_owner()
    _register(store, name, queues, concurrency)
    app = build_app(settings)
    # A child process must not use the connections it inherited from this one (they belong to the heartbeat).
    worker_process_init.connect(lambda **_: store.engine.dispose(close=False), weak=False)
    stop = threading.Event()
    beat = threading.Thread(target=_beat, args=(store, name, stop, lambda: _register(store, name, queues, concurrency)),
                            name="worker-heartbeat", daemon=True)
    beat.start()
    try:
        worker = app.Worker(hostname=f"nnbot-{os.getpid()}@{socket.gethostname()}", queues=queues,
                            concurrency=concurrency, pool_cls="prefork", loglevel=logging.INFO,
                            without_gossip=True, without_mingle=True, without_heartbeat=True,
                            optimization="fair", quiet=True)
        worker.start()
        return int(worker.exitcode or 0)
    finally:
        stop.set()
        beat.join(timeout=HEARTBEAT_SECONDS)
        try:
            with store.session() as session:
                session.execute(update(Worker).where(Worker.name == name).values(stopped_at=utcnow())
                                .execution_options(synchronize_session=False))
        except DBAPIError as error:
            logger.warning("could not record that this worker stopped: %s", one_line(error))
        store.close()


def build_app(settings: Settings) -> Celery:
    """The Celery app with nnbot's one task registered."""
    app = celery_app(settings)

    @app.task(name=TASK_NAME, bind=True)
    def job_task(task: Any, *args: Any) -> str:  # the arguments: bot.service.broker.send
        from celery.exceptions import Reject

        try:
            return run_task(list(args))
        except Deferred as deferred:
            logger.info("%s", deferred)
            raise Reject(str(deferred), requeue=True) from None

    return app


def _register(store: Store, name: str, queues: list[str], concurrency: int) -> None:
    now = utcnow()
    with store.session() as session:
        session.execute(delete(Worker).where(Worker.heartbeat_at < now - timedelta(days=FORGET_DAYS)))
        values = {"queues": ",".join(queues), "concurrency": concurrency, "protocol": TASK_PROTOCOL,
                  "heartbeat_at": now, "stopped_at": None}
        if not insert_ignoring_conflict(session, Worker, {"name": name, "started_at": now, **values}):
            session.execute(update(Worker).where(Worker.name == name).values(**values)
                            .execution_options(synchronize_session=False))


def _beat(store: Store, name: str, stop: threading.Event, again: Callable[[], None]) -> None:
    """The worker's heartbeat in `workers`; a database that does not answer is retried at the next beat."""
    while not stop.wait(HEARTBEAT_SECONDS):
        try:
            with store.session() as session:
                found = session.execute(update(Worker).where(Worker.name == name).values(heartbeat_at=utcnow())
                                        .execution_options(synchronize_session=False)).rowcount  # type: ignore
            if not found:  # removed by hand, or the database was restored: say again who we are
                again()
        except DBAPIError as error:
            logger.warning("could not write this worker's heartbeat (%s); trying again", one_line(error))


def _store() -> tuple[Settings, Store]:
    """This process's settings and store (a child process opens its own on its first task)."""
    global _process_store
    assert _settings is not None, "run_task runs inside `bot worker`"
    if _process_store is None or _process_store[0] != os.getpid():
        _process_store = (os.getpid(), open_store(_settings.database_url))
    return _settings, _process_store[1]


# ---- one task


@dataclass(frozen=True)
class Claim:
    since: datetime  # when the task was first started
    taken_from: str | None  # the gone worker process it was taken over from


@dataclass(frozen=True)
class Running:
    owner: str  # the live worker process that runs the task


class Deferred(Exception):
    """A copy of a task that still runs elsewhere: it goes back to the queue."""


def run_task(args: list[Any]) -> str:
    """Run one task (`[protocol, run id, body]`) and record it on its row; returns what happened, in one line."""
    settings, store = _store()
    owner = process_owner()
    protocol = args[0] if args else None
    run_id = args[1] if len(args) > 1 and isinstance(args[1], int) else None
    body = args[2] if len(args) == 3 and isinstance(args[2], dict) else {}
    problem = _unreadable(protocol, body, owner)
    if problem is not None:
        if run_id is not None:
            _record(store, run_id, None, jobs.JobResult("error", problem))
        logger.error("run %s: %s", run_id, problem)
        return problem
    assert run_id is not None
    job, bot = body["job"], BotConfig.model_validate(body["bot"])
    watch_until = time.monotonic() + min(WATCH_SECONDS, settings.bot_broker_visibility_timeout / 2)
    while isinstance(claim := _claim_or_defer(store, run_id, owner), Running):
        if time.monotonic() >= watch_until:
            raise Deferred(f"run {run_id} (bot {bot.name}, {job}) is running on {describe_owner(claim.owner)}; this "
                           "copy of the task goes back to the queue")
        time.sleep(WATCH_EVERY)
    if isinstance(claim, str):
        logger.info("run %d (bot %s, %s): %s", run_id, bot.name, job, claim)
        return claim
    done = threading.Event()
    beat = threading.Thread(target=_beat_task, args=(store, run_id, owner, done), name="task-heartbeat", daemon=True)
    beat.start()
    try:
        result = _trained_since(store, settings, bot, claim.since) if job == "train" and claim.taken_from else None
        if result is None:
            runtime = jobs.Runtime(store=store, settings=settings, bots=BotsFile(bot=[bot]), owner=owner,
                                   reschedule=_no_reschedule, progress=lambda text: _note(store, run_id, owner, text))
            result = jobs.perform(runtime, bot, job)
    finally:
        done.set()
        beat.join(timeout=HEARTBEAT_SECONDS)
    _record(store, run_id, owner, result)
    log = logger.warning if result.outcome == "error" else logger.info
    log("bot %s: %s %s: %s", bot.name, job, result.outcome, result.message)
    return f"{result.outcome}: {result.message}"


def _unreadable(protocol: object, body: dict[str, Any], owner: str) -> str | None:
    """Why this worker cannot run a task, in one sentence; None if it can."""
    from pydantic import ValidationError

    fix = "run the same nnbot version on the workers as `bot run` (the job runs again at its next time)"
    if protocol != TASK_PROTOCOL:
        return (f"worker {describe_owner(owner)} speaks task protocol {TASK_PROTOCOL} and cannot run this task of "
                f"protocol {protocol}; {fix}")
    if body.get("job") not in jobs.DISPATCHED:
        return f"worker {describe_owner(owner)} cannot run a task of job {body.get('job')!r}; {fix}"
    try:
        BotConfig.model_validate(body.get("bot"))
    except ValidationError as error:
        return (f"worker {describe_owner(owner)} cannot read the bot in this task "
                f"({error.errors()[0]['msg']}); {fix}")
    return None


def _claim_or_defer(store: Store, run_id: int, owner: str) -> Claim | Running | str:
    """`_claim`; a database that cannot be used puts the task back in the queue after a pause."""
    try:
        return _claim(store, run_id, owner)
    except DBAPIError as error:
        time.sleep(DATABASE_PAUSE_SECONDS)
        raise Deferred(f"run {run_id}: {database_trouble(error).split(';')[0]}; the task goes back to the "
                       "queue") from None


def _claim(store: Store, run_id: int, owner: str) -> Claim | Running | str:
    """Take the task's row for `owner`; `Running` while another live worker runs it; else a sentence saying why
    the task is dropped."""
    now = utcnow()
    with store.session() as session:
        row = session.get(JobRun, run_id)
        if row is None:
            return "its row is not in the database (was the database replaced?); the task is dropped"
        if row.outcome is not None:
            return f"it is over ({row.outcome}: {row.message}); the task is dropped"
        previous = row.owner
        if previous is not None and not task_gone(row, now):
            return Running(previous)
        if row.attempts >= MAX_ATTEMPTS:
            why = (f"{row.attempts} workers started this task and each stopped before it ended (out of memory? see "
                   "the workers' logs); it is not started again, and the job runs again at its next time")
            _record(store, run_id, previous, jobs.JobResult("error", why))
            return why
        same_owner = JobRun.owner.is_(None) if previous is None else JobRun.owner == previous
        doing = f"running on {describe_owner(owner)}"
        values: dict[str, Any] = {"owner": owner, "heartbeat_at": now, "attempts": JobRun.attempts + 1,
                                  "message": doing if previous is None
                                  else f"{doing}, taken over from {describe_owner(previous)}, which stopped"}
        if previous is None:
            values["started_at"] = now
        taken = session.execute(update(JobRun).where(JobRun.id == run_id, JobRun.outcome.is_(None), same_owner)
                                .values(**values).execution_options(synchronize_session=False)).rowcount  # type: ignore
        if taken != 1:
            return "another worker took it at the same moment; this copy of the task is dropped"
        if previous is not None:
            logger.warning("run %d: taken over from %s, which stopped while running it", run_id,
                           describe_owner(previous))
        return Claim(since=now if previous is None else row.started_at, taken_from=previous)


def _trained_since(store: Store, settings: Settings, bot: BotConfig, since: datetime) -> jobs.JobResult | None:
    """A train task handed out again: the version its earlier attempt swapped in (and published), if it did, as its
    result."""
    from bot import registry
    from bot.errors import NotFoundError
    from models.errors import ModelError

    try:
        created = registry.load(settings, bot.model_name, store=store).info.get("created_at")
        trained_at = datetime.fromisoformat(str(created))
    except (NotFoundError, ModelError, ValueError):
        return None
    if trained_at < since.replace(microsecond=0):  # created_at is kept to the second
        return None
    return jobs.JobResult("ok", f"model {bot.model_name!r} was retrained by this task's earlier attempt (its version "
                                f"of {trained_at:%H:%M:%S} UTC serves); not trained again")


def _beat_task(store: Store, run_id: int, owner: str, done: threading.Event) -> None:
    while not done.wait(HEARTBEAT_SECONDS):
        _update_own(store, run_id, owner, heartbeat_at=utcnow())


def _note(store: Store, run_id: int, owner: str, text: str) -> None:
    """A running task's progress, on its row (`bot status` shows it)."""
    _update_own(store, run_id, owner, message=text, heartbeat_at=utcnow())


def _update_own(store: Store, run_id: int, owner: str, **values: Any) -> None:
    try:
        with store.session() as session:
            session.execute(update(JobRun).where(JobRun.id == run_id, JobRun.owner == owner,
                                                 JobRun.outcome.is_(None))
                            .values(**values).execution_options(synchronize_session=False))
    except DBAPIError as error:
        logger.warning("run %d: could not record its heartbeat or progress (%s)", run_id, one_line(error))


def _record(store: Store, run_id: int, owner: str | None, result: jobs.JobResult) -> None:
    """The outcome, on the row `owner` still holds (None: a row no worker took)."""
    same_owner = JobRun.owner.is_(None) if owner is None else JobRun.owner == owner
    try:
        with store.session() as session:
            done = session.execute(update(JobRun).where(JobRun.id == run_id, JobRun.outcome.is_(None), same_owner)
                                   .values(finished_at=utcnow(), heartbeat_at=utcnow(), outcome=result.outcome,
                                           message=result.message)
                                   .execution_options(synchronize_session=False)).rowcount  # type: ignore
    except DBAPIError as error:
        logger.warning("run %d: what it did was not recorded: %s", run_id, database_trouble(error))
        return
    if not done:
        logger.warning("run %d: it was closed meanwhile (its heartbeat stopped for too long); %s was not recorded",
                       run_id, result.outcome)


def _no_reschedule(job_id: str, when: datetime) -> None:
    logger.info("job %s asked to run again at %s; the scheduler runs it at its next time instead", job_id, when)
