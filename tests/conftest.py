"""Fixtures: a temporary BOT_HOME for every test, stores on SQLite and PostgreSQL, and one tiny seeded model.

The store must work on PostgreSQL, so the suite finds a server: NNBOT_TEST_POSTGRES_URL names one (its maintenance
database; a test that needs it errors if it does not answer), else trust auth on 127.0.0.1:5432, database `test`,
else a throwaway server of its own when PostgreSQL's programs are installed (tests/postgres_server.py). It creates a
database of its own there and drops it at the end. With no server to be had, or NNBOT_SKIP_POSTGRES=1, those tests
skip, and so do the browser tests without Chromium; the end of the run says so, one sentence for each.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import uuid
from collections.abc import Generator, Iterator
from pathlib import Path

import pytest

from tests import postgres_server

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's start-up chatter hides test output
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

# The server the PostgreSQL tests use (its maintenance database): the named or default one until `postgres_admin_url`
# has run, then whichever it settled on, a throwaway server included (tests that cut a database off use it).
POSTGRES_ADMIN_URL = os.environ.get("NNBOT_TEST_POSTGRES_URL") or postgres_server.DEFAULT_URL
SKIP_POSTGRES = os.environ.get("NNBOT_SKIP_POSTGRES") == "1"
MACHINE_NOTES = pytest.StashKey[dict[str, str]]()  # what the suite could not use, or set up itself: one sentence each
DATA = Path(__file__).parent / "data"
TITLES = Path(__file__).resolve().parents[1] / "bot" / "data" / "hacker_news_2000.txt"

SETTINGS_PREFIXES = ("BOT_", "REDDIT_", "X_", "MASTODON_", "BLUESKY_")

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


def note(config: pytest.Config, topic: str, sentence: str) -> None:
    """Say `sentence` at the end of the run (once per topic), after pytest's short summary."""
    config.stash.setdefault(MACHINE_NOTES, {})[topic] = sentence


@pytest.hookimpl(wrapper=True, tryfirst=True)  # outermost: what follows the yield comes after pytest's own summary
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter,
                            config: pytest.Config) -> Generator[None, None, None]:
    result = yield
    for sentence in config.stash.get(MACHINE_NOTES, {}).values():
        terminalreporter.write_line(sentence, yellow=True)
    return result


@pytest.fixture(scope="session")
def postgres_admin_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The PostgreSQL server for this session: the one named, else the default one, else a throwaway one."""
    global POSTGRES_ADMIN_URL
    if SKIP_POSTGRES:
        note(request.config, "postgresql", "PostgreSQL tests skipped: NNBOT_SKIP_POSTGRES=1 is set.")
        pytest.skip("NNBOT_SKIP_POSTGRES=1")
    named = os.environ.get("NNBOT_TEST_POSTGRES_URL")
    url = named or postgres_server.DEFAULT_URL
    problem = postgres_server.why_unusable(url)
    if problem is None:
        POSTGRES_ADMIN_URL = url
        yield url
        return
    at = postgres_server.where(url)
    if named:  # the server someone asked for: testing elsewhere instead would hide that it is not there
        message = (f"PostgreSQL at {at} (NNBOT_TEST_POSTGRES_URL) cannot be used ({problem}); start it, correct the "
                   "URL, or unset NNBOT_TEST_POSTGRES_URL to let the suite find or start a server itself.")
        note(request.config, "postgresql", message)
        pytest.fail(message, pytrace=False)
    bindir = postgres_server.find_bindir()
    if bindir is None:
        note(request.config, "postgresql", f"PostgreSQL tests skipped: no server at {at} ({problem}) and no "
             "PostgreSQL programs (initdb, pg_ctl) to start one; install PostgreSQL (Debian: apt-get install "
             "postgresql) or set NNBOT_TEST_POSTGRES_URL.")
        pytest.skip(f"no PostgreSQL server at {at} and no initdb/pg_ctl to start one")
    try:
        server = postgres_server.start(bindir)
    except postgres_server.StartFailed as exc:
        note(request.config, "postgresql", f"PostgreSQL tests skipped: no server at {at} ({problem}), and a "
             f"throwaway one from {bindir} did not start ({exc}); start a server or set NNBOT_TEST_POSTGRES_URL.")
        pytest.skip(f"no PostgreSQL server at {at}, and a throwaway one did not start ({exc})")
    note(request.config, "postgresql", f"PostgreSQL tests ran on a throwaway server at 127.0.0.1:{server.port} "
         f"(from {bindir}), since none could be used at {at} ({problem}); it is stopped and removed.")
    POSTGRES_ADMIN_URL = server.url
    try:
        yield server.url
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for this test session."""
    from sqlalchemy import create_engine, text

    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    name = f"nnbot_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = admin.url.set(database=name).render_as_string(hide_password=False)
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(scope="session")
def chromium(request: pytest.FixtureRequest) -> str:
    """Chromium for the browser tests: Debian's package (Playwright's own browser download is not used)."""
    path = shutil.which("chromium")
    if path is None:
        note(request.config, "chromium", "Browser tests skipped: chromium is not on PATH; install it (Debian: "
             "apt-get install chromium) to run them.")
        pytest.skip("chromium is not installed")
    return path


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
                          "apscheduler_jobs, workers, serving_models, model_versions, alembic_version CASCADE"))
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
