"""`bot worker`: trainings and refills sent by `bot run` through a real Redis, run by real worker processes.

Each test that needs the broker starts its own `redis-server` on a free port (no persistence, in a temporary
folder) and stops it; without redis-server on PATH they skip, and the end of the run says so. Workers and the
scheduler are real processes (`python -m bot.cli worker`, `… run`), on SQLite (one database file shared by the
processes of this host) and on PostgreSQL where the database matters.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from bot.config import BotConfig, load_bots_file, load_settings
from bot.corpus import add_documents
from bot.generation import generate
from bot.model_store import local_hash, serving
from bot.processes import describe_owner, process_owner
from bot.queue import ready_count
from bot.service import jobs
from bot.service.broker import TASK_PROTOCOL, celery_app, send
from bot.service.dispatch import Dispatcher
from bot.service.status import service_status
from bot.service.worker import MAX_ATTEMPTS, Claim, Running, _claim, _trained_since
from bot.store import open_store
from bot.store.schema import Candidate, JobRun, ModelVersion, Status, Worker, utcnow
from models.sampler import SamplingSettings
from scrapers.documents import Document
from tests.bot.service.helpers import add_candidates, bot_config, file_bot, python, wait_for, write_bots
from tests.conftest import note

REDIS_SERVER = shutil.which("redis-server")
# Seconds a task goes unacknowledged before Redis hands it out again. Production's default is an hour
# (BOT_BROKER_VISIBILITY_TIMEOUT: longer than the longest training, so that a running task is not handed out twice);
# here it is short, so that a task whose worker was killed comes back within seconds. A copy handed out while the
# task still runs is watched by the worker that gets it, and taken over once the first worker dies.
VISIBILITY_SECONDS = 5
TRAINING = '[bot.training]\npreset = "tiny"\nmax_minutes = 0.15\n[bot.filters]\nnovelty = false\nmin_words = 1'


# ---- a Redis of the test's own, and the processes it starts


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RedisServer:
    """`redis-server` on a free port of 127.0.0.1, keeping nothing on disk; `stop` and `start` again keep the port."""

    def __init__(self, folder: Path) -> None:
        self.folder, self.port = folder, free_port()
        self.process: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        assert REDIS_SERVER is not None
        self.process = subprocess.Popen([REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.folder)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.answers, what=f"redis-server to answer on port {self.port}", deadline=20)

    def answers(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=0.5).ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)
        self.process = None


@pytest.fixture
def redis_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[RedisServer]:
    if REDIS_SERVER is None:
        note(request.config, "redis", "Worker tests skipped: redis-server is not on PATH; install it (Debian: "
             "apt-get install redis-server) to run them.")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


class Processes:
    """`bot` processes of a test, each in its own process group (a worker and its children die together), their
    output in files; whatever is still running at the end is killed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.running: dict[str, subprocess.Popen[str]] = {}

    def bot(self, name: str, *args: str, code: str | None = None) -> subprocess.Popen[str]:
        log = open(self.folder / f"{name}.log", "w", encoding="utf-8")  # noqa: SIM115 - the process keeps it
        argv = ("-c", code, *args) if code else ("-m", "bot.cli", *args)
        process = python(*argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.running[name] = process
        return process

    def log(self, name: str) -> str:
        return (self.folder / f"{name}.log").read_text(encoding="utf-8", errors="replace")

    def stop(self, name: str) -> int:
        """SIGTERM, as compose and systemd stop a service; returns its exit code."""
        process = self.running[name]
        process.send_signal(signal.SIGTERM)
        return process.wait(timeout=60)

    def kill(self, name: str) -> None:
        """SIGKILL the process and its children, as when a host dies."""
        os.killpg(self.running[name].pid, signal.SIGKILL)
        self.running[name].wait(timeout=20)

    def owning(self, owner: str) -> str:
        """The name of the process whose group holds the process `owner` ("host:pid:random")."""
        pid = int(owner.split(":")[1])
        group = os.getpgid(pid)
        return next(name for name, p in self.running.items() if p.pid == group)

    def close(self) -> None:
        for process in self.running.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=20)


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    fleet = Processes(tmp_path)
    yield fleet
    fleet.close()


