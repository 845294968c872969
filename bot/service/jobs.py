"""The scheduler's jobs: module-level functions that take a bot's name, as APScheduler's job store keeps them.

`refill`, `post`, `scrape` and `train` find the running service through `current()` (set by
`bot.service.scheduler`), run the work for that bot, and record each run in `job_runs` with its outcome:

    ok         the job did its work
    nothing    nothing to do (the queue is full, nothing approved, the day's posts are made)
    waiting    a platform asked to wait; the bot's job runs again when the wait ends
    error      one sentence saying what went wrong (`bot status` shows the last one)
    cancelled  the service was stopping

With a broker (BOT_BROKER_URL), `refill` and `train` (`DISPATCHED`) are sent to `bot worker`s instead
(`bot.service.dispatch`): `run_job` returns `sent`, and the worker records the outcome on the same row.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError

from bot.config import BotConfig, BotsFile, Settings
from bot.errors import USER_ERRORS, BotError
from bot.queue import ready_count
from bot.store import Store, one_line
from bot.store.schema import JobRun, utcnow

logger = logging.getLogger(__name__)

JOBS = ("refill", "post", "scrape", "train")  # job ids are "BOT:JOB"
DISPATCHED = ("refill", "train")  # with a broker, these run on workers; posting stays here, where its claim is
REFILL_ROUNDS = 5  # sampling rounds one refill may take when the filters keep too few


@dataclass(frozen=True)
class JobResult:
    outcome: str  # ok, nothing, waiting, error, cancelled
    message: str
    retry_at: datetime | None = None  # run this bot's job again then, instead of at its next scheduled time


@dataclass
class Runtime:
    """What the jobs of a running service share."""

    store: Store
    settings: Settings
    bots: BotsFile
    owner: str
    reschedule: Callable[[str, datetime], None]  # (job id, when): move a job's next run
    stopping: threading.Event = field(default_factory=threading.Event)
    # (runtime, bot, job): send a DISPATCHED job to the workers instead of running it here; None: no broker
    dispatch: Callable[[Runtime, BotConfig, str], JobResult] | None = None
    progress: Callable[[str], None] | None = None  # told how a job in flight is going (a worker's task: its row)
    # One training at a time in this process, whether a train job's or a new bot's first refill's: each uses every
    # core, and two would only take twice as long each.
    training: threading.Lock = field(default_factory=threading.Lock)
    _locks: dict[str, threading.Lock] = field(default_factory=dict)
    _guard: threading.Lock = field(default_factory=threading.Lock)

    def model_lock(self, model: str) -> threading.Lock:
        """Held while a model is loaded for sampling or swapped for a retrained one."""
        with self._guard:
            return self._locks.setdefault(model, threading.Lock())


_runtime: Runtime | None = None


def install(runtime: Runtime | None) -> None:
    global _runtime
    _runtime = runtime


def current() -> Runtime:
    if _runtime is None:
        raise BotError("No nnbot service is running in this process; start one with `bot run`.")
    return _runtime


# ---- the job functions APScheduler calls


def refill(bot: str) -> None:
    run_job(current(), bot, "refill")


def post(bot: str) -> None:
    run_job(current(), bot, "post")


def scrape(bot: str) -> None:
    run_job(current(), bot, "scrape")


def train(bot: str) -> None:
    run_job(current(), bot, "train")


def run_job(runtime: Runtime, bot_name: str, job: str) -> JobResult:
    """Run one job of one bot, record it in `job_runs`, and move the job's next run if it asked to wait.

    A database that is locked or unreachable fails the job with one logged line, not a traceback: the scheduler
    (`bot.service.scheduler.Health`) waits for the database to answer again."""
    bot = runtime.bots.get(bot_name)
    if bot is None:  # removed from bots.toml while the job was queued
        return JobResult("nothing", f"bot {bot_name!r} is no longer configured")
    if runtime.dispatch is not None and job in DISPATCHED:
        return runtime.dispatch(runtime, bot, job)
    try:
        with runtime.store.session() as session:
            run = JobRun(bot=bot_name, job=job, started_at=utcnow(), owner=runtime.owner)
            session.add(run)
            session.flush()
            run_id = run.id
    except DBAPIError as error:
        return _unrecorded(bot_name, job, JobResult("error", _database_trouble(error)))
    result = perform(runtime, bot, job)
    try:
        with runtime.store.session() as session:
            row = session.get(JobRun, run_id)
            assert row is not None
            row.finished_at, row.outcome, row.message = utcnow(), result.outcome, result.message
    except DBAPIError as error:
        logger.warning("bot %s: %s: what it did was not recorded: %s", bot_name, job, _database_trouble(error))
    log = logger.warning if result.outcome == "error" else logger.info
    log("bot %s: %s %s: %s", bot_name, job, result.outcome, result.message)
    if result.retry_at is not None:
        runtime.reschedule(f"{bot_name}:{job}", result.retry_at)
    return result


def perform(runtime: Runtime, bot: BotConfig, job: str) -> JobResult:
    """The job's work (`WORK`), its errors turned into a result: what `run_job` and a worker's task record."""
    if runtime.stopping.is_set():
        return JobResult("cancelled", "the service was stopping")
    try:
        return WORK[job](runtime, bot)
    except USER_ERRORS as error:
        return JobResult("error", str(error))
    except DBAPIError as error:
        return JobResult("error", _database_trouble(error))
    except Exception as error:
        logger.exception("bot %s: job %s failed", bot.name, job)
        return JobResult("error", f"{type(error).__name__}: {error}")


def _database_trouble(error: DBAPIError) -> str:
    return f"the database could not be used ({one_line(error)}); the job runs again at its next time"


def _unrecorded(bot_name: str, job: str, result: JobResult) -> JobResult:
    logger.warning("bot %s: %s %s: %s", bot_name, job, result.outcome, result.message)
    return result


# ---- the work


def refill_queue(runtime: Runtime, bot: BotConfig) -> JobResult:
    """Sample, filter and queue until `queue_size` candidates are pending or approved."""
    from bot.generation import generate
    from models.sampler import SamplingSettings

    store = runtime.store
    with store.session() as session:
        ready = ready_count(session, bot.name)
    need = bot.queue_size - ready
    if need <= 0:
        return JobResult("nothing", f"the queue holds {ready} of {bot.queue_size} candidates")
    first = first_run(runtime, bot)
    if first is not None and first.outcome != "ok":
        return first
    s = bot.sampling
    sampling = SamplingSettings(temperature=s.temperature, top_k=s.top_k, top_p=s.top_p, max_tokens=s.max_tokens,
                                rare_words=s.rare_words)
    queued, sampled, rejected = 0, 0, Counter[str]()
    for _ in range(REFILL_ROUNDS):
        with runtime.model_lock(bot.model_name):
            report = generate(store, runtime.settings, bot.model_name, n=s.batch, sampling=sampling,
                              platform=bot.platform, filters=bot.filters, enqueue_bot=bot.name,
                              enqueue_limit=need - queued, queue_size=bot.queue_size)
        queued += len(report.enqueued)
        sampled += report.sampled
        rejected.update({name: count for name, count in report.counts.items() if count})
        with store.session() as session:  # counted again: another refill of this bot (a worker's) may have filled it
            ready_now = ready_count(session, bot.name)
        if queued >= need or ready_now >= bot.queue_size or runtime.stopping.is_set():
            break
    reasons = ", ".join(f"{name} {count}" for name, count in rejected.most_common()) or "none"
    if not queued and ready_now >= bot.queue_size:
        return JobResult("nothing", f"the queue holds {ready_now} of {bot.queue_size} candidates (another refill "
                                    "filled it meanwhile)")
    outcome = "ok" if queued else "error"
    return JobResult(outcome, (f"{first.message}; then " if first else "")
                     + f"queued {queued} of {need} wanted from {sampled} samples (rejected: {reasons}); "
                       f"{ready_now} of {bot.queue_size} ready")


def has_model(runtime: Runtime, bot: BotConfig) -> bool:
    """Whether the bot's model was trained here or published from another host (`generate` fetches it)."""
    from bot.model_store import serving

    return runtime.settings.model_dir(bot.model_name).exists() or serving(runtime.store, bot.model_name) is not None


