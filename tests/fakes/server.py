"""A local HTTP server for the fake APIs: routes answered by a Python object, scripted failures, a request log."""

from __future__ import annotations

import json
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # names in lower case
    form: dict[str, str]  # a urlencoded POST body
    body: str = ""  # the raw POST body (a JSON body is in here, not in `form`)

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # JSON-serialisable, or bytes sent as they are
    headers: dict[str, str] = field(default_factory=dict)

    def content(self) -> bytes:
        if self.body is None:
            return b""
        return self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode("utf-8")


@dataclass
class Failure:
    """Instead of the normal answer to `path`: another reply, the answer cut off, or a Ctrl-C."""

    path: str
    call: int | None  # the n-th request to `path` (1-based) it starts at; None: the next one
    times: int  # how many requests in a row it answers
    reply: Reply | None = None
    truncate: bool = False  # the real answer cut in half, with a Content-Length that matches: invalid JSON
    drop: bool = False  # the real answer's full Content-Length announced, half of it sent, the connection closed
    interrupt: bool = False  # a SIGINT to the main thread (Ctrl-C) before the real answer
    delay: float = 0.0  # seconds to wait, after handling the request, before answering
    hold: threading.Event | None = None  # after handling the request, answer only once this is set
    hang_up: bool = False  # after handling the request, close the connection without any answer
    unhandled: bool = False  # with hang_up: the request is read and counted but not handled (nothing is created)


Route = Callable[[Request], Reply]
SHUTDOWN_POLL = 0.01  # seconds between the server's checks for shutdown: http.server's 0.5 s slows every test


class FakeServer:
    """A ThreadingHTTPServer on 127.0.0.1 and an ephemeral port, in a background thread."""

    def __init__(self, route: Route, *, name: str) -> None:
        self.route = route
        self.name = name
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, args=(SHUTDOWN_POLL,),
                                        name=f"fake-{name}", daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def fail(self, path: str, *, status: int | None = None, body: Any = None,
             headers: dict[str, str] | None = None, call: int | None = None, times: int = 1,
             truncate: bool = False, drop: bool = False, interrupt: bool = False, delay: float = 0.0,
             hold: threading.Event | None = None, hang_up: bool = False, unhandled: bool = False) -> None:
        """Script a failure: `fail("/r/x/top.json", status=500, call=2)` answers the 2nd request to it with 500.

        For posts: `delay`/`hold` answer late (the post exists meanwhile), `hang_up` closes the connection with
        no answer after the post was made, `hang_up` with `unhandled` closes it before anything was made.
        """
        reply = Reply(status=status, body=body, headers=headers or {}) if status is not None else None
        with self._lock:
            self.failures.append(Failure(path=path, call=call, times=times, reply=reply, truncate=truncate,
                                         drop=drop, interrupt=interrupt, delay=delay, hold=hold, hang_up=hang_up,
                                         unhandled=unhandled))

    def count(self, method: str, path: str) -> int:
        """How many `method` requests to `path` arrived (handled or not)."""
        with self._lock:
            return sum(1 for r in self.requests if r.method == method and r.path == path)

    def paths(self) -> list[str]:
        return [request.path for request in self.requests]

    def _answer(self, request: Request) -> tuple[Reply, Failure | None]:
        with self._lock:
            self.requests.append(request)
            number = sum(1 for r in self.requests if r.path == request.path)
            failure = next((f for f in self.failures if f.path == request.path and f.times > 0
                            and (f.call is None or f.call <= number)), None)
            if failure:
                failure.times -= 1
        if failure and failure.reply:
            return failure.reply, failure
        if failure and failure.interrupt:
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]
        if failure and failure.hang_up and failure.unhandled:
            if failure.hold is not None:
                failure.hold.wait()
            return Reply(), failure
        reply = self.route(request)
        if failure and failure.delay:
            threading.Event().wait(failure.delay)
        if failure and failure.hold is not None:
            failure.hold.wait()
        return reply, failure


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client that hung up (Ctrl-C tests) is expected
            super().handle_error(request, client_address)


def _handler(server: FakeServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def _serve(self) -> None:
            parts = urlsplit(self.path)
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length).decode("utf-8") if length else ""
            request = Request(method=self.command, path=parts.path, query=dict(parse_qsl(parts.query)),
                              headers={k.lower(): v for k, v in self.headers.items()}, form=dict(parse_qsl(raw)),
                              body=raw)
            reply, failure = server._answer(request)
            if failure and failure.hang_up:
                self.close_connection = True  # no status line at all: the client sees the connection drop
                return
            content = reply.content()
            announced = len(content)
            if failure and (failure.truncate or failure.drop):
                content = content[:len(content) // 2]
                announced = announced if failure.drop else len(content)
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.body is not None and not isinstance(reply.body, bytes):
                self.send_header("content-type", "application/json; charset=UTF-8")
            self.send_header("content-length", str(announced))
            self.end_headers()
            self.wfile.write(content)
            self.wfile.flush()
            if failure and failure.drop:
                self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass  # quiet: the tests read `server.requests`

    return Handler


class FakeAPI:
    """A fake platform API answered by one `FakeServer` (`self.server`, made by the subclass): used as a context
    manager, it serves on 127.0.0.1 at `url` inside the block."""

    server: FakeServer

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()

    @property
    def url(self) -> str:
        return self.server.url
