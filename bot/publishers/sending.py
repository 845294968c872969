"""Whether a failed request was sent, and why it failed in a few words: read from the requests/urllib3 exception
chain, the same for every platform.

Only a failure to connect (or a URL that could not be used) proves that nothing went out; anything else (a timeout
while waiting, a dropped connection, an answer cut off) may come after the platform acted on the request.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import requests
import urllib3

from bot.publishers.base import Outcome, PublishError

NOT_SENT = (  # failures raised before a request's first byte left: connecting, or an unusable URL
    requests.exceptions.ConnectTimeout,
    requests.exceptions.InvalidURL,
    requests.exceptions.MissingSchema,
    requests.exceptions.InvalidSchema,
    urllib3.exceptions.ConnectTimeoutError,  # and its subclasses NewConnectionError (refused) and NameResolutionError
    ssl.SSLCertVerificationError,  # checked during the handshake, before the request
)


def causes(error: BaseException) -> Iterator[BaseException]:
    """`error` and what it wraps: requests and urllib3 keep causes in `args`, `reason`, `__cause__`, `__context__`."""
    seen: list[BaseException] = []
    pending = [error]
    while pending:
        current = pending.pop()
        if any(current is s for s in seen):
            continue
        seen.append(current)
        yield current
        linked = [current.__cause__, current.__context__, getattr(current, "reason", None), *current.args]
        pending.extend(e for e in linked if isinstance(e, BaseException))


def certainly_not_sent(error: BaseException) -> bool:
    """True when `error` came before any of the request went out; False when it may have reached the server."""
    return any(isinstance(cause, NOT_SENT) for cause in causes(error))


def why_not_connected(error: BaseException) -> str:
    """A few words on why no connection was made, for a sentence that says nothing was posted."""
    found = list(causes(error))
    if any(isinstance(c, urllib3.exceptions.NameResolutionError) for c in found):
        return "its host name was not found"
    if any(isinstance(c, ssl.SSLCertVerificationError) for c in found):
        return "its certificate could not be verified"
    if any(isinstance(c, ConnectionRefusedError) for c in found):
        return "the connection was refused"
    if any(type(c) is urllib3.exceptions.ConnectTimeoutError or type(c) is requests.exceptions.ConnectTimeout
           for c in found):
        return "connecting timed out"
    return "no connection could be made"


def why_failed(error: BaseException) -> str:
    """A few words on how a request that went out failed, from the first requests exception in the chain (a client
    library may wrap it, as Mastodon.py does)."""
    found = next((c for c in causes(error) if isinstance(c, requests.RequestException)), error)
    if isinstance(found, requests.exceptions.JSONDecodeError):
        return "the answer was not JSON"
    if isinstance(found, requests.exceptions.ChunkedEncodingError):
        return "the answer was cut off"
    if isinstance(found, requests.Timeout):
        return "no answer in time"
    if isinstance(found, requests.ConnectionError):
        return "the connection dropped before an answer"
    return type(found).__name__


def connection_failure(error: BaseException, *, where: str, what: str, posting: bool, setting: str,
                       look: str) -> PublishError:
    """A request to `where` ("X", an instance) that failed without an answer, in one sentence: TRANSIENT when it
    certainly never left (then check `setting`), UNKNOWN for a post that may have gone out (then `look` for it,
    e.g. "look for it among @bot's posts before posting it again."), TRANSIENT for any other request."""
    if certainly_not_sent(error):
        return PublishError(f"Could not connect to {where} ({why_not_connected(error)}), so nothing was posted; "
                            f"check the network and {setting}.", outcome=Outcome.TRANSIENT)
    if posting:
        return PublishError(f"The connection to {where} failed after the post was sent ({why_failed(error)}), so it "
                            f"may have been posted; {look}", outcome=Outcome.UNKNOWN)
    return PublishError(f"The connection to {where} failed during {what} ({why_failed(error)}); check the network "
                        "and try again later.", outcome=Outcome.TRANSIENT)