def with_models(store, tiny_model_dir: Path, titles: list[str], *names: str,  # type: ignore[no-untyped-def]
                corpus_size: int | None = None) -> None:
    """Bots `names` with a trained model each, and their corpora: the titles the tiny model was trained on (the
    first `corpus_size` of them: a retraining of fewer takes less time)."""
    settings = load_settings()
    for name in names:
        shutil.copytree(tiny_model_dir, settings.model_dir(name))
    with store.session() as s:
        add_documents(s, "titles", [Document(source="file", external_id=str(i), text=t) for i, t in enumerate(titles)])
        for corpus in names:
            add_documents(s, corpus, [Document(source="file", external_id=str(i), text=t)
                                      for i, t in enumerate(titles[:corpus_size])])


def broker_env(monkeypatch: pytest.MonkeyPatch, database_url: str, redis_server: RedisServer) -> None:
    """What `bot run` and `bot worker` read: the database, the broker, a short visibility timeout."""
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    monkeypatch.setenv("BOT_BROKER_URL", redis_server.url)
    monkeypatch.setenv("BOT_BROKER_VISIBILITY_TIMEOUT", str(VISIBILITY_SECONDS))


def runs(store, job: str, bot: str | None = None) -> list[JobRun]:  # type: ignore[no-untyped-def]
    with store.session() as s:
        query = select(JobRun).where(JobRun.job == job).order_by(JobRun.id)
        return list(s.scalars(query.where(JobRun.bot == bot) if bot else query))


def ready(store, bot: str) -> int:  # type: ignore[no-untyped-def]
    with store.session() as s:
        return ready_count(s, bot)


def workers(store) -> list[Worker]:  # type: ignore[no-untyped-def]
    with store.session() as s:
        return list(s.scalars(select(Worker).order_by(Worker.started_at)))


def send_task(store, settings, bot, job: str) -> int:  # type: ignore[no-untyped-def]
    """Write a task's row and send it, as the scheduler does (a second one for the same bot: a redelivery's twin)."""
    with store.session() as s:
        run = JobRun(bot=bot.name, job=job, started_at=utcnow(), queue=job)
        s.add(run)
        s.flush()
        run_id = run.id
    send(celery_app(settings), run_id, bot, job)
    return run_id


# ---- with real processes


