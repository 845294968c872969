"""Reddit listings: `Listing` JSON of `t3` things to documents, leaving out what should not be learned from."""

from __future__ import annotations

import html
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from scrapers.documents import Document, Page
from scrapers.errors import ScrapeError

REDDIT_SOURCE = "reddit"
POST_KIND = "t3"  # Reddit's "thing" prefix for a post (a submission)
GONE_TEXTS = ("[removed]", "[deleted]")  # what Reddit puts in place of a removed or deleted post's text
# Reasons a post is read but not stored, as the summaries name them.
STICKIED, REMOVED, NSFW = "stickied", "removed", "nsfw"


@dataclass(frozen=True, slots=True)
class ListingPage:
    page: Page
    after: str | None  # the fullname to pass as `after` for the next page; None at the end


def parse_listing(payload: Any, *, where: str, reddit_url: str, with_body: bool,
                  include_nsfw: bool) -> ListingPage:
    """One page of a subreddit listing; `ScrapeError` if it is not a Listing of posts."""
    data = payload.get("data") if isinstance(payload, dict) and payload.get("kind") == "Listing" else None
    children = data.get("children") if isinstance(data, dict) else None
    if not isinstance(data, dict) or not isinstance(children, list):
        raise ScrapeError(f"Reddit answered {where} with something other than a listing of posts; "
                          "try again later, and check REDDIT_URL and REDDIT_OAUTH_URL if it persists.")
    documents: list[Document] = []
    skipped: Counter[str] = Counter()
    posts = [child.get("data") for child in children if isinstance(child, dict) and child.get("kind") == POST_KIND]
    for post in posts:
        if not isinstance(post, dict) or not post.get("id"):
            raise ScrapeError(f"Reddit answered {where} with a post that has no id; try again later.")
        reason = skip_reason(post, include_nsfw=include_nsfw)
        if reason:
            skipped[reason] += 1
        else:
            documents.append(to_document(post, reddit_url=reddit_url, with_body=with_body))
    after = data.get("after") if isinstance(data.get("after"), str) and data.get("after") else None
    return ListingPage(page=Page(documents=tuple(documents), fetched=len(posts), skipped=dict(skipped)),
                       after=after)


def skip_reason(post: dict[str, Any], *, include_nsfw: bool) -> str | None:
    """Why a post is not stored, or None to store it.

    Stickied posts are the moderators' announcements, not the community's voice. Removed and deleted posts are
    left out out of respect for that decision (their text is often gone anyway). A post whose author deleted
    their account but not the post is kept: it is still public, and it is still the community's writing.
    """
    if post.get("stickied"):
        return STICKIED
    if post.get("removed_by_category") or post.get("title") in GONE_TEXTS or post.get("selftext") in GONE_TEXTS:
        return REMOVED
    if post.get("over_18") and not include_nsfw:
        return NSFW
    return None


def to_document(post: dict[str, Any], *, reddit_url: str, with_body: bool) -> Document:
    # raw_json=1 asks Reddit not to HTML-escape, but older mirrors and the legacy API do: unescape regardless.
    text = html.unescape(str(post.get("title") or "")).strip()
    body = html.unescape(str(post.get("selftext") or "")).strip()
    if with_body and post.get("is_self") and body:
        text = f"{text}\n\n{body}"
    author = post.get("author")
    created = post.get("created_utc")
    score = post.get("score")
    permalink = post.get("permalink")
    url = reddit_url.rstrip("/") + permalink if isinstance(permalink, str) and permalink.startswith("/") else None
    return Document(
        source=REDDIT_SOURCE,
        external_id=str(post["id"]),
        text=text,
        author=author if isinstance(author, str) and author not in GONE_TEXTS else None,
        created_at=datetime.fromtimestamp(created, UTC) if isinstance(created, (int, float)) else None,
        score=int(score) if isinstance(score, (int, float)) and not isinstance(score, bool) else None,
        url=url,
    )
