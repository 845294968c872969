"""The suite's PostgreSQL: check that a server can be used, find PostgreSQL's own programs, start a throwaway one.

A throwaway server is a fresh `initdb` in a temporary folder with trust authentication, listening on 127.0.0.1 at a
free port (and on a socket in that folder); `stop()` shuts it down and removes the folder. initdb and postgres refuse
to run as root, so under root the server runs as the first of SERVER_USERS that exists.
"""

from __future__ import annotations

import glob
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"  # read at call time: the suite's tests change it
SERVER_DIRS = (  # where packages put initdb and pg_ctl off PATH, newest version first
    "/usr/lib/postgresql/*/bin",  # Debian, Ubuntu
    "/usr/pgsql-*/bin",  # RHEL, Fedora (PGDG packages)
    "/opt/homebrew/opt/postgresql@*/bin",  # Homebrew, Apple silicon
    "/usr/local/opt/postgresql@*/bin",  # Homebrew, Intel
)
SERVER_PROGRAMS = ("initdb", "pg_ctl")
SERVER_USERS = ("postgres", "nobody")  # who runs the server when the suite runs as root; Debian's package adds postgres
CONNECT_SECONDS = 5  # how long a check waits for a server to answer
START_SECONDS = 60  # how long pg_ctl waits for a new server to accept connections
SETTINGS = {  # a server whose data is thrown away needs no crash safety, and runs the suite faster without it
    "listen_addresses": "127.0.0.1",
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}


class StartFailed(Exception):
    """A throwaway server could not be started; the message says why, in a few words."""


def where(url: str) -> str:
    """host:port of a server URL, as a person would name it."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return f"{parsed.host or 'localhost'}:{parsed.port or 5432}"


def why_unusable(url: str) -> str | None:
    """None when the server at `url` lets us in; else libpq's reason, without its preamble."""
    from sqlalchemy import create_engine
    from sqlalchemy.exc import OperationalError

    engine = create_engine(url, connect_args={"connect_timeout": CONNECT_SECONDS})
    try:
        with engine.connect():
            return None
    except OperationalError as exc:
        first = str(exc.orig).splitlines()[0] if str(exc.orig) else type(exc.orig).__name__
        return re.sub(r"^(connection failed: )?(connection to server at .*? failed: )?", "", first).strip()
    finally:
        engine.dispose()


def find_bindir() -> Path | None:
    """The folder holding PostgreSQL's server programs: from PATH, then `pg_config --bindir`, then SERVER_DIRS."""
    candidates: list[Path] = []
    on_path = shutil.which(SERVER_PROGRAMS[0])
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:  # the client's pg_config also answers where no server is installed: checked below like the rest
        answer = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=False)
        if answer.returncode == 0 and answer.stdout.strip():
            candidates.append(Path(answer.stdout.strip()))
    for pattern in SERVER_DIRS:
        candidates += sorted((Path(p) for p in glob.glob(pattern)), key=_version, reverse=True)
    return next((c for c in candidates if all(os.access(c / name, os.X_OK) for name in SERVER_PROGRAMS)), None)


def _version(path: Path) -> list[int]:
    return [int(n) for n in re.findall(r"\d+", str(path))]


@dataclass
class ThrowawayServer:
    """A PostgreSQL server of our own: `url` is its maintenance database, `folder` holds its data and socket."""

    bindir: Path
    folder: Path
    port: int
    user: str | None  # who runs it: None for whoever runs the suite

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def stop(self) -> None:
        """Shut the server down (fast: open sessions are ended) and remove its folder."""
        _run(self, "pg_ctl", "stop", "-D", str(self.folder / "data"), "-m", "fast", "-w")
        shutil.rmtree(self.folder, ignore_errors=True)


def start(bindir: Path) -> ThrowawayServer:
    """initdb into a new temporary folder and start the server on a free port; StartFailed says why it did not."""
    user = _server_user()
    folder = Path(tempfile.mkdtemp(prefix="nnbot-postgres-"))  # not under pytest's tmp: that is private to root
    server = ThrowawayServer(bindir, folder, _free_port(), user)
    try:
        if user is not None:
            entry = pwd.getpwnam(user)
            os.chown(folder, entry.pw_uid, entry.pw_gid)
        data = folder / "data"
        # UTF8 with the C locale: the same on every system (C.UTF-8, which Debian's clusters use, is not on macOS).
        _run(server, "initdb", "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-locale",
             "--no-sync", check=True)
        settings = {**SETTINGS, "port": str(server.port), "unix_socket_directories": str(folder)}
        with open(data / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.writelines(f"{name} = {_quoted(value)}\n" for name, value in settings.items())
        _run(server, "pg_ctl", "start", "-D", str(data), "-l", str(folder / "server.log"), "-w", "-t",
             str(START_SECONDS), check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        reason = _reason(exc, folder)
        server.stop()  # a server that started too slowly for pg_ctl is running all the same
        raise StartFailed(reason) from exc
    return server


def _server_user() -> str | None:
    if os.geteuid() != 0:
        return None
    for name in SERVER_USERS:
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise StartFailed(f"the suite runs as root, which initdb refuses, and none of the users {', '.join(SERVER_USERS)} "
                      "exists to run it as")


def _run(server: ThrowawayServer, program: str, *args: str, check: bool = False) -> None:
    """One of PostgreSQL's programs, as the server's user, in its folder (a user that cannot enter ours would warn)."""
    subprocess.run([str(server.bindir / program), *args], user=server.user, group=_group(server.user),
                   extra_groups=[] if server.user else None, cwd=server.folder, stdin=subprocess.DEVNULL,
                   capture_output=True, text=True, check=check)


def _group(user: str | None) -> int | None:
    return pwd.getpwnam(user).pw_gid if user else None


def _quoted(value: str) -> str:
    """A string in postgresql.conf: single quotes, a quote inside doubled."""
    return "'" + value.replace("'", "''") + "'"


def _reason(exc: Exception, folder: Path) -> str:
    if isinstance(exc, subprocess.CalledProcessError):
        said = [line for line in (exc.stderr or exc.stdout or "").splitlines() if line.strip()]
        log = folder / "server.log"
        if log.exists():  # pg_ctl says only that the server did not start; its log says why
            said += [line[line.index("FATAL"):] for line in log.read_text(errors="replace").splitlines()
                     if "FATAL" in line]
        program = Path(str(exc.cmd[0])).name
        return f"{program} failed: {said[-1].strip() if said else f'exit status {exc.returncode}'}"
    return str(exc)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