def test_two_workers_fill_queues_and_retrain_and_a_worker_killed_mid_training_is_replaced(
        database_url, redis_server, processes, monkeypatch, tmp_path, tiny_model_dir, titles) -> None:
    broker_env(monkeypatch, database_url, redis_server)
    store = open_store(database_url)
    with_models(store, tiny_model_dir, titles, "fa", "fb", corpus_size=600)
    config = write_bots(tmp_path / "bots.toml",
                        file_bot("fa", extra="queue_size = 3\n" + TRAINING, schedule='post = "1h"\nrefill = "1h"')
                        + file_bot("fb", extra="queue_size = 3\n" + TRAINING,
                                   schedule='post = "1h"\nrefill = "1h"\nretrain = "3s"'))
    settings, fb = load_settings(), bot_config(config, "fb")
    for name in ("w1", "w2"):
        processes.bot(name, "worker", "--queues", "train,refill")
    wait_for(lambda: len(workers(store)) == 2, what="two workers to say they are up")

    # Two refills of one bot at once, on two workers: together they fill its queue to its size, not past it.
    for _ in range(2):
        send_task(store, settings, fb, "refill")
    wait_for(lambda: all(r.outcome for r in runs(store, "refill", "fb")), what="both refills of fb to finish",
             deadline=90)
    assert ready(store, "fb") == 3
    assert [r.outcome in ("ok", "nothing") for r in runs(store, "refill", "fb")] == [True, True]

    # The scheduler sends fa's first refill and, 3 s on, fb's retraining; then it stops: no second retraining.
    processes.bot("run", "--config", str(config), "run")
    [fa_refill] = wait_for(lambda: [r for r in runs(store, "refill", "fa") if r.outcome],
                           what="fa's queue filled by a worker")
    assert ready(store, "fa") == 3
    assert fa_refill.outcome == "ok" and fa_refill.queue == "refill" and fa_refill.owner is not None
    wait_for(lambda: runs(store, "train", "fb"), what="the scheduler to send fb's retraining")
    assert processes.stop("run") == 0

    def training() -> JobRun | None:
        [run] = runs(store, "train", "fb")
        return run if run.owner and (run.message or "").startswith("training: epoch") else None

    run = wait_for(training, what="a worker to train fb and record its first epoch")
    victim = processes.owning(run.owner)
    processes.kill(victim)
    killed_at = time.time()
    # What `bot status` says meanwhile: the task still running (here or, taken over, on the survivor) or already
    # done, never waiting or lost; one worker alive. Polled: a tiny training may be over before the first look.
    def one_worker_alive() -> dict | None:  # type: ignore[type-arg]
        seen = service_status(store, load_settings(), load_bots_file(config))["workers"]
        return seen if [w["alive"] for w in seen["seen"]].count(True) == 1 else None

    seen = wait_for(one_worker_alive, what="`bot status` to see one worker alive")
    assert seen["broker"]["reachable"] is True and seen["queues"]["train"]["waiting"] == 0
    assert [(t["run"], t["bot"], t["job"]) for t in seen["running"]] in ([(run.id, "fb", "train")], [])

    def finished() -> JobRun | None:
        [run] = runs(store, "train", "fb")
        return run if run.outcome else None

    run = wait_for(finished, what="the task, handed out again, to be trained by the other worker", deadline=120)
    assert run.outcome == "ok", run.message
    assert run.message.startswith("model 'fb' retrained: held-out perplexity ")
    assert run.attempts == 2 and processes.owning(run.owner) != victim
    survivor = processes.owning(run.owner)
    assert "taken over from " in processes.log(survivor)
    swaps = processes.log("w1").count("model fb now serves") + processes.log("w2").count("model fb now serves")
    assert swaps == 1  # the killed worker never swapped; the survivor swapped once
    serving_folder = load_settings().model_dir("fb").resolve()
    assert serving_folder.stat().st_mtime >= killed_at - 1  # written after the kill, by the survivor
    assert list(serving_folder.parent.glob(".*")) == []  # the killed worker's half-written folder was removed
    with store.session() as s:  # one version stored and serving: the survivor's
        stored = s.scalars(select(ModelVersion.sha256).where(ModelVersion.model == "fb")).all()
    assert stored == [serving(store, "fb")] == [local_hash(serving_folder)]
    from bot import registry

    assert registry.load(load_settings(), "fb").info["corpus"] == "fb"
    assert processes.stop(survivor) == 0
    pid = str(processes.running[survivor].pid)
    assert [w.stopped_at is not None for w in workers(store) if w.name.split(":")[1] == pid] == [True]
    store.close()


def test_a_redis_restart_stops_no_post_fails_the_sends_of_the_outage_and_the_worker_reconnects(
        redis_server, processes, monkeypatch, tmp_path, tiny_model_dir, titles) -> None:
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    broker_env(monkeypatch, database_url, redis_server)
    store = open_store(database_url)
    with_models(store, tiny_model_dir, titles, "fb")
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", extra="queue_size = 2\n" + TRAINING,
                                                         schedule='post = "1s"\nrefill = "1s"'))
    add_candidates(store, "fb", [f"Approved title number {n}" for n in range(30)])  # a full queue: refills are quick
    processes.bot("worker", "worker", "--queues", "refill")
    processes.bot("run", "--config", str(config), "run")

    def posted() -> int:
        with store.session() as s:
            return s.scalar(select(func.count()).where(Candidate.status == Status.POSTED)) or 0

    def refills(outcomes: tuple[str, ...], after: int = 0) -> list[JobRun]:
        return [r for r in runs(store, "refill", "fb") if r.id > after and r.outcome in outcomes]

    wait_for(lambda: [r for r in refills(("nothing",)) if r.owner], what="a refill run by the worker")
    redis_server.stop()
    stopped, posts_before = max(r.id for r in runs(store, "refill", "fb")), posted()
    outage = wait_for(lambda: refills(("error",), stopped), what="a refill sent while Redis is down")[0]
    assert outage.message == (f"the broker at {redis_server.url} did not take the task (Error 111 connecting to "
                              f"127.0.0.1:{redis_server.port}. Connection refused.); the job runs again at its next "
                              "time")
    wait_for(lambda: posted() >= posts_before + 2, what="posts to go on while Redis is down")
    began = time.monotonic()
    broker = service_status(store, load_settings(), load_bots_file(config))["workers"]["broker"]
    assert time.monotonic() - began < 5 and broker["reachable"] is False
    assert broker["problem"].startswith("did not answer within 2 s (Error 111 connecting to 127.0.0.1:")

    redis_server.start()  # empty: what it held is gone, as after a restart without persistence
    back = max(r.id for r in runs(store, "refill", "fb"))
    again = wait_for(lambda: [r for r in refills(("nothing", "ok"), back) if r.owner],
                     what="the worker to reconnect and run a refill sent after the restart", deadline=90)[0]
    assert again.queue == "refill"
    assert processes.stop("run") == 0 and processes.stop("worker") == 0
    store.close()


