"""HTTP sessions for the scrapers: a descriptive user agent, retried server errors, API hosts moved by settings."""

from __future__ import annotations

import logging
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

logger = logging.getLogger(__name__)

SERVER_RETRIES = 3  # retries after the first try, for 5xx answers and refused connections
RETRY_BACKOFF = 2.0  # seconds: urllib3 waits 0, 4, 8 s between retries (times the sleep scale)
RETRY_STATUSES = (500, 502, 503, 504)
TIMEOUT = (10, 30)  # seconds: to connect, and between bytes of an answer


def retry_policy(*, sleep_scale: float) -> Retry:
    """Retry 5xx answers and failed connections a few times, with backoff; then hand back the last answer."""
    return Retry(
        total=SERVER_RETRIES,
        read=0,  # a read that failed may have been half-done: the caller decides, page by page
        status_forcelist=RETRY_STATUSES,
        allowed_methods=frozenset({"GET", "POST"}),  # POST only for token requests, which are safe to repeat
        backoff_factor=RETRY_BACKOFF * sleep_scale,
        respect_retry_after_header=False,  # rate limits are the scrapers' to wait on, visibly
        raise_on_status=False,  # the caller sees the final 5xx and says what it means
    )


class RetryingAdapter(HTTPAdapter):
    """An adapter with the retry policy that can also send requests for one base URL to another.

    tweepy's client has api.twitter.com fixed in its code; mounting this on its session with
    `moved=("https://api.twitter.com", X_API_URL)` sends its requests to X_API_URL instead.
    """

    def __init__(self, *, sleep_scale: float, moved: tuple[str, str] | None = None, retries: bool = True) -> None:
        # retries=False: every request is sent once, as a post must be (a repeated POST could post twice).
        super().__init__(max_retries=retry_policy(sleep_scale=sleep_scale) if retries else Retry(total=0, read=0,
                                                                                             redirect=0))
        self.moved = moved

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        if self.moved and request.url and request.url.startswith(self.moved[0]):
            request.url = self.moved[1].rstrip("/") + request.url[len(self.moved[0]):]
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = TIMEOUT
        return super().send(request, **kwargs)


def session(*, user_agent: str | None, sleep_scale: float, retries: bool = True) -> requests.Session:
    """A `requests` session that sends `user_agent` and retries server errors (unless `retries` is False)."""
    http = requests.Session()
    if user_agent:
        http.headers["User-Agent"] = user_agent
    adapter = RetryingAdapter(sleep_scale=sleep_scale, retries=retries)
    http.mount("https://", adapter)
    http.mount("http://", adapter)
    return http


def json_body(response: requests.Response) -> dict[str, Any]:
    """The JSON object an error response carries, or {} when it has none (an HTML page, nothing, a list)."""
    try:
        body = response.json()
    except (ValueError, requests.RequestException):
        return {}
    return body if isinstance(body, dict) else {}


def describe(error: Exception) -> str:
    """A few words on why a request failed, for a one-sentence error (urllib3's own text is long)."""
    if isinstance(error, requests.exceptions.ChunkedEncodingError):
        return "the answer was cut off"
    if isinstance(error, requests.Timeout):
        return "it timed out"
    if isinstance(error, requests.ConnectionError):
        return "could not connect, or the connection dropped"
    return type(error).__name__