def first_run(runtime: Runtime, bot: BotConfig) -> JobResult | None:
    """A bot's first refill, before it has a model: scrape its sources if its corpus is empty, then train its model
    (as the train job does), so that a new bots.toml and `bot run` are all a bot needs. None: the model exists."""
    from bot.corpus import corpus_size

    if has_model(runtime, bot):
        return None
    logger.info("bot %s: no model %r yet; its first run builds one", bot.name, bot.model_name)
    done: list[str] = []
    with runtime.store.session() as session:
        documents = corpus_size(session, bot.corpus)
    if not documents and bot.sources:
        scraped = scrape_sources(runtime, bot)
        if scraped.outcome == "error":
            return JobResult("error", f"first run: scraping the sources of corpus {bot.corpus!r} failed: "
                                      f"{scraped.message}")
        done.append(scraped.message)
        with runtime.store.session() as session:
            documents = corpus_size(session, bot.corpus)
    if not documents:
        how = "its sources brought none" if bot.sources else "the bot has no sources"
        return JobResult("error", f"model {bot.model_name!r} does not exist and corpus {bot.corpus!r} holds no texts "
                                  f"to train it on ({how}); import some with `bot import FILE --corpus {bot.corpus}` "
                                  "or give the bot sources in bots.toml")
    if runtime.stopping.is_set():
        return JobResult("cancelled", "the service was stopping")
    trained = retrain_model(runtime, bot)
    done.append(trained.message)
    return JobResult("ok", "first run: " + "; ".join(done))