def test_a_worker_of_another_task_protocol_refuses_the_task_in_one_sentence(
        redis_server, processes, monkeypatch, tmp_path, bot, tiny_model_dir) -> None:
    database_url = f"sqlite:///{tmp_path / 'bot.db'}"
    broker_env(monkeypatch, database_url, redis_server)
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", schedule='post = "1h"\nrefill = "1h"'))
    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))  # a bot with a model: its refill is a refill
    older = ("import sys; import bot.service.worker as w; w.TASK_PROTOCOL = 0; from bot.cli import main; "
             "sys.argv = ['bot', 'worker', '--queues', 'refill']; main()")  # the code of an older release
    processes.bot("old", code=older)
    store = open_store(database_url)
    wait_for(lambda: workers(store), what="the older worker to say it is up")
    sent = bot("--config", str(config), "run", "--once")
    assert sent.out == "fb:refill: sent: sent to queue refill as run 1\n", sent.err
    [run] = wait_for(lambda: [r for r in runs(store, "refill") if r.outcome], what="the older worker's refusal")
    refusal = re.fullmatch(
        rf"worker pid (\d+) on {re.escape(socket.gethostname())} speaks task protocol 0 and cannot run this task of "
        rf"protocol {TASK_PROTOCOL}; run the same nnbot version on the workers as `bot run` \(the job runs again at "
        r"its next time\)", run.message)
    assert run.outcome == "error" and refusal, run.message
    assert processes.owning(f"host:{refusal[1]}:x") == "old"  # a child process of the older worker
    status = bot("--config", str(config), "status").out.splitlines()
    assert f"  {describe_owner(workers(store)[0].name)}: queues refill, 1 at a time, task protocol 0; heartbeat " in [
        line[:line.index("heartbeat ") + 10] for line in status if "heartbeat " in line]
    assert [line for line in status if line.startswith("Last failed task: ")] == [
        f"Last failed task: fb refill (run 1) at {run.finished_at:%Y-%m-%d %H:%M:%S} UTC: {run.message}"]
    store.close()


# ---- the rules each side keeps, without processes


def test_without_a_broker_every_job_runs_inside_bot_run_as_before(store, tmp_path, tiny_model_dir, titles) -> None:
    from bot.service.scheduler import run_service

    with_models(store, tiny_model_dir, titles, "fb")
    config = write_bots(tmp_path / "b.toml", file_bot("fb", extra="queue_size = 2\n" + TRAINING))
    summary = run_service(store, load_settings(), load_bots_file(config), once=True)
    assert [(job, outcome) for job, outcome, _ in summary.ran] == [("fb:refill", "ok")]
    [run] = runs(store, "refill")
    assert run.queue is None and run.attempts == 0 and run.owner == process_owner()


