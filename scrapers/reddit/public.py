"""Subreddit listings without credentials: Reddit's public `.json` listings, paced and rate-limit aware."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import requests

from scrapers.errors import RateLimitError
from scrapers.http import describe, json_body, session
from scrapers.reddit.failures import bad_json, dropped, number, reset_seconds, subreddit_failure
from scrapers.waiting import Waiter

logger = logging.getLogger(__name__)

PUBLIC_INTERVAL = 6.0  # seconds between requests: Reddit allows clients without OAuth 10 requests a minute
MAX_RATE_LIMIT_WAITS = 5  # 429s in a row for one page before giving up: something is wrong beyond waiting


class PublicListings:
    """GET {REDDIT_URL}/r/SUB/SORT.json, one page at a time, honouring Reddit's x-ratelimit-* headers."""

    def __init__(self, *, reddit_url: str, user_agent: str, waiter: Waiter) -> None:
        self.reddit_url = reddit_url.rstrip("/")
        self.waiter = waiter
        self.http = session(user_agent=user_agent, sleep_scale=waiter.scale)
        self._reset_due: float | None = None  # seconds to wait before the next request: the window is used up

    def fetch(self, subreddit: str, sort: str, params: Mapping[str, str | int]) -> Any:
        """One page of r/`subreddit`'s `sort` listing as parsed JSON; `ScrapeError` on any failure."""
        url = f"{self.reddit_url}/r/{subreddit}/{sort}.json"
        for _ in range(MAX_RATE_LIMIT_WAITS + 1):
            if self._reset_due is not None:
                seconds, self._reset_due = self._reset_due, None
                self.waiter.rate_limited(service="Reddit", seconds=seconds, what=f"reading r/{subreddit}")
            self.waiter.pace(PUBLIC_INTERVAL)
            try:
                # No redirects: Reddit answers a subreddit that does not exist by redirecting to a search page.
                response = self.http.get(url, params={**params, "raw_json": 1}, allow_redirects=False)
            except requests.RequestException as error:
                raise dropped(subreddit, describe(error)) from error
            if response.status_code == 429:
                self._reset_due = reset_seconds(response.headers)
                continue
            if response.status_code != 200:
                raise subreddit_failure(subreddit, status=response.status_code, body=json_body(response),
                                        location=response.headers.get("location"), authenticated=False)
            self._note_remaining(response.headers)
            try:
                return response.json()
            except ValueError as error:
                raise bad_json(subreddit) from error
        raise RateLimitError(f"Reddit kept rate-limiting r/{subreddit} after {MAX_RATE_LIMIT_WAITS} waits; "
                             "try again later.")

    def _note_remaining(self, headers: Mapping[str, str]) -> None:
        remaining = number(headers.get("x-ratelimit-remaining"))
        if remaining is not None and remaining < 1:  # Reddit sends a float, e.g. "0.0"
            self._reset_due = reset_seconds(headers)

    def close(self) -> None:
        self.http.close()
