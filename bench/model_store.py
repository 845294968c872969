"""Models through the database (bot.model_store): publish and fetch time and peak memory, SQLite and PostgreSQL.

Two models made from the shipped base (bot/data/base, its five model files; its novelty index is not part of a
model): `base-f16`, the base as shipped (16 MB of float16 weights), and `base-f32`, its weights in float32 as every
trained model saves them (32 MB). Each operation runs in a fresh process; "peak above start" is the process's peak
resident memory during the operation (the kernel's VmHWM, reset just before it) less its resident memory just before
it (interpreter, NumPy, SQLAlchemy and the driver loaded, the store open).

  publish   pack the folder, store the version, move the pointer (new content each time)
  fetch     one small query, then read in slices, hash, unpack, load-check, swap: into an empty BOT_HOME
  load      for comparison: `registry.load` of a model on disk, as every load costs (the fetch's load-check is one)
  check     `registry.load`'s question on a host that has the version: the one SELECT, without the load itself

    python bench/model_store.py --json bench/results/model_store.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import machine, today, write_result  # noqa: E402

POSTGRES_ADMIN = os.environ.get("NNBOT_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
BASE = Path(__file__).resolve().parents[1] / "bot" / "data" / "base"
MODEL_FILES = ("config.json", "tokenizer.json", "weights.npz", "metrics.json", "versions.json")
REPEATS = 3  # of each operation; the median is reported
CHECKS = 20  # cheap checks timed in one process
OPERATIONS = ("publish", "fetch", "load", "check")


def rss_mb() -> float:
    """This process's resident memory now, MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def reset_peak() -> None:
    """Start the kernel's record of this process's peak resident memory (VmHWM) again from now (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def peak_rss_mb() -> float:
    """This process's peak resident memory since `reset_peak`, MB."""
    line = next(x for x in Path("/proc/self/status").read_text().splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def make_models(root: Path) -> dict[str, Path]:
    import numpy as np

    models = {}
    for name, dtype in (("base-f16", None), ("base-f32", np.float32)):
        folder = root / name
        folder.mkdir()
        for file in MODEL_FILES:
            shutil.copyfile(BASE / file, folder / file)
        if dtype is not None:
            with np.load(folder / "weights.npz") as weights:
                np.savez(folder / "weights.npz", **{k: weights[k].astype(dtype) for k in weights.files})
        models[name] = folder
    return models


# ---- one operation, in its own process


def one(operation: str, url: str, model: str, folder: Path, home: Path) -> dict[str, float]:
    os.environ["BOT_HOME"] = str(home)
    from bot import model_store, registry
    from bot.config import load_settings
    from bot.store import open_store

    settings, store = load_settings(), open_store(url)
    model_store.serving(store, model)  # the connection made and the driver warm before measuring
    reset_peak()
    start_rss = rss_mb()
    started = time.perf_counter()
    if operation == "publish":
        metrics = folder / "metrics.json"  # new content each time: a real store, not "already stored"
        metrics.write_text(json.dumps({**json.loads(metrics.read_text()), "run": uuid.uuid4().hex}))
        started = time.perf_counter()
        published = model_store.publish(store, model, folder, replaces=model_store.serving(store, model))
        assert published.serving
    elif operation == "fetch":
        assert model_store.fetch_serving(store, settings, model) is not None
    elif operation == "load":  # in a BOT_HOME the fetch filled
        registry.load(settings, model)
    elif operation == "check":  # likewise
        for _ in range(CHECKS):
            assert model_store.fetch_serving(store, settings, model) is None
    seconds = time.perf_counter() - started
    peak = peak_rss_mb() - start_rss
    if operation == "check":
        seconds /= CHECKS
    if operation == "fetch":
        registry.load(settings, model, store=store)  # what was fetched loads, without another fetch
    store.close()
    return {"seconds": seconds, "start_mb": start_rss, "peak_above_start_mb": peak}


def run_one(operation: str, url: str, model: str, folder: Path, home: Path) -> dict[str, float]:
    out = subprocess.run([sys.executable, __file__, "--one", operation, url, model, str(folder), str(home)],
                         check=True, capture_output=True, text=True)
    return json.loads(out.stdout.splitlines()[-1])


# ---- the whole run


def measure(url: str, models: dict[str, Path], root: Path) -> dict[str, dict[str, object]]:
    results: dict[str, dict[str, object]] = {}
    for name, folder in models.items():
        figures: dict[str, object] = {"packed_bytes": None}
        runs: dict[str, list[dict[str, float]]] = {operation: [] for operation in OPERATIONS}
        for _ in range(REPEATS):
            home = root / f"home-{uuid.uuid4().hex[:8]}"  # another host, each time: empty, then holding the model
            for operation in OPERATIONS:
                runs[operation].append(run_one(operation, url, name, folder, home))
            shutil.rmtree(home, ignore_errors=True)
        for operation in OPERATIONS:
            figures[operation] = {
                "seconds": round(statistics.median(r["seconds"] for r in runs[operation]), 4),
                "peak_above_start_mb": round(statistics.median(r["peak_above_start_mb"] for r in runs[operation]), 1),
                "start_mb": round(statistics.median(r["start_mb"] for r in runs[operation]), 1)}
        from bot.model_store import pack

        figures["packed_bytes"] = pack(folder).size
        results[name] = figures
        print(name, json.dumps(figures), file=sys.stderr)
    return results


def postgres_database() -> tuple[str, str] | None:
    """A new database on the benchmark's server: (its URL, its name); None where no server answers."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    name = f"nnbot_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as error:
        print(f"PostgreSQL skipped: {error.orig}", file=sys.stderr)
        return None
    finally:
        admin.dispose()
    return admin.url.set(database=name).render_as_string(hide_password=False), name


def drop_postgres(name: str) -> None:
    from sqlalchemy import create_engine, text

    admin = create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--one":
        operation, url, model, folder, home = sys.argv[2:7]
        print(json.dumps(one(operation, url, model, Path(folder), Path(home))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path, help="Write the result here too.")
    parser.add_argument("--skip", nargs="*", default=[], choices=["sqlite", "postgresql"])
    args = parser.parse_args()
    result: dict[str, object] = {"date": today(), "machine": machine(), "repeats": REPEATS,
                                 "chunk_bytes": None, "databases": {}}
    from bot.model_store import CHUNK_BYTES

    result["chunk_bytes"] = CHUNK_BYTES
    with tempfile.TemporaryDirectory() as temporary:
        root = Path(temporary)
        models = make_models(root)
        if "sqlite" not in args.skip:
            result["databases"]["sqlite"] = measure(f"sqlite:///{root / 'bench.db'}", models, root)  # type: ignore
        if "postgresql" not in args.skip and (made := postgres_database()) is not None:
            url, name = made
            try:
                result["databases"]["postgresql"] = measure(url, models, root)  # type: ignore[index]
            finally:
                drop_postgres(name)
    write_result(result, args.json)


if __name__ == "__main__":
    main()
