"""`bot run` with a broker: a refill or train job becomes a task for a worker, its `job_runs` row written first.

The row is the task's record on both sides. The scheduler writes it with a `queue` and no owner (waiting), then
sends the task; a worker that takes it sets itself as owner and beats a heartbeat on it while it runs
(`bot.service.worker`), and writes the outcome at the end. So `bot status` reads tasks waiting and running from
the database alone, and a task is never run twice at once: a worker takes a row only while it is waiting, or while
its owner is gone (`task_gone`).

A refill of a bot that has no model yet goes to the `train` queue, not `refill`: its first run trains the model
(`jobs.first_run`), and trainings belong on the hosts that take train tasks.

At each run of a job the scheduler looks at the bot's last task of that job first:
- still running, its worker alive: nothing is sent (`nothing`, saying where it runs);
- running, its worker gone: recorded as an error, and a new task is sent;
- still waiting since the job's previous run: no worker took it (none runs for the queue, or the broker lost it in
  a restart); recorded as an error, and a new task is sent. A worker that gets the old task later finds its row
  over and drops it.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select, update
from sqlalchemy.exc import DBAPIError

from bot.config import BotConfig, BotsFile, Settings
from bot.processes import describe_owner, owner_gone
from bot.service.broker import QUEUES, BrokerError, celery_app, send
from bot.service.jobs import JobResult, Runtime, has_model
from bot.store import Store, one_line
from bot.store.schema import JobRun, Worker, utcnow

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

logger = logging.getLogger(__name__)

# A task's worker writes its heartbeat every WORKER_HEARTBEAT_SECONDS (bot.service.worker); one silent for this
# long (a host that died, a network cut off) is presumed gone, and its task may run elsewhere. On the worker's own
# host a task whose process has ended is known gone at once.
TASK_STALE_SECONDS = 90.0


# A worker process writes its own heartbeat (`workers`) every bot.service.worker.HEARTBEAT_SECONDS (10); one that
# missed three is not counted as alive.
WORKER_ALIVE_SECONDS = 30.0


def worker_alive(worker: Worker, now: datetime) -> bool:
    """Whether a worker process is running, as far as its row and (on this host) its process say."""
    return (worker.stopped_at is None and (now - worker.heartbeat_at).total_seconds() <= WORKER_ALIVE_SECONDS
            and not owner_gone(worker.name))


def alive_workers(session: Session, now: datetime) -> list[Worker]:
    """The worker processes running now (`worker_alive`)."""
    return [w for w in session.scalars(select(Worker).where(Worker.stopped_at.is_(None))) if worker_alive(w, now)]


def task_gone(row: JobRun, now: datetime) -> bool:
    """Whether the worker that took this task has certainly or presumably stopped (False while none took it)."""
    if row.owner is None:
        return False
    if owner_gone(row.owner):
        return True
    beat = row.heartbeat_at or row.started_at
    return (now - beat).total_seconds() > TASK_STALE_SECONDS


class Dispatcher:
    """`Runtime.dispatch` of a `bot run` with a broker: sends each DISPATCHED job as a task."""

    def __init__(self, settings: Settings) -> None:
        self.app = celery_app(settings)

    def __call__(self, runtime: Runtime, bot: BotConfig, job: str) -> JobResult:
        return dispatch(runtime, self.app, bot, job)


def dispatch(runtime: Runtime, app: object, bot: BotConfig, job: str) -> JobResult:
    """Write the run's row and send it as a task; the result says what was sent, or why nothing was."""
    now = utcnow()
    try:
        queue = _queue(runtime, bot, job)
        with runtime.store.session() as session:
            busy = _settle_previous(session, bot.name, job, now)
            run = JobRun(bot=bot.name, job=job, started_at=now, owner=None if busy is None else runtime.owner,
                         queue=queue if busy is None else None, message=f"waiting in queue {queue}")
            if busy is not None:  # recorded like any job run that had nothing to do
                run.finished_at, run.outcome, run.message = now, "nothing", busy
            session.add(run)
            session.flush()
            run_id = run.id
    except DBAPIError as error:
        return _logged(bot.name, job, JobResult("error", database_trouble(error)))
    if busy is not None:
        return _logged(bot.name, job, JobResult("nothing", busy))
    visibility = runtime.settings.bot_broker_visibility_timeout
    if queue == QUEUES["train"] and bot.training.max_minutes * 60 > visibility:
        logger.warning("bot %s trains for up to %g minutes, longer than BOT_BROKER_VISIBILITY_TIMEOUT (%.0f s): Redis "
                       "hands its task out again while it runs, and the workers that get the copy watch it and put it "
                       "back until the training ends; raise BOT_BROKER_VISIBILITY_TIMEOUT",
                       bot.name, bot.training.max_minutes, visibility)
    try:
        send(app, run_id, bot, job, queue)  # type: ignore[arg-type]
    except BrokerError as error:
        result = JobResult("error", f"{error}; the job runs again at its next time")
        try:
            with runtime.store.session() as session:
                session.execute(update(JobRun).where(JobRun.id == run_id, JobRun.owner.is_(None),
                                                     JobRun.outcome.is_(None))
                                .values(finished_at=utcnow(), outcome=result.outcome, message=result.message)
                                .execution_options(synchronize_session=False))
        except DBAPIError as trouble:
            logger.warning("bot %s: %s: the failed send was not recorded: %s", bot.name, job,
                           database_trouble(trouble))
        return _logged(bot.name, job, result)
    return _logged(bot.name, job, JobResult("sent", f"sent to queue {queue} as run {run_id}"))


