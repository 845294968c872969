"""Bad settings as a user meets them: BOT_HOME, BOT_DATABASE_URL and bots.toml, each one sentence that names the fix,
printed by the real CLI, with nothing stored."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from tests.conftest import Run

NAME_RULE_WORDS = "use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
URL_FORMS = "sqlite:////absolute/path/bot.db or postgresql+psycopg://user:password@host:5432/dbname"

Cli = Callable[..., "Run"]  # runs `bot ARGS…`
Files = Callable[[], dict[str, bytes]]  # every file in BOT_HOME, by its relative path


@pytest.fixture
def cli(bot) -> Iterator[Cli]:  # type: ignore[no-untyped-def]
    """`bot ARGS…` as a fresh process would run it: settings, bots file and store read again each time."""
    from bot.cli import context

    def run(*args: str) -> Run:
        if context.store.cache_info().currsize:
            context.store().close()  # SQLite folds its WAL file back in, so the files on disk are the whole state
        for cached in (context.settings, context.bots, context.store):
            cached.cache_clear()
        return bot(*args)

    yield run
    run("--help")  # closes the last store


@pytest.fixture
def posts(tmp_path: Path) -> Path:
    path = tmp_path / "posts.txt"
    path.write_text("First post here\nSecond post here\n")
    return path


@pytest.fixture
def seeded(cli: Cli, posts: Path, bot_home: Path) -> Files:
    """BOT_HOME holding corpus 'keep'; returns a function that reads every file in it, to show nothing changed."""
    assert cli("import", str(posts), "--corpus", "keep").code == 0
    cli("--help")  # closes the store

    def files() -> dict[str, bytes]:
        return {str(p.relative_to(bot_home)): p.read_bytes() for p in sorted(bot_home.rglob("*")) if p.is_file()}

    return files


def corpora(cli: Cli) -> list[tuple[str, int]]:
    return [(c["name"], c["documents"]) for c in cli("corpus", "list", "--json").json]


def one_error(result: Run) -> str:
    """The error line of a failed command that printed nothing else."""
    assert (result.code, result.out, result.err.count("\n")) == (1, "", 1), result.err
    return result.err.removeprefix("Error: ").removesuffix("\n")


# --- BOT_HOME: created when missing (with the folders above it), else a folder nnbot can write to


def test_a_missing_bot_home_is_created_with_the_folders_above_it(
        cli: Cli, posts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "a" / "b" / "nnbot"
    monkeypatch.setenv("BOT_HOME", str(home))
    assert cli("import", str(posts), "--corpus", "c").code == 0
    assert (home / "bot.db").is_file()


def test_bot_home_that_is_a_file(cli: Cli, posts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "notes.txt"
    home.write_text("mine\n")
    monkeypatch.setenv("BOT_HOME", str(home))
    assert one_error(cli("import", str(posts), "--corpus", "c")) == (
        f"BOT_HOME {home} is a file, not a folder; set it to a folder (nnbot creates a missing one).")
    assert home.read_text() == "mine\n"


def test_bot_home_under_a_file(cli: Cli, posts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file = tmp_path / "notes.txt"
    file.write_text("mine\n")
    monkeypatch.setenv("BOT_HOME", str(file / "nnbot" / "home"))
    assert one_error(cli("import", str(posts), "--corpus", "c")) == (
        f"BOT_HOME {file / 'nnbot' / 'home'} is inside {file}, which is a file, not a folder; set it to a folder "
        "(nnbot creates a missing one).")
    assert file.read_text() == "mine\n"


@pytest.fixture
def read_only() -> Iterator[Callable[[Path], str]]:
    """Makes a folder read-only and returns the reason writing there fails.

    chmod 0o500 binds everyone but root, who writes anyway; for root (containers, CI) the folder is made
    immutable (chattr +i), which binds root too, or the test is skipped where the file system cannot do that.
    """
    made: list[Path] = []

    def make(folder: Path) -> str:
        if os.geteuid() != 0:
            folder.chmod(0o500)
            made.append(folder)
            return os.strerror(errno.EACCES)
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(folder)], capture_output=True, check=False).returncode:
            pytest.skip("running as root, and this file system cannot make a folder immutable (chattr +i)")
        made.append(folder)
        return os.strerror(errno.EPERM)

    yield make
    for folder in made:
        if os.geteuid() == 0:
            subprocess.run([shutil.which("chattr") or "chattr", "-i", str(folder)], check=True)
        else:
            folder.chmod(0o700)


def test_a_read_only_bot_home(
        cli: Cli, seeded: Files, posts: Path, bot_home: Path, read_only: Callable[[Path], str]
) -> None:
    before = seeded()
    reason = read_only(bot_home)
    expected = (f"BOT_HOME {bot_home} is not writable ({reason}); make it writable or set BOT_HOME to a folder you "
                "can write to.")
    assert one_error(cli("import", str(posts), "--corpus", "new")) == expected
    assert one_error(cli("corpus", "list")) == expected  # before the database is touched: no "check BOT_DATABASE_URL"
    assert seeded() == before


def test_a_bot_home_that_cannot_be_created(
        cli: Cli, posts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read_only: Callable[[Path], str]
) -> None:
    parent = tmp_path / "locked"
    parent.mkdir()
    reason = read_only(parent)
    monkeypatch.setenv("BOT_HOME", str(parent / "nnbot"))
    assert one_error(cli("import", str(posts), "--corpus", "c")) == (
        f"BOT_HOME {parent / 'nnbot'} cannot be created ({reason}); create it yourself or set BOT_HOME to a folder "
        "you can write to.")
    assert list(parent.iterdir()) == []


# --- BOT_DATABASE_URL: a SQLite or PostgreSQL URL, its password never shown


@pytest.mark.parametrize("url, shown, reason", [
    ("not a url at all", "not a url at all", ""),
    ("postgresql+psycopg://u:hunter2@127.0.0.1:port/x", "postgresql+psycopg://u:***@127.0.0.1:port/x",
     " (its port is not a number)"),
    ("mysql://u:hunter2@127.0.0.1/x", "mysql://u:***@127.0.0.1/x", ""),
    ("sqlite://", "sqlite://", " (it names no database file, so nothing would be kept)"),
    ("sqlite:///bot.db", "sqlite:///bot.db",
     " (its path is relative; a database must not depend on the current folder)"),
])
def test_a_database_url_nnbot_cannot_use(
        cli: Cli, seeded: Files, posts: Path, monkeypatch: pytest.MonkeyPatch, url: str, shown: str, reason: str
) -> None:
    before = seeded()
    monkeypatch.setenv("BOT_DATABASE_URL", url)
    result = cli("import", str(posts), "--corpus", "new")
    assert one_error(result) == (f"BOT_DATABASE_URL {shown!r} is not a SQLite or PostgreSQL URL nnbot can use{reason}; "
                                 f"write it like {URL_FORMS}.")
    assert "hunter2" not in result.err
    monkeypatch.delenv("BOT_DATABASE_URL")
    assert seeded() == before and corpora(cli) == [("keep", 2)]


def test_a_database_url_in_the_bots_file_is_named_there(cli: Cli, tmp_path: Path) -> None:
    config = tmp_path / "bots.toml"
    config.write_text('[settings]\nbot_database_url = "mysql://u:hunter2@127.0.0.1/x"\n')
    assert one_error(cli("--config", str(config), "corpus", "list")) == (
        f"{config} [settings] bot_database_url 'mysql://u:***@127.0.0.1/x' is not a SQLite or PostgreSQL URL nnbot "
        f"can use; write it like {URL_FORMS}.")


def test_a_sqlite_folder_named_in_the_url_is_not_created(
        cli: Cli, seeded: Files, posts: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    before = seeded()
    database = tmp_path / "nonexistent" / "dir" / "bot.db"
    monkeypatch.setenv("BOT_DATABASE_URL", f"sqlite:///{database}")
    assert one_error(cli("import", str(posts), "--corpus", "new")) == (
        f"Cannot open the database at sqlite:///{database}: the folder {database.parent} does not exist; create it "
        "first or change BOT_DATABASE_URL.")
    assert not (tmp_path / "nonexistent").exists()
    assert seeded() == before


def test_a_file_that_is_not_a_database(cli: Cli, posts: Path, bot_home: Path) -> None:
    bot_home.mkdir()
    (bot_home / "bot.db").write_bytes(b"my notes, not a database\n" * 200)
    assert one_error(cli("import", str(posts), "--corpus", "c")) == (
        f"Cannot open the database at sqlite:///{bot_home / 'bot.db'} (file is not a database); check "
        "BOT_DATABASE_URL, or BOT_HOME if BOT_DATABASE_URL is not set.")
    assert (bot_home / "bot.db").read_bytes() == b"my notes, not a database\n" * 200


def test_an_unreachable_server_hides_the_password(cli: Cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_DATABASE_URL", "postgresql+psycopg://u:hunter2@127.0.0.1:1/x")  # port 1: nobody listens
    error = one_error(cli("corpus", "list"))
    assert error.startswith("Cannot open the database at postgresql+psycopg://u:***@127.0.0.1:1/x (")
    assert error.endswith("); check BOT_DATABASE_URL and that the server is running.")
    assert "hunter2" not in error


# --- bots.toml: the file, its line, and the rule in words


def bots_file(tmp_path: Path, content: str | bytes) -> Path:
    path = tmp_path / "bots.toml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    return path


def test_a_bots_file_that_is_not_utf8(cli: Cli, seeded: Files, tmp_path: Path) -> None:
    before = seeded()
    path = bots_file(tmp_path, b"\xff\xfe")  # what `printf '\xff\xfe' > b.toml` writes: a UTF-16 byte order mark
    assert one_error(cli("--config", str(path), "corpus", "list")) == (
        f"{path} is UTF-16 text (it starts with a UTF-16 byte order mark); save it as UTF-8.")
    path = bots_file(tmp_path, b'[[bot]]\nname = "caf\xe9"\n')
    assert one_error(cli("--config", str(path), "corpus", "list")) == (
        f"{path} is not UTF-8 text (line 2 has the byte 0xe9); save it as UTF-8.")
    assert seeded() == before


BOT = '[[bot]]\nname = "{name}"\ncorpus = "c"\nplatform = "x"\n'


def test_a_repeated_bot_name_points_at_the_second_one(cli: Cli, tmp_path: Path) -> None:
    path = bots_file(tmp_path, BOT.format(name="hn") + "\n" + BOT.format(name="other") + "\n" + BOT.format(name="hn"))
    assert one_error(cli("--config", str(path), "corpus", "list")) == (
        f"{path}, line 12: bot 'hn' field name: an earlier [[bot]] has this name already; give each bot a name of "
        "its own.")


def test_an_unknown_setting_names_the_valid_ones(cli: Cli, tmp_path: Path) -> None:
    path = bots_file(tmp_path, '[settings]\nbot_hmoe = "/srv/nnbot"\n')
    error = one_error(cli("--config", str(path), "corpus", "list"))
    assert error.startswith(f"{path}, line 2: field settings.bot_hmoe: no such setting (did you mean bot_home?); use "
                            "bot_home, bot_database_url, ")
    assert error.endswith(", bot_review_password, described in the README's Settings section.")
    assert "DESIGN.md" not in error


def test_names_are_checked_by_the_rule_in_words(cli: Cli, posts: Path, tmp_path: Path) -> None:
    path = bots_file(tmp_path, BOT.format(name="x y"))
    assert one_error(cli("--config", str(path), "corpus", "list")) == (
        f"{path}, line 2: bot 'x y' field name: {NAME_RULE_WORDS}.")
    result = cli("import", str(posts), "--corpus", "../etc")
    assert result.code == 2 and result.err.endswith(
        f"Error: Invalid value for '--corpus': '../etc' is not a name nnbot can use; {NAME_RULE_WORDS}.\n")
    assert "[A-Za-z0-9]" not in result.err
