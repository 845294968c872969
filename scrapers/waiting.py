"""Waiting on APIs: pacing between requests and rate-limit waits, scaled by one setting, announced as they start."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from scrapers.errors import RateLimitError

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Wait:
    """A rate-limit wait about to start: who asked for it, for how long, and until when (UTC)."""

    service: str  # "Reddit", "X"
    seconds: float  # as the API asked, before any sleep scale
    until: datetime


@dataclass
class Waiter:
    """Sleeps for the scrapers.

    Every sleep is multiplied by `scale` (the BOT_SLEEP_SCALE setting; tests set 0). Rate-limit waits are
    reported to `on_wait` before they start, so a person sees why nothing happens; with `no_wait` they raise
    `RateLimitError` instead. Pacing pauses between requests are routine and only logged.
    """

    scale: float = 1.0
    no_wait: bool = False
    on_wait: Callable[[Wait], None] | None = None
    sleep: Callable[[float], None] = time.sleep
    monotonic: Callable[[], float] = time.monotonic
    _last_request: float | None = field(default=None, init=False)

    def pace(self, interval: float) -> None:
        """Keep at least `interval` seconds (scaled) between the starts of consecutive requests."""
        now = self.monotonic()
        if self._last_request is not None:
            remaining = self._last_request + interval * self.scale - now
            if remaining > 0:
                logger.debug("pacing: %.1fs before the next request", remaining)
                self.sleep(remaining)
                now += remaining
        self._last_request = now

    def rate_limited(self, *, service: str, seconds: float, what: str) -> None:
        """Wait `seconds` (scaled) because `service` rate-limited `what`, or raise with `no_wait`."""
        seconds = max(seconds, 0.0)
        until = datetime.now(UTC) + timedelta(seconds=seconds)
        if self.no_wait:
            raise RateLimitError(
                f"{service} rate-limited {what} until {until.astimezone():%H:%M:%S}; run the command again "
                "then, or leave out --no-wait to wait automatically."
            )
        logger.info("%s rate-limited %s; waiting %.0fs", service, what, seconds)
        if self.on_wait:
            self.on_wait(Wait(service=service, seconds=seconds, until=until))
        self.sleep(seconds * self.scale)