def drop_removed(store: Store, bots: BotsFile) -> int:
    """Close the waiting tasks of bots no longer in bots.toml (their jobs are removed too), so that a worker that gets
    one drops it instead of refilling or training a bot nobody runs; returns how many."""
    names = [bot.name for bot in bots.bot]
    with store.session() as session:
        dropped = session.execute(update(JobRun).where(JobRun.queue.is_not(None), JobRun.owner.is_(None),
                                                       JobRun.outcome.is_(None), JobRun.bot.not_in(names))
                                  .values(finished_at=utcnow(), outcome="cancelled",
                                          message="the bot is no longer in bots.toml; the task is dropped")
                                  .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if dropped:
        logger.info("%d waiting tasks of bots no longer in bots.toml dropped", dropped)
    return int(dropped)


def _queue(runtime: Runtime, bot: BotConfig, job: str) -> str:
    """The job's queue; a refill of a bot without a model goes to the train queue, since its first run trains
    (`jobs.first_run`), and training belongs on the hosts that take train tasks (the GPU ones)."""
    if job == "refill" and not has_model(runtime, bot):
        return QUEUES["train"]
    return QUEUES[job]


def _settle_previous(session: Session, bot: str, job: str, now: datetime) -> str | None:
    """Close the bot's last task of this job if no worker will finish it; a sentence if one still runs."""
    previous = session.scalars(select(JobRun).where(JobRun.bot == bot, JobRun.job == job, JobRun.queue.is_not(None),
                                                    JobRun.outcome.is_(None))
                               .order_by(JobRun.id.desc()).limit(1)).first()
    if previous is None:
        return None
    if previous.owner is not None and not task_gone(previous, now):
        doing = previous.message if previous.message and not previous.message.startswith("running on ") else ""
        return (f"its {job} task (run {previous.id}) is still running on {describe_owner(previous.owner)}"
                f"{': ' + doing if doing else ''}; no second one is sent")
    if previous.owner is None:
        capacity, running = _busy(session, previous.queue or "", now)
        if capacity and running >= capacity:  # it waits its turn: sending another would only queue a twin
            return (f"its {job} task (run {previous.id}) still waits in queue {previous.queue}: the workers taking it "
                    f"are busy ({running} of {capacity} running); no second one is sent")
        why = (f"no worker took it before this job's next run (is a `bot worker` taking queue {previous.queue} "
               "running, and the broker up?); a new task is sent" if not capacity else
               f"no worker took it before this job's next run, though a worker taking queue {previous.queue} was free "
               "(the broker may have lost it in a restart); a new task is sent")
    else:
        why = (f"its worker ({describe_owner(previous.owner)}) stopped answering while it ran; a new task is sent")
    owner = JobRun.owner.is_(None) if previous.owner is None else JobRun.owner == previous.owner
    closed = session.execute(update(JobRun).where(JobRun.id == previous.id, JobRun.outcome.is_(None), owner)
                             .values(finished_at=now, outcome="error", message=why)
                             .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if closed != 1:  # a worker took it or finished it this instant: look again
        session.expire_all()
        return _settle_previous(session, bot, job, now)
    logger.warning("bot %s: %s run %d: %s", bot, job, previous.id, why)
    return None


def _busy(session: Session, queue: str, now: datetime) -> tuple[int, int]:
    """(tasks the live workers taking `queue` run at once, tasks running on the queues those workers take)."""
    alive = [w for w in alive_workers(session, now) if queue in w.queues.split(",")]
    if not alive:
        return 0, 0
    taken = {q for w in alive for q in w.queues.split(",")}
    running = [t for t in session.scalars(select(JobRun).where(JobRun.outcome.is_(None), JobRun.owner.is_not(None),
                                                               JobRun.queue.in_(taken)))
               if not task_gone(t, now)]
    return sum(w.concurrency for w in alive), len(running)


def database_trouble(error: DBAPIError) -> str:
    return f"the database could not be used ({one_line(error)}); the job runs again at its next time"


def _logged(bot: str, job: str, result: JobResult) -> JobResult:
    log = logger.warning if result.outcome == "error" else logger.info
    log("bot %s: %s %s: %s", bot, job, result.outcome, result.message)
    return result
