"""Fixtures: a temporary BOT_HOME for every test, stores on SQLite and PostgreSQL, and one tiny seeded model.

PostgreSQL is required (the store must work on it): NNBOT_TEST_POSTGRES_URL names the server's maintenance
database (default: trust auth on 127.0.0.1:5432, database `test`); the suite creates a database of its own
there and drops it at the end. NNBOT_SKIP_POSTGRES=1 skips those tests where no server can be had.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter hides test output
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

POSTGRES_ADMIN_URL = os.environ.get("NNBOT_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
SKIP_POSTGRES = os.environ.get("NNBOT_SKIP_POSTGRES") == "1"
DATA = Path(__file__).parent / "data"
TITLES = Path(__file__).resolve().parents[1] / "bot" / "data" / "hacker_news_2000.txt"

SETTINGS_PREFIXES = ("BOT_", "REDDIT_", "X_")

pytest_plugins = ("tests.fakes.fixtures",)  # fake_reddit, reddit_app, fake_x: the local fake APIs


# A suite started as a background job (`cmd &` in a script, nohup) inherits SIGINT ignored, and Python then installs
# no KeyboardInterrupt handler; the Ctrl-C tests need the one an interactive start has.
signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def bot_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own BOT_HOME and no credentials from the environment of whoever runs the suite."""
    for name in list(os.environ):
        if name.startswith(SETTINGS_PREFIXES):
            monkeypatch.delenv(name)
    home = tmp_path / "home"
    monkeypatch.setenv("BOT_HOME", str(home))
    monkeypatch.setenv("BOT_SLEEP_SCALE", "0")
    monkeypatch.setenv("BOT_BASE_MODEL", "none")  # from scratch unless a test names a base: tiny seeded models
    from bot.cli import context

    for cached in (context.settings, context.bots, context.store):
        cached.cache_clear()
    return home


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    if SKIP_POSTGRES:
        pytest.skip("NNBOT_SKIP_POSTGRES=1")
    from sqlalchemy import create_engine, text
    from sqlalchemy.exc import OperationalError

    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"nnbot_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except OperationalError as exc:
        pytest.fail(f"PostgreSQL is needed at {POSTGRES_ADMIN_URL} ({exc.orig}); start it, or set "
                    "NNBOT_TEST_POSTGRES_URL, or NNBOT_SKIP_POSTGRES=1 to skip those tests.")
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """Each store test runs on SQLite and on PostgreSQL, each time from an empty schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'test.db'}"
        return
    url = request.getfixturevalue("postgres_url")
    yield url
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS candidates, documents, corpora, bot_states, job_runs, service_lease, "
                          "apscheduler_jobs, alembic_version CASCADE"))
    engine.dispose()


@pytest.fixture
def store(database_url: str):  # type: ignore[no-untyped-def]
    from bot.store import open_store

    s = open_store(database_url)
    yield s
    s.close()


@pytest.fixture(scope="session")
def titles() -> list[str]:
    """The bundled Hacker News titles: a real text for tests."""
    return [line.strip() for line in TITLES.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, titles: list[str]) -> Path:
    """A tiny seeded model trained once on the titles; tests copy it, never change it."""
    from models.config import preset
    from models.trainer import train_model

    path = tmp_path_factory.mktemp("models") / "tiny"
    train_model(titles, path, preset("tiny").replace(epochs=3), info={"corpus": "titles"})
    return path


@pytest.fixture
def tiny_model(tiny_model_dir: Path):  # type: ignore[no-untyped-def]
    from models.artifact import load_model

    return load_model(tiny_model_dir)


class Run:
    """What one `bot` command did: its exit code, standard output and standard error."""

    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def json(self):  # type: ignore[no-untyped-def]
        return json.loads(self.out)


@pytest.fixture
def bot(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Run `bot ARGS…` in-process through the real entry point."""
    from bot.cli import main

    def run(*args: str) -> Run:
        monkeypatch.setattr(sys, "argv", ["bot", *args])
        try:
            main()
            code = 0
        except SystemExit as exit_:
            code = exit_.code if isinstance(exit_.code, int) else 1
        captured = capsys.readouterr()
        return Run(code, captured.out, captured.err)

    return run