def test_a_refill_counts_the_room_again_in_the_transaction_that_queues(store, tiny_model_dir, titles) -> None:
    with_models(store, tiny_model_dir, titles, "fb")
    add_candidates(store, "fb", ["Queued by another refill meanwhile", "And this one too"], approve=False)
    # This refill saw room for 4 when it began (enqueue_limit); two arrived since: it queues 1, up to queue_size 3.
    report = generate(store, load_settings(), "fb", n=20, sampling=SamplingSettings(temperature=1.0), filters=None,
                      enqueue_bot="fb", enqueue_limit=4, queue_size=3)
    assert len(report.accepted) >= 4 and len(report.enqueued) == 1
    assert ready(store, "fb") == 3
    full = generate(store, load_settings(), "fb", n=20, sampling=SamplingSettings(temperature=1.0), filters=None,
                    enqueue_bot="fb", enqueue_limit=4, queue_size=3)
    assert full.enqueued == [] and ready(store, "fb") == 3


def scheduler_runtime(store, config: Path, broker_url: str) -> jobs.Runtime:  # type: ignore[no-untyped-def]
    settings = load_settings(bot_broker_url=broker_url)
    return jobs.Runtime(store=store, settings=settings, bots=load_bots_file(config), owner=process_owner(),
                        reschedule=lambda job, when: None, dispatch=Dispatcher(settings))


def test_a_task_the_broker_does_not_take_fails_in_one_sentence(store, tmp_path) -> None:
    config = write_bots(tmp_path / "b.toml", file_bot("fb"))
    closed = free_port()
    result = jobs.run_job(scheduler_runtime(store, config, f"redis://127.0.0.1:{closed}/0"), "fb", "train")
    assert (result.outcome, result.message) == (
        "error", f"the broker at redis://127.0.0.1:{closed}/0 did not take the task (Error 111 connecting to "
                 f"127.0.0.1:{closed}. Connection refused.); the job runs again at its next time")
    [run] = runs(store, "train")
    assert (run.queue, run.owner, run.outcome, run.message) == ("train", None, "error", result.message)


def gone_owner() -> str:
    """An owner on this host whose process has ended."""
    ended = subprocess.Popen(["true"])
    ended.wait()
    return f"{socket.gethostname()}:{ended.pid}:0000abcd"


def test_at_its_next_run_a_job_sends_no_second_task_while_one_runs_and_replaces_one_no_worker_will_finish(
        store, tmp_path, redis_server, tiny_model_dir) -> None:
    config = write_bots(tmp_path / "b.toml", file_bot("fb") + file_bot("new"))
    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))  # "new" has no model yet
    runtime = scheduler_runtime(store, config, redis_server.url)
    assert jobs.run_job(runtime, "fb", "refill").outcome == "sent"
    again = jobs.run_job(runtime, "fb", "refill")  # the first still waits: no worker took it
    assert again == jobs.JobResult("sent", "sent to queue refill as run 2")
    first, second = runs(store, "refill")
    assert (first.outcome, first.message) == (
        "error", "no worker took it before this job's next run (is a `bot worker` taking queue refill running, and "
                 "the broker up?); a new task is sent")
    with store.session() as s:  # a worker of this process takes the second and beats its heart
        s.execute(update(JobRun).where(JobRun.id == second.id).values(owner=process_owner(), heartbeat_at=utcnow(),
                                                                      message="training: epoch 2 done"))
    busy = jobs.run_job(runtime, "fb", "refill")
    assert busy == jobs.JobResult("nothing", f"its refill task (run 2) is still running on "
                                             f"{describe_owner(process_owner())}: training: epoch 2 done; no second "
                                             "one is sent")
    dead = gone_owner()
    with store.session() as s:  # its worker died
        s.execute(update(JobRun).where(JobRun.id == second.id).values(owner=dead))
    assert jobs.run_job(runtime, "fb", "refill") == jobs.JobResult("sent", "sent to queue refill as run 4")
    with store.session() as s:
        assert (s.get(JobRun, second.id).outcome, s.get(JobRun, second.id).message) == (
            "error", f"its worker ({describe_owner(dead)}) stopped answering while it ran; a new task is sent")
        assert s.get(JobRun, 3).outcome == "nothing" and s.get(JobRun, 3).queue is None
    import redis

    assert redis.Redis(port=redis_server.port).llen("refill") == 3  # the broker got three; workers drop the old two

    # A bot without a model: its first refill trains (jobs.first_run), so it goes where trainings go.
    assert jobs.run_job(runtime, "new", "refill") == jobs.JobResult("sent", "sent to queue train as run 5")
    [first] = runs(store, "refill", "new")
    assert (first.queue, first.message) == ("train", "waiting in queue train")
    assert redis.Redis(port=redis_server.port).llen("train") == 1


