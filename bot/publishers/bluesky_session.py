"""A Bluesky login for every process: the SDK's session kept under BOT_HOME, reused, renewed, and remade only when
Bluesky refuses it.

Bluesky limits logins (createSession: 30 in 5 minutes, and 100 to 300 a day, per account), so nnbot logs in with the
app password only when it holds no usable session for the account. The session (handle, DID, access and refresh
tokens, the account's server, as the SDK exports it) is kept in `BOT_HOME/sessions/bluesky-HANDLE.json`, mode 0600,
written whole by an atomic replace, with the BLUESKY_URL and handle it was made for: a session made for another
server or account is not used. Every process that posts or reads as the account (`bot run`'s jobs, `bot post`, `bot
queue reconcile`, the review page's reconcile) takes it from there. A file rather than the database: it is a
credential, and the database is read more widely (the review page, dumps and backups); and the processes that share
a database share BOT_HOME in the deployments the README describes (one host, or docker-compose's bot-home volume). A
worker on another host logs in once for itself.

An access token lasts two hours. It is refreshed when less than REFRESH_AHEAD of it is left (before the SDK would
refresh it itself, inside a call), and when Bluesky refuses it sooner (400 ExpiredToken); a refresh rotates the
refresh token, so each one is saved at once, and a process reads the file again before each use to take up a session
another process renewed. A refresh Bluesky refuses (a revoked app password, a session unused for 90 days) means one
new login. Logins and renewals hold an exclusive lock (flock) on the session's lock file, one process at a time.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import httpx

from bot.config import Settings
from bot.publishers.base import Outcome, PublishError
from bot.publishers.sending import causes
from scrapers.bluesky import TIMEOUT, describe, reset_seconds, xrpc_client, xrpc_error

if TYPE_CHECKING:
    from atproto import Client, Session, SessionEvent

logger = logging.getLogger(__name__)

T = TypeVar("T")
SESSIONS = "sessions"  # the folder under BOT_HOME
REFRESH_AHEAD = timedelta(minutes=20)  # renew an access token with less than this left (the SDK itself: 15 minutes)
TOKEN_REFUSED = ("ExpiredToken", "InvalidToken")  # a 400 with these names: the request was refused unread
APP_PASSWORDS = "https://bsky.app/settings/app-passwords"  # where an account makes app passwords
# Failures that happen before any byte of a request is sent: connecting, or no connection to be had from the pool.
NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


def certainly_not_sent(error: BaseException) -> bool:
    """True when `error` (from the SDK or httpx) came before any of the request went out."""
    return any(isinstance(cause, NOT_SENT) for cause in causes(error))


def identifier(settings: Settings) -> str:
    """BLUESKY_HANDLE as createSession takes it: a handle (without its @), or the account's email or DID."""
    return (settings.bluesky_handle or "").strip().removeprefix("@")


