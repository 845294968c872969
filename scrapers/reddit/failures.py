"""What Reddit's error answers mean for a subreddit, in one sentence each, for both ways of reading it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from scrapers.errors import ScrapeError, SourceUnavailableError

SEARCH_PATH = "/subreddits/search"  # where Reddit redirects a subreddit that does not exist
APPS_PAGE = "https://www.reddit.com/prefs/apps"
DEFAULT_RESET = 60.0  # seconds to wait on a 429 that does not say how long


def subreddit_failure(subreddit: str, *, status: int, body: dict[str, Any], location: str | None = None,
                      authenticated: bool) -> ScrapeError:
    """The error for an HTTP answer other than 200 to a listing request for r/`subreddit`."""
    name = f"r/{subreddit}"
    reason = body.get("reason")
    if status in (301, 302, 307, 308):
        if location and SEARCH_PATH in location:
            return SourceUnavailableError(f"{name} does not exist; check the spelling of the subreddit's name.")
        return ScrapeError(f"Reddit redirected {name} to {location or 'another address'}; "
                           "check the subreddit's name and REDDIT_URL.")
    if status == 404:
        if reason == "banned":
            return SourceUnavailableError(f"{name} is banned by Reddit, so it has no posts to read; pick another.")
        return SourceUnavailableError(f"{name} does not exist; check the spelling of the subreddit's name.")
    if status == 403 and reason in ("private", "gold_only"):
        return SourceUnavailableError(
            f"{name} is private; only its approved members can read it, so pick another subreddit.")
    if status == 403 and reason in ("quarantined", "gated"):
        return SourceUnavailableError(
            f"{name} is {reason}; reading it needs an account that opted in on the website, "
            "so pick another subreddit.")
    if status == 401:
        return credentials_refused(status)
    if status == 403 and authenticated:
        return SourceUnavailableError(f"Reddit refused to serve {name} to this app (HTTP 403); check that the "
                                      "subreddit is public, or that REDDIT_USERNAME may read it.")
    if status == 403:
        return ScrapeError(f"Reddit refused to serve {name} to this client (HTTP 403); set REDDIT_USERNAME so the "
                           f"user agent names you, or create a script app at {APPS_PAGE} (see the README).")
    if status == 451:
        return SourceUnavailableError(f"{name} is not available where you are (HTTP 451); pick another subreddit.")
    if status >= 500:
        return ScrapeError(f"Reddit kept failing (HTTP {status}) while reading {name}; what was fetched is kept, "
                           "so run the command again later to continue.")
    return ScrapeError(f"Reddit answered HTTP {status} while reading {name}; what was fetched is kept, "
                       "so run the command again later to continue.")


def bad_json(subreddit: str) -> ScrapeError:
    return ScrapeError(f"Reddit sent a page of r/{subreddit} that is not valid JSON; what was fetched is kept, "
                       "so run the command again to continue.")


def dropped(subreddit: str, detail: object) -> ScrapeError:
    return ScrapeError(f"The connection to Reddit failed while reading r/{subreddit} ({detail}); what was fetched "
                       "is kept, so check your network and run the command again to continue.")


def credentials_refused(status: int) -> ScrapeError:
    return ScrapeError(f"Reddit refused REDDIT_CLIENT_ID and REDDIT_CLIENT_SECRET (HTTP {status}); copy both "
                       f"again from your script app at {APPS_PAGE}.")


def login_refused(error: str) -> ScrapeError:
    return ScrapeError(f"Reddit refused the login ({error}); check REDDIT_USERNAME and REDDIT_PASSWORD, and that "
                       f"the account is a developer of the script app at {APPS_PAGE}.")


def reset_seconds(headers: Mapping[str, str]) -> float:
    """Seconds until the rate-limit window resets: Reddit's x-ratelimit-reset, else Retry-After, else a minute."""
    for name in ("x-ratelimit-reset", "retry-after"):
        seconds = number(headers.get(name))
        if seconds is not None:
            return seconds
    return DEFAULT_RESET


def number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