def test_a_task_waits_its_turn_while_the_workers_are_busy_and_a_removed_bots_waiting_tasks_are_dropped(
        store, tmp_path, redis_server, tiny_model_dir) -> None:
    from bot.service.scheduler import RunSummary, _start_up

    config = write_bots(tmp_path / "b.toml", file_bot("fb"))
    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))
    runtime = scheduler_runtime(store, config, redis_server.url)
    now, me = utcnow(), process_owner()
    with store.session() as s:  # one worker, one at a time, busy with a training of another bot
        s.add_all([Worker(name=me, queues="train,refill", concurrency=1, protocol=TASK_PROTOCOL, started_at=now,
                          heartbeat_at=now),
                   JobRun(bot="other", job="train", started_at=now, queue="train", owner=me, heartbeat_at=now)])
    assert jobs.run_job(runtime, "fb", "refill").outcome == "sent"  # run 2
    assert jobs.run_job(runtime, "fb", "refill") == jobs.JobResult(
        "nothing", "its refill task (run 2) still waits in queue refill: the workers taking it are busy (1 of 1 "
                   "running); no second one is sent")
    with store.session() as s:  # the training ends: the worker is free, yet the task was not taken
        s.execute(update(JobRun).where(JobRun.id == 1).values(outcome="ok", finished_at=utcnow()))
    assert jobs.run_job(runtime, "fb", "refill") == jobs.JobResult("sent", "sent to queue refill as run 4")
    with store.session() as s:
        assert s.get(JobRun, 2).message == (
            "no worker took it before this job's next run, though a worker taking queue refill was free (the broker "
            "may have lost it in a restart); a new task is sent")

    # `bot run` starts with a bots.toml that no longer names fb: its waiting task is dropped, not run
    _start_up(store, load_settings(), load_bots_file(write_bots(tmp_path / "c.toml", file_bot("xb"))), RunSummary())
    with store.session() as s:
        assert (s.get(JobRun, 4).outcome, s.get(JobRun, 4).message) == (
            "cancelled", "the bot is no longer in bots.toml; the task is dropped")


def test_status_does_not_count_a_task_whose_worker_died_as_running(store, tmp_path) -> None:
    dead, now = gone_owner(), utcnow()
    with store.session() as s:
        s.add(JobRun(bot="fb", job="train", started_at=now, queue="train", owner=dead, heartbeat_at=now,
                     message="training: epoch 6 done, held-out perplexity 48.0 (7s)"))
    seen = service_status(store, load_settings(), load_bots_file(write_bots(tmp_path / "b.toml", file_bot("fb"))))
    assert seen["workers"]["queues"]["train"] == {"waiting": 0, "running": 0}
    [task] = seen["workers"]["running"]
    assert task["gone"] and task["progress"] == ("its worker stopped (last: training: epoch 6 done, held-out "
                                                 "perplexity 48.0 (7s)); the job sends it again at its next run")


