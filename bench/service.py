"""The bot service at scale: posting cycles with racing workers, an idle `bot run` with 100 bots, one refill.

1. cycles: 4 worker processes race over 10,000 approved candidates of 10 file bots (1,000 each) on one database,
   each cycle being `bot.posting.post_next`: claim (its own committed transaction) -> append to the posts file with
   fsync -> record. Reported: cycles per second over the whole race, and doubles (texts posted twice, candidates
   not posted exactly once), on SQLite and PostgreSQL.
2. idle: `bot run` with 100 bots configured (every job scheduled, their first refills done), measured over a
   quiet minute: resident memory and CPU seconds per minute.
3. refill: one refill job filling an empty queue with 100 candidates from a `small` model trained one epoch on
   the bundled Hacker News titles (sampling and filter cost do not depend on how well it is trained).
4. platforms: the same race as 1 (4 workers, SQLite) through the Mastodon and Bluesky publishers, against the local
   fake servers the tests use (tests/fakes: the real Mastodon.py and atproto clients over HTTP on 127.0.0.1), 2 bots
   of 150 candidates each: posts per second, the statuses or records the server holds, doubles, and logins.

    python bench/service.py --json bench/results/service.json
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, today, write_result

POSTGRES_ADMIN = os.environ.get("NNBOT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
WORKERS = 4
BOTS = 10
PER_BOT = 1_000  # approved candidates per bot: 10,000 in all
IDLE_BOTS = 100
IDLE_SECONDS = 60.0  # the quiet minute
REFILL_SIZE = 100


PLATFORM_BOTS = 2
PLATFORM_PER_BOT = 150  # approved candidates per bot on each platform: 300 in all


def bots_toml(names: list[str], *, destination: str | None, schedule: str = "", platform: str = "file") -> str:
    where = f'destination = "{destination}"\n' if destination else ""
    return "".join(f'[[bot]]\nname = "{n}"\ncorpus = "{n}"\nplatform = "{platform}"\n{where}'
                   f'daily_cap = 1000\nqueue_size = {REFILL_SIZE}\n{schedule}\n' for n in names)


# ---- 1. cycles


def _worker(url: str, config: str, home: str, offset: int, start: multiprocessing.synchronize.Event,
            done: multiprocessing.Queue) -> None:
    os.environ["BOT_HOME"] = home
    from bot.config import load_bots_file, load_settings
    from bot.posting import post_next
    from bot.publishers import open_publisher
    from bot.store import open_store

    store, settings = open_store(url), load_settings()
    bots = load_bots_file(Path(config)).bot
    bots = bots[offset:] + bots[:offset]  # each worker starts at another bot: they meet everywhere
    publishers = {b.name: open_publisher(settings, b) for b in bots}
    start.wait()
    posted, active = 0, list(bots)
    while active:
        for bot in list(active):
            if post_next(store, settings, bot, publisher=publishers[bot.name]).posted:
                posted += 1
            else:
                active.remove(bot)
    done.put(posted)
    store.close()


def _race(url: str, config: Path, home: Path, names: list[str], per_bot: int) -> tuple[float, list[int]]:
    """Approve `per_bot` candidates for each bot, then let WORKERS processes post them all: (seconds, posts each)."""
    from sqlalchemy import insert

    from bot.store import open_store
    from bot.store.schema import Candidate, Status, utcnow

    store = open_store(url)
    now = utcnow()
    rows = [{"bot": n, "model": n, "text": f"{n} candidate {i}", "sampled_text": f"{n} candidate {i}",
             "temperature": 0.8, "top_k": 0, "top_p": 1.0, "logprob": -10.0, "tokens": 5, "status": Status.APPROVED,
             "created_at": now, "updated_at": now, "approved_at": now, "attempts": 0}
            for n in names for i in range(per_bot)]
    with store.session() as session:
        session.execute(insert(Candidate.__table__), rows)
    store.close()
    context = multiprocessing.get_context("spawn")
    start, done = context.Event(), context.Queue()
    workers = [context.Process(target=_worker, args=(url, str(config), str(home), i * len(names) // WORKERS, start,
                                                     done))
               for i in range(WORKERS)]
    for w in workers:
        w.start()
    time.sleep(5)  # let every worker import and connect before the race starts
    began = time.perf_counter()
    start.set()
    counts = [done.get(timeout=3600) for _ in workers]
    seconds = time.perf_counter() - began
    for w in workers:
        w.join()
    return seconds, counts


def cycles(url: str, label: str) -> dict[str, object]:
    from sqlalchemy import func, select

    from bot.store import open_store
    from bot.store.schema import Candidate

    home = Path(tempfile.mkdtemp(prefix="nnbot-bench-"))
    names = [f"bot{i:02d}" for i in range(BOTS)]
    config = home / "bots.toml"
    config.write_text(bots_toml(names, destination="posts.jsonl"))
    seconds, counts = _race(url, config, home, names, PER_BOT)
    store = open_store(url)
    lines = (home / "posts.jsonl").read_text().splitlines()
    import json

    texts = [json.loads(line)["text"] for line in lines]
    with store.session() as session:
        by_status = dict(session.execute(select(Candidate.status, func.count()).group_by(Candidate.status)).all())
        remote = session.scalar(select(func.count(func.distinct(Candidate.remote_id))))
    store.close()
    shutil.rmtree(home)
    total = BOTS * PER_BOT
    result = {"database": label, "workers": WORKERS, "candidates": total, "seconds": round(seconds, 2),
              "cycles_per_second": round(total / seconds, 1), "posted_per_worker": counts,
              "lines_in_file": len(lines), "distinct_texts_posted": len(set(texts)),
              "statuses": by_status, "distinct_remote_ids": remote,
              "doubles": len(texts) - len(set(texts)) + abs(sum(counts) - total)}
    print(f"{label}: {result['cycles_per_second']} cycles/s, doubles {result['doubles']}", file=sys.stderr)
    return result


def platforms() -> list[dict[str, object]]:
    """The race through the Mastodon and Bluesky publishers, against the tests' fake servers on 127.0.0.1."""
    from sqlalchemy import func, select

    from bot.store import open_store
    from bot.store.schema import Candidate
    from tests.fakes import bluesky, mastodon

    results = []
    for platform in ("mastodon", "bluesky"):
        home = Path(tempfile.mkdtemp(prefix="nnbot-bench-"))
        names = [f"{platform[:2]}{i}" for i in range(PLATFORM_BOTS)]
        config = home / "bots.toml"
        config.write_text(bots_toml(names, destination=None, platform=platform))
        url = f"sqlite:///{home / 'bot.db'}"
        saved = dict(os.environ)
        with (mastodon.FakeMastodon() if platform == "mastodon" else bluesky.FakeBluesky()) as fake:
            if platform == "mastodon":
                fake.api_limit = fake.statuses_limit = 10 ** 6  # the race, not the instance's limits, is measured
                os.environ.update(MASTODON_API_BASE_URL=fake.url, MASTODON_ACCESS_TOKEN=mastodon.TOKEN)
            else:
                os.environ.update(BLUESKY_URL=fake.url, BLUESKY_HANDLE=bluesky.ACCOUNT,
                                  BLUESKY_APP_PASSWORD=bluesky.APP_PASSWORD)
            try:
                seconds, counts = _race(url, config, home, names, PLATFORM_PER_BOT)
            finally:
                os.environ.clear()
                os.environ.update(saved)
            made = [p["text"] for p in fake.posted] if platform == "mastodon" else [r.value["text"] for r in fake.created]
            posts = len(fake.post_requests()) if platform == "mastodon" else fake.create_requests()
            logins = None if platform == "mastodon" else fake.login_requests()
        store = open_store(url)
        with store.session() as session:
            by_status = dict(session.execute(select(Candidate.status, func.count()).group_by(Candidate.status)).all())
            remote = session.scalar(select(func.count(func.distinct(Candidate.remote_id))))
        store.close()
        shutil.rmtree(home)
        total = PLATFORM_BOTS * PLATFORM_PER_BOT
        result = {"platform": platform, "database": "sqlite", "workers": WORKERS, "candidates": total,
                  "seconds": round(seconds, 2), "posts_per_second": round(total / seconds, 1),
                  "posted_per_worker": counts, "held_by_server": len(made), "post_requests": posts,
                  "distinct_texts_held": len(set(made)), "statuses": by_status, "distinct_remote_ids": remote,
                  "logins": logins, "doubles": len(made) - len(set(made)) + abs(sum(counts) - total)}
        print(f"{platform}: {result['posts_per_second']} posts/s, doubles {result['doubles']}", file=sys.stderr)
        results.append(result)
    return results


