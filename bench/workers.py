"""Workers (issue 32): 20 bots' retrainings through Redis, with one `bot worker` and with two, on this machine.

A real `redis-server` on a free port, a SQLite database (or --database-url), 20 file bots whose corpora are
overlapping 400-title slices of the bundled Hacker News titles, each with a tiny model to start from, and a real
`bot run` with BOT_BROKER_URL (its first refills go to the workers and are waited for before anything is timed).
Then, for 1 and for 2 workers (`bot worker --queues train,refill`, fresh processes each time): the 20 train tasks are
dispatched at once through `bot.service.dispatch.dispatch`, the scheduler's own code path, and timed until the last
row in `job_runs` is finished. Reported per run: the wall time, each training's seconds and held-out perplexity, the
`bot run` process's CPU while the workers train, and the machine's load average before it started (the ratio of the
two wall times means little when the cores are busy with something else).

    python bench/workers.py --json bench/results/workers.json
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, today, write_result

ROOT = Path(__file__).resolve().parents[1]
TITLES = ROOT / "bot" / "data" / "hacker_news_2000.txt"
BOTS = 20
SLICE = 400  # titles per bot's corpus (overlapping slices): a tiny model's 5 epochs take a few seconds on it
MAX_MINUTES = 0.5  # the training's time limit: above what 5 tiny epochs take, so each training does the same work
WORKER_COUNTS = (1, 2)
DEADLINE = 1800.0  # seconds any phase may take before the bench gives up
PERPLEXITY = re.compile(r"held-out perplexity ([0-9.]+) after")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(condition, what: str, deadline: float = DEADLINE):  # type: ignore[no-untyped-def]
    end = time.monotonic() + deadline
    while not (value := condition()):
        if time.monotonic() > end:
            raise SystemExit(f"gave up after {deadline:.0f} s waiting for {what}")
        time.sleep(0.2)
    return value


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (/proc/PID/stat, clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bots_toml(names: list[str]) -> str:
    return "".join(f'[[bot]]\nname = "{n}"\ncorpus = "{n}"\nplatform = "file"\ndestination = "{n}.jsonl"\n'
                   f'queue_size = 3\n[bot.schedule]\npost = "1m"\nrefill = "1h"\nretrain = "7d"\n'
                   f'[bot.training]\npreset = "tiny"\nmax_minutes = {MAX_MINUTES}\nbase = false\n'
                   f'[bot.filters]\nnovelty = false\nmin_words = 1\n\n' for n in names)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--json", type=Path)
    parser.add_argument("--database-url", help="default: a SQLite file in a temporary folder")
    args = parser.parse_args()
    redis_server = shutil.which("redis-server")
    if redis_server is None:
        raise SystemExit("redis-server is not on PATH; install it (Debian: apt-get install redis-server).")
    work = Path(tempfile.mkdtemp(prefix="nnbot-workers-"))
    port = free_port()
    env = {**os.environ, "BOT_HOME": str(work / "home"), "BOT_BASE_MODEL": "none", "PYTHONPATH": str(ROOT),
           "BOT_DATABASE_URL": args.database_url or f"sqlite:///{work / 'bot.db'}",
           "BOT_BROKER_URL": f"redis://127.0.0.1:{port}/0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    os.environ.update(env)
    processes: list[subprocess.Popen[bytes]] = []

    def start(*argv: str, log: str) -> subprocess.Popen[bytes]:
        with open(work / log, "wb") as out:
            process = subprocess.Popen([sys.executable, *argv], env=env, stdout=out, stderr=subprocess.STDOUT,
                                       start_new_session=True)
        processes.append(process)
        return process

    load_before = os.getloadavg()
    try:
        processes.append(subprocess.Popen([redis_server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                           "--appendonly", "no", "--dir", str(work)], stdout=subprocess.DEVNULL))
        result = run(work, start, processes)
    finally:
        for process in processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL) if process.pid != processes[0].pid else process.kill()
                process.wait()
        shutil.rmtree(work, ignore_errors=True)
    ratio = result["runs"][0]["wall_seconds"] / result["runs"][1]["wall_seconds"]
    write_result({"bench": "workers", "date": today(), "machine": machine(), "load_average_before": load_before,
                  "bots": BOTS, "corpus_titles_per_bot": SLICE, "preset": "tiny", "max_minutes": MAX_MINUTES,
                  "database": "postgresql" if args.database_url else "sqlite", **result,
                  "wall_ratio_1_to_2_workers": round(ratio, 2)}, args.json)


def run(work: Path, start, processes) -> dict[str, object]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from bot.config import load_bots_file, load_settings
    from bot.corpus import add_documents
    from bot.processes import process_owner
    from bot.service import jobs
    from bot.service.dispatch import Dispatcher
    from bot.store import open_store
    from bot.store.schema import JobRun, Worker
    from models.config import preset
    from models.trainer import train_model
    from scrapers.documents import Document

    titles = [t.strip() for t in TITLES.read_text(encoding="utf-8").splitlines() if t.strip()]
    names = [f"b{i:02d}" for i in range(BOTS)]
    settings = load_settings()
    store = open_store(settings.database_url)
    first = settings.models_dir / "first"
    train_model(titles, first, preset("tiny").replace(epochs=1), info={"corpus": "titles"})
    with store.session() as s:
        for i, name in enumerate(names):
            start_at = i * (len(titles) - SLICE) // (BOTS - 1)
            add_documents(s, name, [Document(source="file", external_id=str(n), text=t)
                                    for n, t in enumerate(titles[start_at:start_at + SLICE])])
    for name in names:
        shutil.copytree(first, settings.model_dir(name))
    config = work / "bots.toml"
    config.write_text(bots_toml(names), encoding="utf-8")
    bots = load_bots_file(config)

    def finished(job: str) -> list[JobRun]:
        with store.session() as s:
            return list(s.scalars(select(JobRun).where(JobRun.job == job, JobRun.outcome.is_not(None))))

    def workers_up(count: int) -> bool:
        with store.session() as s:
            return len(s.scalars(select(Worker).where(Worker.stopped_at.is_(None))).all()) >= count

    runs: list[dict[str, object]] = []
    scheduler = None
    for count in WORKER_COUNTS:
        workers = [start("-m", "bot.cli", "worker", "--queues", "train,refill", log=f"worker-{count}-{n}.log")
                   for n in range(count)]
        wait_for(lambda: workers_up(count), f"{count} workers to start")
        if scheduler is None:  # its first refills (one per bot, at once) go to the first worker; not timed
            scheduler = start("-m", "bot.cli", "--config", str(config), "run", log="run.log")
            wait_for(lambda: len(finished("refill")) >= BOTS, "the scheduler's first refills")
        runtime = jobs.Runtime(store=store, settings=load_settings(), bots=bots, owner=process_owner(),
                               reschedule=lambda job, when: None, dispatch=Dispatcher(load_settings()))
        before = {r.id for r in finished("train")}
        cpu0, began = cpu_seconds(scheduler.pid), time.monotonic()
        for name in names:
            assert jobs.run_job(runtime, name, "train").outcome == "sent"
        done = wait_for(lambda: (rows := [r for r in finished("train") if r.id not in before])
                        and len(rows) == BOTS and rows, f"{BOTS} trainings on {count} workers")
        wall = time.monotonic() - began
        scheduler_cpu = cpu_seconds(scheduler.pid) - cpu0
        seconds = [(r.finished_at - r.started_at).total_seconds() for r in done]
        perplexities = [float(m[1]) for r in done if (m := PERPLEXITY.search(r.message or ""))]
        runs.append({"workers": count, "wall_seconds": round(wall, 1),
                     "outcomes": sorted({r.outcome for r in done}),
                     "training_seconds_mean": round(statistics.mean(seconds), 2),
                     "training_seconds_max": round(max(seconds), 2),
                     "valid_perplexity_mean": round(statistics.mean(perplexities), 1) if perplexities else None,
                     "scheduler_cpu_seconds": round(scheduler_cpu, 2),
                     "scheduler_cpu_percent": round(100 * scheduler_cpu / wall, 2)})
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
            worker.wait(timeout=120)
    store.close()
    return {"runs": runs}


if __name__ == "__main__":
    main()