def test_a_worker_takes_a_task_only_while_it_waits_or_its_worker_is_gone(store) -> None:
    dead = gone_owner()
    with store.session() as s:
        s.add_all([JobRun(bot="fb", job="train", started_at=utcnow(), queue="train"),
                   JobRun(bot="fb", job="train", started_at=utcnow(), queue="train", owner="elsewhere:1:ab",
                          heartbeat_at=utcnow()),
                   JobRun(bot="fb", job="train", started_at=utcnow(), queue="train", owner=dead,
                          heartbeat_at=utcnow(), attempts=1),
                   JobRun(bot="fb", job="train", started_at=utcnow(), queue="train", outcome="ok", message="done"),
                   JobRun(bot="fb", job="train", started_at=utcnow(), queue="train", owner=gone_owner(),
                          attempts=MAX_ATTEMPTS)])
    me = process_owner()
    waiting = _claim(store, 1, me)
    assert isinstance(waiting, Claim) and waiting.taken_from is None
    assert _claim(store, 1, "another:2:cd") == Running(me)
    assert _claim(store, 2, me) == Running("elsewhere:1:ab")
    taken = _claim(store, 3, me)
    assert isinstance(taken, Claim) and taken.taken_from is not None
    assert _claim(store, 4, me) == "it is over (ok: done); the task is dropped"
    assert _claim(store, 5, me) == (f"{MAX_ATTEMPTS} workers started this task and each stopped before it ended (out "
                                    "of memory? see the workers' logs); it is not started again, and the job runs "
                                    "again at its next time")
    with store.session() as s:
        rows = {r.id: r for r in s.scalars(select(JobRun))}
    assert [(rows[i].owner == me, rows[i].attempts) for i in (1, 3)] == [(True, 1), (True, 2)]
    assert rows[3].message == f"running on {describe_owner(me)}, taken over from {describe_owner(dead)}, which stopped"
    assert taken.taken_from == dead and rows[5].outcome == "error"


def test_status_shows_the_broker_the_workers_the_tasks_and_the_last_failed_one(bot, store, database_url,
                                                                              monkeypatch, tmp_path) -> None:
    closed = free_port()
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    monkeypatch.setenv("BOT_BROKER_URL", f"redis://127.0.0.1:{closed}/0")
    config = write_bots(tmp_path / "b.toml", file_bot("fb"))
    now, me, dead = utcnow(), process_owner(), gone_owner()
    with store.session() as s:
        s.add_all([Worker(name=me, queues="train", concurrency=2, protocol=TASK_PROTOCOL, started_at=now,
                          heartbeat_at=now),
                   Worker(name=dead, queues="refill", concurrency=1, protocol=TASK_PROTOCOL, started_at=now,
                          heartbeat_at=now, stopped_at=now),
                   JobRun(bot="fb", job="train", started_at=now, queue="train", owner=me, heartbeat_at=now,
                          message="training: epoch 3 done, held-out perplexity 51.2 (4s)", attempts=1),
                   JobRun(bot="fb", job="refill", started_at=now, queue="refill"),
                   JobRun(bot="fb", job="refill", started_at=now, finished_at=now, queue="refill", outcome="error",
                          message="the queue could not be filled")])
    began = time.monotonic()
    out = bot("--config", str(config), "status").out
    assert time.monotonic() - began < 10  # the broker is asked with a 2 s timeout; nothing waits longer
    at = f"{now:%Y-%m-%d %H:%M:%S} UTC"
    assert out.split("\n\n")[-1].splitlines() == [
        f"Broker: redis://127.0.0.1:{closed}/0 did not answer within 2 s (Error 111 connecting to 127.0.0.1:{closed}. "
        "Connection refused.); `bot run` goes on posting, and a task it cannot send runs at its job's next time.",
        "Workers: 2 seen in the last 5 minutes:",
        f"  {describe_owner(me)}: queues train, 2 at a time, task protocol {TASK_PROTOCOL}; heartbeat {at}",
        f"  {describe_owner(dead)}: queues refill, 1 at a time, task protocol {TASK_PROTOCOL}; stopped at {at}",
        "Tasks:      refill 1 waiting, 0 running; train 0 waiting, 1 running",
        f"  fb train (run 1) on {describe_owner(me)} since {at}: training: epoch 3 done, held-out perplexity 51.2 (4s)",
        f"Last failed task: fb refill (run 3) at {at}: the queue could not be filled"]
    report = bot("--config", str(config), "status", "--json").json["workers"]
    assert report["queues"] == {"refill": {"waiting": 1, "running": 0}, "train": {"waiting": 0, "running": 1}}
    assert [w["alive"] for w in report["seen"]] == [True, False]