def postgres_database() -> tuple[str, callable]:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"nnbot_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return admin.url.set(database=name).render_as_string(hide_password=False), drop


# ---- 2. idle


def _proc_stat(pid: int) -> tuple[float, int]:
    """(CPU seconds used, resident MB) of `pid`."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    rss = next(int(line.split()[1]) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
               if line.startswith("VmRSS:"))
    return cpu, round(rss / 1024)


def idle() -> dict[str, object]:
    from sqlalchemy import func, select

    from bot.store import open_store
    from bot.store.schema import JobRun

    home = Path(tempfile.mkdtemp(prefix="nnbot-bench-"))
    names = [f"bot{i:03d}" for i in range(IDLE_BOTS)]
    config = home / "bots.toml"
    config.write_text(bots_toml(names, destination="posts.jsonl",
                                schedule='[bot.schedule]\npost = "4h"\nrefill = "1h"\nscrape = "1d"\n'))
    env = {**os.environ, "BOT_HOME": str(home), "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config), "run"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store = open_store(f"sqlite:///{home / 'bot.db'}")
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # the first refills run at start (no model yet: each ends in an error)
        with store.session() as session:
            if (session.scalar(select(func.count()).select_from(JobRun).where(JobRun.finished_at.is_not(None)))
                    or 0) >= IDLE_BOTS:
                break
        time.sleep(0.5)
    time.sleep(5)
    cpu0, _ = _proc_stat(process.pid)
    time.sleep(IDLE_SECONDS)
    cpu1, rss1 = _proc_stat(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=120)
    store.close()
    shutil.rmtree(home)
    result = {"bots": IDLE_BOTS, "jobs": IDLE_BOTS * 3, "resident_mb": rss1,
              "cpu_seconds_per_minute": round((cpu1 - cpu0) * 60 / IDLE_SECONDS, 3),
              "cpu_percent_of_one_core": round((cpu1 - cpu0) * 100 / IDLE_SECONDS, 2), "exit_code": process.returncode}
    print(f"idle: {result}", file=sys.stderr)
    return result


# ---- 3. refill


def refill() -> dict[str, object]:
    from bot.config import load_bots_file, load_settings
    from bot.corpus import add_documents
    from bot.demo import demo_data_path
    from bot.service import jobs
    from bot.store import open_store
    from bot.training import train
    from scrapers.files import read_documents

    home = Path(tempfile.mkdtemp(prefix="nnbot-bench-"))
    os.environ["BOT_HOME"] = str(home)
    (home / "bots.toml").write_text(bots_toml(["hn"], destination="posts.jsonl"))
    store, settings = open_store(f"sqlite:///{home / 'bot.db'}"), load_settings()
    with store.session() as session:
        add_documents(session, "hn", read_documents(demo_data_path(), format="txt"))
    train(store, settings, "hn", "hn", "small", overrides={"epochs": 1})
    bots = load_bots_file(home / "bots.toml")
    runtime = jobs.Runtime(store=store, settings=settings, bots=bots, owner="bench", reschedule=lambda *a: None)
    jobs.refill_queue(runtime, bots.bot[0])  # warm: the novelty index is built once per corpus and cached
    from sqlalchemy import delete

    from bot.store.schema import Candidate

    with store.session() as session:
        session.execute(delete(Candidate))
    began = time.perf_counter()
    outcome = jobs.refill_queue(runtime, bots.bot[0])
    seconds = time.perf_counter() - began
    store.close()
    shutil.rmtree(home)
    result = {"queue_size": REFILL_SIZE, "seconds": round(seconds, 2), "message": outcome.message}
    print(f"refill: {result}", file=sys.stderr)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--skip", nargs="*", default=[],
                        choices=["sqlite", "postgresql", "idle", "refill", "platforms"])
    args = parser.parse_args()
    result: dict[str, object] = {"benchmark": "service", "date": today(), "machine": machine(), "cycles": []}
    if "sqlite" not in args.skip:
        directory = Path(tempfile.mkdtemp(prefix="nnbot-bench-db-"))
        result["cycles"].append(cycles(f"sqlite:///{directory / 'bot.db'}", "sqlite"))
        shutil.rmtree(directory)
    if "postgresql" not in args.skip:
        url, drop = postgres_database()
        try:
            result["cycles"].append(cycles(url, "postgresql"))
        finally:
            drop()
    if "idle" not in args.skip:
        result["idle"] = idle()
    if "refill" not in args.skip:
        result["refill"] = refill()
    if "platforms" not in args.skip:
        result["platforms"] = platforms()
    write_result(result, args.json)


if __name__ == "__main__":
    main()
