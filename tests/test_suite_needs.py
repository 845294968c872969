"""What the suite needs from the machine: a PostgreSQL server it finds or starts, and one closing sentence per lack.

Each case runs a small pytest of its own in a child process, as if the machine had no server at the default address
(the child's `postgres_server.DEFAULT_URL` points at a port where nothing listens) and, for one case, none of
PostgreSQL's programs or Chromium either (an empty PATH and no install folders to search).
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests import postgres_server

ROOT = Path(__file__).resolve().parents[1]
SMOKE = "tests/test_suite_needs.py::test_the_suites_postgresql_database_answers"
BROWSER = "tests/browser/test_review_page.py"
CHILD_SECONDS = 300  # a child run: pytest's start-up, and initdb where it starts a server
CHILD = """
import sys
import pytest
from tests import postgres_server
postgres_server.DEFAULT_URL = sys.argv[1]
if sys.argv[2] == "hide-programs":
    postgres_server.SERVER_DIRS = ()
sys.exit(pytest.main(sys.argv[3:]))
"""


def test_the_suites_postgresql_database_answers(postgres_url: str) -> None:
    engine = create_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.scalar(text("SELECT current_database()")).startswith("nnbot_test_")
    engine.dispose()


def dead_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    return f"postgresql+psycopg://postgres@127.0.0.1:{port}/test"


def run_suite(tmp_path: Path, *tests: str, default_url: str, hide_programs: bool = False,
              env: dict[str, str] | None = None) -> tuple[int, list[str]]:
    """A child pytest run of `tests`: its exit status and the lines it printed."""
    child_env = {name: value for name, value in os.environ.items()
                 if name not in ("NNBOT_TEST_POSTGRES_URL", "NNBOT_SKIP_POSTGRES", "PYTEST_ADDOPTS")}
    if hide_programs:
        (tmp_path / "empty-path").mkdir()
        child_env["PATH"] = str(tmp_path / "empty-path")
    child_env.update(env or {})
    done = subprocess.run([sys.executable, "-c", CHILD, default_url, "hide-programs" if hide_programs else "-",
                           "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'basetemp'}", *tests],
                          cwd=ROOT, env=child_env, capture_output=True, text=True, timeout=CHILD_SECONDS)
    return done.returncode, (done.stdout + done.stderr).splitlines()


@pytest.mark.skipif(os.environ.get("NNBOT_SKIP_POSTGRES") == "1", reason="NNBOT_SKIP_POSTGRES=1")
def test_with_no_server_at_the_default_address_the_suite_starts_one_and_removes_it(tmp_path: Path) -> None:
    bindir = postgres_server.find_bindir()
    if bindir is None:
        pytest.skip("PostgreSQL's programs (initdb, pg_ctl) are not installed here")
    url = dead_url()
    folders = set(Path(tempfile.gettempdir()).glob("nnbot-postgres-*"))
    code, lines = run_suite(tmp_path, SMOKE, default_url=url)
    output = "\n".join(lines)
    assert code == 0, output
    assert re.match(r"1 passed in ", lines[-1]), output
    said = re.fullmatch(r"PostgreSQL tests ran on a throwaway server at 127\.0\.0\.1:(\d+) "
                        rf"\(from {re.escape(str(bindir))}\), since none could be used at "
                        rf"{re.escape(postgres_server.where(url))} \(Connection refused\); it is stopped and removed\.",
                        lines[-2])
    assert said, output
    throwaway = url.replace(postgres_server.where(url), f"127.0.0.1:{said.group(1)}")
    assert postgres_server.why_unusable(throwaway) == "Connection refused"
    assert set(Path(tempfile.gettempdir()).glob("nnbot-postgres-*")) <= folders


def test_with_no_server_no_programs_and_no_chromium_those_tests_skip_and_the_run_ends_saying_so(
        tmp_path: Path) -> None:
    url = dead_url()
    code, lines = run_suite(tmp_path, SMOKE, BROWSER, default_url=url, hide_programs=True)
    output = "\n".join(lines)
    assert code == 0, output
    assert re.match(r"3 skipped in ", lines[-1]), output
    assert sorted(lines[-3:-1]) == [
        "Browser tests skipped: chromium is not on PATH; install it (Debian: apt-get install chromium) to run them.",
        f"PostgreSQL tests skipped: no server at {postgres_server.where(url)} (Connection refused) and no PostgreSQL "
        "programs (initdb, pg_ctl) to start one; install PostgreSQL (Debian: apt-get install postgresql) or set "
        "NNBOT_TEST_POSTGRES_URL.",
    ], output
    assert ".ci/run" not in output


def test_a_named_server_that_does_not_answer_is_an_error_not_a_reason_to_start_another(tmp_path: Path) -> None:
    url = dead_url()
    code, lines = run_suite(tmp_path, SMOKE, default_url=postgres_server.DEFAULT_URL,
                            env={"NNBOT_TEST_POSTGRES_URL": url})
    output = "\n".join(lines)
    assert code == 1, output
    assert re.match(r"1 error in ", lines[-1]), output
    assert lines[-2] == (f"PostgreSQL at {postgres_server.where(url)} (NNBOT_TEST_POSTGRES_URL) cannot be used "
                         "(Connection refused); start it, correct the URL, or unset NNBOT_TEST_POSTGRES_URL to let the "
                         "suite find or start a server itself.")
    assert "throwaway" not in output