def test_a_broker_that_refuses_nnbot_is_said_so_by_worker_status_and_check(bot, monkeypatch, tmp_path,
                                                                           redis_server, store, database_url) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", database_url)
    config = str(write_bots(tmp_path / "b.toml", file_bot("fb")))
    from bot.cli import context

    def with_broker(url: str) -> None:
        monkeypatch.setenv("BOT_BROKER_URL", url)
        context.settings.cache_clear()

    with_broker(f"redis://127.0.0.1:{redis_server.port}/99")  # Redis answers, and has no database 99
    refused = ("answered but refused nnbot (DB index is out of range); check the password and database number in "
               "BOT_BROKER_URL")
    assert bot("worker").err == f"Error: The broker at {redis_server.url[:-2]}/99 {refused}.\n"  # not a retry loop
    assert f"Broker: {redis_server.url[:-2]}/99 {refused}; `bot run` goes on posting" in bot("--config", config,
                                                                                          "status").out
    checked = bot("--config", config, "check", "--json")
    assert checked.code == 1 and checked.json["broker"]["level"] == "missing"
    assert checked.json["broker"]["detail"].startswith(f"{redis_server.url[:-2]}/99 {refused}; `bot run` would post")

    with_broker(redis_server.url)  # it answers; no worker takes either queue yet
    broker = bot("--config", config, "check", "--json").json["broker"]
    assert (broker["level"], broker["detail"], broker["next"]) == (
        "note", f"{redis_server.url} answers, but no running `bot worker` takes queue refill or train: those tasks "
                "wait until one does",
        "bot worker --queues refill,train (on any host that reaches the database and the broker)")
    now = utcnow()
    with store.session() as s:
        s.add(Worker(name=process_owner(), queues="train,refill", concurrency=1, protocol=TASK_PROTOCOL,
                     started_at=now, heartbeat_at=now))
    broker = bot("--config", config, "check", "--json").json["broker"]
    assert (broker["level"], broker["detail"]) == ("ok", f"{redis_server.url} answers; 1 worker running")

    with_broker("redis://:secret@127.0.0.1:6379/abc")
    assert bot("worker").err == ("Error: BOT_BROKER_URL 'redis://:***@127.0.0.1:6379/abc' names Redis database "
                                 "'abc'; Redis databases are numbers (redis://host:6379/0).\n")


def test_a_worker_needs_a_redis_broker_and_queues_it_knows(bot, monkeypatch) -> None:
    assert bot("worker").err == ("Error: `bot worker` takes its tasks from a broker, and BOT_BROKER_URL is not set; "
                                 "set it to the Redis `bot run` sends to (like redis://host:6379/0), in the "
                                 "environment or BOT_HOME/.env.\n")
    assert bot("worker", "--queues", "train,post").err == (
        "Error: --queues takes train and refill, comma-separated, not 'train,post'; for example `bot worker --queues "
        "train`.\n")
    monkeypatch.setenv("BOT_BROKER_URL", "amqp://guest@localhost//")
    from bot.cli import context

    context.settings.cache_clear()
    assert bot("worker").err == ("Error: BOT_BROKER_URL 'amqp://guest@localhost//' is not a Redis URL; write it like "
                                 "redis://host:6379/0 (or leave it unset to run every job inside `bot run`).\n")


def test_a_training_handed_out_again_after_its_version_was_swapped_in_is_not_trained_again(store,
                                                                                          tiny_model_dir) -> None:
    settings = load_settings()
    shutil.copytree(tiny_model_dir, settings.model_dir("fb"))
    header = settings.model_dir("fb") / "config.json"
    header.write_text(json.dumps({**json.loads(header.read_text()), "created_at": "2026-12-06T10:00:05+00:00"}))
    fb = BotConfig(name="fb", corpus="fb", destination="fb.jsonl")
    started = datetime(2026, 12, 6, 10, 0, 5, 400_000, tzinfo=UTC)  # the first attempt began in the same second
    assert _trained_since(store, settings, fb, started) == jobs.JobResult(
        "ok", "model 'fb' was retrained by this task's earlier attempt (its version of 10:00:05 UTC serves); not "
              "trained again")
    assert _trained_since(store, settings, fb, datetime(2026, 12, 6, 10, 0, 6, tzinfo=UTC)) is None  # older: train