class BlueskySession:
    """The account of BLUESKY_HANDLE, logged in through one SDK client whose session is shared through a file."""

    def __init__(self, settings: Settings, *, timeout: httpx.Timeout = TIMEOUT) -> None:
        password = settings.bluesky_app_password
        self.identifier = identifier(settings)
        self.password = password.get_secret_value() if password is not None else ""
        self.url = settings.bluesky_url
        name = re.sub(r"[^a-z0-9._-]", "_", self.identifier.lower())  # a handle as it is; an email or DID made safe
        self.path = settings.bot_home / SESSIONS / f"bluesky-{name}.json"
        self.client = xrpc_client(self.url, timeout=timeout)
        self.client.on_session_change(self._changed)
        self._held: str | None = None  # the session string the client holds (the SDK's export format)

    @property
    def did(self) -> str:
        return self._session().did

    @property
    def handle(self) -> str:
        """The account's handle, as its session says (BLUESKY_HANDLE may be an email or a DID)."""
        return self._session().handle

    def call(self, request: Callable[[Client], T]) -> T:
        """`request(client)` with the account logged in. When Bluesky refuses the session's access token (400
        ExpiredToken or InvalidToken: refused before anything was done), the session is renewed and `request` sent
        once more. Failing to log in raises `PublishError` (ACCOUNT, RATE_LIMITED or TRANSIENT)."""
        from atproto_client.exceptions import BadRequestError

        client = self.ready()
        try:
            return request(client)
        except BadRequestError as error:
            if xrpc_error(error)[1] not in TOKEN_REFUSED:
                raise
            logger.info("Bluesky refused the session of %s (%s); renewing it", self.identifier, xrpc_error(error)[2])
        self.renew()
        return request(client)

    def ready(self) -> Client:
        """The client, logged in with an access token good for REFRESH_AHEAD at least."""
        stored = self._stored()
        if stored is not None and stored != self._held:
            self._use(stored)  # ours to start with, or one another process renewed since
        if self._held is None:
            with self._lock():
                stored = self._stored()  # another process may have logged in while this one waited
                if stored is not None:
                    self._use(stored)
                else:
                    self._login()
        if self._expiring():
            self.renew()
        return self.client

    def renew(self) -> None:
        """A fresh access token: another process's newer session if the file holds one, else a refresh, else (the
        refresh refused) a new login."""
        from atproto_client.exceptions import BadRequestError, UnauthorizedError

        with self._lock():
            stored, held = self._stored(), self._held
            if stored is not None and stored != held:
                self._use(stored)
                if not self._expiring():
                    return
            try:
                self.client._refresh_and_set_session()  # the SDK's own refresh: rotates the tokens, fires REFRESH
            except (BadRequestError, UnauthorizedError) as error:
                logger.info("Bluesky refused to refresh the session of %s (%s); logging in again", self.identifier,
                            xrpc_error(error)[2] or xrpc_error(error)[1])
                self._login()
            except Exception as error:  # the SDK's errors and httpx's
                raise _failure(error, what=f"renewing the Bluesky session of {self.identifier}") from error

    def close(self) -> None:
        self.client.request.close()

    # ---- the login and the file

    def _login(self) -> None:
        from atproto_client.exceptions import BadRequestError, RateLimitExceededError, UnauthorizedError

        logger.info("Logging in to Bluesky as %s", self.identifier)
        try:
            self.client.login(self.identifier, self.password, fetch_bsky_profile=False)  # saved by _changed
        except RateLimitExceededError as error:
            retry_at = datetime.now(UTC) + timedelta(seconds=reset_seconds(error))
            raise PublishError(f"Bluesky rate-limited logins of {self.identifier} until {retry_at:%H:%M:%S} UTC (it "
                               "allows 30 in 5 minutes, and a few hundred a day); try again after that.",
                               outcome=Outcome.RATE_LIMITED, retry_at=retry_at) from error
        except (UnauthorizedError, BadRequestError) as error:
            _, name, message = xrpc_error(error)
            raise PublishError(f"Bluesky refused the login of {self.identifier} with its app password ("
                               f"{(message or name).rstrip('.')}); check BLUESKY_HANDLE, and make a new app password "
                               f"at {APP_PASSWORDS} for BLUESKY_APP_PASSWORD.", outcome=Outcome.ACCOUNT) from error
        except Exception as error:  # the SDK's other errors and httpx's: nothing was logged in, nothing posted
            raise _failure(error, what=f"logging in to Bluesky as {self.identifier}") from error

    def _changed(self, event: SessionEvent, session: Session) -> None:
        from atproto import SessionEvent

        if event in (SessionEvent.CREATE, SessionEvent.REFRESH):  # new tokens: the old refresh token is spent
            self._held = session.encode()
            self._save(self._held)

    def _use(self, stored: str) -> None:
        self.client.login(session_string=stored, fetch_bsky_profile=False)  # no request: the SDK only reads it
        self._held = stored

    def _session(self) -> Session:
        from atproto import Session

        assert self._held is not None, "call ready() first"
        return Session.decode(self._held)

    def _expiring(self) -> bool:
        try:
            expires = self._session().access_jwt_payload.exp
        except Exception:  # not a token the SDK can read: renew it
            return True
        return expires is None or expires - time.time() < REFRESH_AHEAD.total_seconds()

    def _stored(self) -> str | None:
        """The saved session, if it was made for this server and account."""
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:
            logger.warning("Cannot read the Bluesky session in %s (%s); logging in again", self.path, error)
            return None
        if not isinstance(saved, dict) or (saved.get("url"), saved.get("identifier")) != (self.url, self.identifier):
            return None  # BLUESKY_URL or BLUESKY_HANDLE changed since
        session = saved.get("session")
        return session if isinstance(session, str) and session else None

    def _save(self, session: str) -> None:
        """Write the session whole (a temporary file, fsynced, renamed over the old one), readable by its owner only."""
        content = json.dumps({"url": self.url, "identifier": self.identifier, "session": session,
                              "saved_at": datetime.now(UTC).isoformat(timespec="seconds")})
        try:
            self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".bluesky-", suffix=".tmp")  # mode 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as file:
                    file.write(content)
                    file.flush()
                    os.fsync(file.fileno())
                os.replace(temporary, self.path)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
        except OSError as error:  # posting goes on; the next process logs in again (logins are limited: say so)
            logger.warning("Cannot save the Bluesky session to %s (%s); each process will log in anew", self.path,
                           error)

    @contextmanager
    def _lock(self) -> Iterator[None]:
        """The session's lock, held by one process (or thread) at a time; the system frees it if the holder dies."""
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.path.with_suffix(".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _failure(error: BaseException, *, what: str) -> PublishError:
    """A login or refresh that failed on the way (not refused): nothing was done; try again later."""
    from atproto_client.exceptions import RateLimitExceededError

    if isinstance(error, RateLimitExceededError):
        retry_at = datetime.now(UTC) + timedelta(seconds=reset_seconds(error))
        return PublishError(f"Bluesky rate-limited {what} until {retry_at:%H:%M:%S} UTC; try again after that.",
                            outcome=Outcome.RATE_LIMITED, retry_at=retry_at)
    return PublishError(f"{what[0].upper()}{what[1:]} failed ({describe(error)}); check the network and BLUESKY_URL, "
                        "and try again later.", outcome=Outcome.TRANSIENT)

