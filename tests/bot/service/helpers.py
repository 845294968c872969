"""Shared by the service tests: bots.toml on disk, candidates in the queue, a deadline-polling wait."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

from bot import queue
from bot.config import BotConfig, load_bots_file
from bot.store import Store
from bot.store.schema import Candidate
from models.sampler import Sample

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[3]
DEADLINE = 60.0  # seconds a condition may take on a slow, shared machine


def write_bots(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def file_bot(name: str = "fb", *, destination: str = "posts.jsonl", mode: str = "review", daily_cap: int = 1000,
             extra: str = "", schedule: str = "") -> str:
    """A `[[bot]]` table for a bot that posts to a file."""
    return (f'[[bot]]\nname = "{name}"\ncorpus = "{name}"\nplatform = "file"\ndestination = "{destination}"\n'
            f'mode = "{mode}"\ndaily_cap = {daily_cap}\n{extra}\n' + (f"[bot.schedule]\n{schedule}\n" if schedule else ""))


def bot_config(path: Path, name: str) -> BotConfig:
    bot = load_bots_file(path).get(name)
    assert bot is not None
    return bot


def add_candidates(store: Store, bot: str, texts: Sequence[str], *, approve: bool = True,
                   logprobs: Sequence[float] | None = None, tokens: int = 5) -> list[int]:
    """Queue `texts` for `bot` (approved, in this order, unless `approve` is False)."""
    record = queue.SamplingRecord(model=bot, temperature=0.8, top_k=0, top_p=1.0, prefix=None, seed=None)
    scores = logprobs or [-10.0] * len(texts)
    with store.session() as session:
        rows = queue.enqueue(session, bot, [Sample(t, lp, tokens, True) for t, lp in zip(texts, scores)], record)
        ids = [r.id for r in rows]
    if approve:
        for id_ in ids:  # one at a time, so the approval order is the list's order
            with store.session() as session:
                queue.approve(session, [id_])
    return ids


def wait_for(condition: Callable[[], T], *, what: str, deadline: float = DEADLINE, every: float = 0.05) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline:.0f}s waiting for {what}")
        time.sleep(every)


def python(*args: str, env: dict[str, str] | None = None, **popen: object) -> subprocess.Popen[str]:
    """A real Python process (`python ARGS…`: "-c", CODE or "-m", "bot.cli", …) with this repository importable and
    `env` added to the environment; its output is text, captured unless `popen` says otherwise."""
    options: dict[str, object] = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, **popen}
    return subprocess.Popen([sys.executable, *args], env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            **options)  # type: ignore[call-overload]


def row(store: Store, candidate_id: int) -> Candidate:
    """The candidate as the database holds it now."""
    with store.session() as s:
        return s.get(Candidate, candidate_id)  # type: ignore[return-value]


def kill_while_posting(store: Store, candidate_id: int, config: Path, bot: str, *, reached: Callable[[], bool],
                       release: threading.Event, platform: str) -> None:
    """`bot post --bot BOT` in a process of its own, SIGKILLed once its request `reached` the platform (which holds
    its answer until `release`): the candidate is left `posting`, as a process that died mid-call leaves it."""
    process = python("-m", "bot.cli", "--config", str(config), "post", "--bot", bot)
    try:
        wait_for(reached, what=f"the post to reach {platform}")
        assert row(store, candidate_id).status == "posting"
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=60)
    finally:
        release.set()
    assert row(store, candidate_id).status == "posting"  # nobody recorded anything: the process died mid-call