def post_one(runtime: Runtime, bot: BotConfig) -> JobResult:
    """Post the bot's next candidate, within its daily cap (see `bot.posting`)."""
    from bot.posting import post_next, recover_interrupted

    recover_interrupted(runtime.store)
    outcome = post_next(runtime.store, runtime.settings, bot, owner=runtime.owner)
    if outcome.posted:
        return JobResult("ok", outcome.message)
    if outcome.status in ("cap", "empty"):
        return JobResult("nothing", outcome.message)
    if outcome.status == "waiting":
        return JobResult("waiting", outcome.message, outcome.retry_at)
    return JobResult("error", outcome.message, outcome.retry_at)


def scrape_sources(runtime: Runtime, bot: BotConfig) -> JobResult:
    """Bring the bot's `sources` into its corpus (`bot.platforms.SOURCES`); rate limits end the run (the next one
    continues)."""
    from bot.platforms import SOURCES

    if not bot.sources:
        return JobResult("nothing", "the bot has no sources to scrape")
    added, errors = 0, []
    for source in bot.sources:
        more, failed = SOURCES[source.type].scrape(runtime.store, runtime.settings, bot.corpus, source)
        added += more
        errors += failed
    if errors:
        return JobResult("error", f"added {added} new documents; " + " ".join(errors))
    return JobResult("ok", f"added {added} new documents to corpus {bot.corpus!r}")


def retrain_model(runtime: Runtime, bot: BotConfig) -> JobResult:
    """Train a new version of the bot's model and swap it in when training has finished."""
    from bot.training import default_base, retrain

    base = default_base(runtime.settings) if bot.training.base else None
    with runtime.training:
        summary = retrain(runtime.store, runtime.settings, bot.corpus, bot.model_name, bot.training.preset,
                          max_minutes=bot.training.max_minutes, stopping=runtime.stopping,
                          lock=runtime.model_lock(bot.model_name), init_from=base,
                          progress=_epoch_note(runtime.progress))
    return JobResult("ok", f"model {bot.model_name!r} retrained: held-out perplexity "
                           f"{summary.best.valid_perplexity:.1f} after {summary.seconds:.0f}s; it now serves")


def _epoch_note(progress: Callable[[str], None] | None) -> Callable[[Any], None] | None:
    """Each finished epoch, in words, for `progress` (a worker records it where `bot status` reads it)."""
    if progress is None:
        return None

    def note(result: Any) -> None:  # models.trainer.EpochResult
        progress(f"training: epoch {result.epoch} done, held-out perplexity {result.valid_perplexity:.1f} "
                 f"({result.seconds:.0f}s)")

    return note


WORK: dict[str, Callable[[Runtime, BotConfig], JobResult]] = {
    "refill": refill_queue, "post": post_one, "scrape": scrape_sources, "train": retrain_model}
