"""Whether a failed request was sent: read from the requests/urllib3 exception chain, the same for every platform.

Only a failure to connect (or a URL that could not be used) proves that nothing went out; anything else (a timeout
while waiting, a dropped connection, an answer cut off) may come after the platform acted on the request.
"""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import requests
import urllib3

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
