"""Output filters: small named predicates that keep a generated text or say, in one line, why they reject it.

Each filter takes the candidate text and returns None (keep) or its reason. `FilterSet` runs them in
FILTER_NAMES order, stops at the first that rejects, and wraps the reason in a `Rejection` that names the
filter, so the queue and the review page can show it and the CLI can count rejections per filter.
"""

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.novelty import NoveltyCheck, normalize, split_words
from bot.platforms import URL_PATTERN, Platform
from bot.platforms import platform as platform_named
from scrapers.text import CONTROL, printable

logger = logging.getLogger(__name__)

Predicate = Callable[[str], str | None]  # a filter: the text in, None (keep) or the reason it rejects out

CONTROLS = "controls"  # the filter that always runs, first: no post may hold a control character
FILTER_NAMES = (CONTROLS, "length", "novelty", "duplicate", "blocklist", "mentions", "links")  # the order they run in
# Each platform's length limit, how it counts, and whether it allows mentions and links: `bot.platforms`.
MENTION_PATTERN = re.compile(r"(?<![\w.+-])@\w+")  # "@name", but not the "@" inside an e-mail address

# Words a public bot must not post, whatever its corpus says: strong profanity and slurs, each inflection
# listed because terms match whole words only. Deliberately short; extend it with `blocklist`, or turn it off
# with `default_blocklist = false`.
DEFAULT_BLOCKLIST: tuple[str, ...] = (
    "fuck", "fucks", "fucked", "fucker", "fuckers", "fucking", "motherfucker", "motherfuckers",
    "cunt", "cunts",
    "nigger", "niggers", "nigga", "niggas",
    "faggot", "faggots", "fag", "fags",
    "retard", "retards", "retarded",
    "kike", "kikes", "spic", "spics", "chink", "chinks", "gook", "gooks",
    "wetback", "wetbacks", "paki", "pakis", "tranny", "trannies",
)  # fmt: skip


@dataclass(frozen=True)
class Rejection:
    """Why a filter rejected a text: the filter's name and a one-line reason for people."""

    filter: str
    reason: str


@dataclass
class FilterReport:
    """What `FilterSet.apply` did with a batch: texts kept in order, texts rejected and why, counts."""

    accepted: list[str] = field(default_factory=list)
    rejected: list[tuple[str, Rejection]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)  # every filter of the set, 0 when it rejected none


class FilterConfig(BaseModel):
    """A bot's filter settings: `[bot.filters]` in bots.toml."""

    model_config = ConfigDict(extra="forbid")  # a misspelt option is an error, not silently ignored

    min_words: int = Field(default=3, ge=1)  # words, counted as the novelty index counts them
    max_chars: int | None = Field(default=None, ge=1)  # as the platform counts; None: its limit (never above it)
    novelty: bool = True  # reject copies of the corpus (when a novelty index is given)
    blocklist: list[str] = []  # words or phrases, added to DEFAULT_BLOCKLIST
    default_blocklist: bool = True  # include DEFAULT_BLOCKLIST
    allow_mentions: bool | None = None  # None: the platform's default (bot.platforms)
    allow_links: bool | None = None  # None: the platform's default (bot.platforms)

    @field_validator("blocklist")
    @classmethod
    def _terms_have_words(cls, terms: list[str]) -> list[str]:
        if any(not term.strip() for term in terms):
            raise ValueError("a blocklist term is empty; remove it")
        return terms


def platform_length(text: str, *, platform: str) -> int:
    """Characters `text` counts as on `platform` (on X every link counts as 23)."""
    return platform_named(platform).length(text)


def check_controls(text: str) -> str | None:
    """Reject a text with a C0 or C1 control character other than tab and newline (scrapers.text's rule): an
    escape sequence in a post would drive the terminal of whoever reads it there, or here."""
    match = CONTROL.search(text)
    return None if match is None else f"contains the control character {printable(match.group(0))}"


def check_length(text: str, *, min_words: int, max_chars: int | None, platform: str) -> str | None:
    """Reject a text with fewer than `min_words` words, or longer than `max_chars` as the platform counts."""
    words = len(split_words(text))
    if words < min_words:
        return f"has {words} word{'' if words == 1 else 's'} (minimum {min_words})"
    if max_chars is None:
        return None
    where = platform_named(platform)
    length = where.length(text)
    return f"is {length} {where.unit} long (limit {max_chars})" if length > max_chars else None


def check_blocklist(text: str, *, pattern: re.Pattern[str]) -> str | None:
    """Reject a text that contains a blocked word or phrase (`blocklist_pattern`)."""
    match = pattern.search(text)
    if match is None:
        return None
    return f"contains the blocked term {' '.join(match.group(0).casefold().split())!r}"


def check_mentions(text: str) -> str | None:
    """Reject a text that @mentions someone."""
    match = MENTION_PATTERN.search(text)
    return None if match is None else f"mentions {match.group(0)}"


def check_links(text: str) -> str | None:
    """Reject a text that contains a link."""
    match = URL_PATTERN.search(text)
    return None if match is None else f"contains the link {match.group(0)}"


def blocklist_pattern(terms: Iterable[str]) -> re.Pattern[str] | None:
    """One regex for `terms`: case-insensitive, whole words only ("ass" misses "class"), any spacing."""
    phrases = {r"\s+".join(map(re.escape, term.split())) for term in terms}
    alternatives = sorted(phrases, key=len, reverse=True)  # longest first, so a phrase beats its first word
    if not alternatives:
        return None
    # Lookarounds, not \b, so that terms starting or ending in punctuation ("a$$") still match whole.
    return re.compile(rf"(?<!\w)(?:{'|'.join(alternatives)})(?!\w)", re.IGNORECASE)


class FilterSet:
    """The filters for one bot and platform, in order; remembers the texts it accepts, for the duplicate rule.

    `existing`: texts already queued or posted for the bot. To re-check a human edit of a queued candidate,
    leave that candidate's own old text out of `existing`, or the edit would count as a duplicate of itself.
    """

    def __init__(
        self,
        config: FilterConfig,
        *,
        platform: str,
        novelty: NoveltyCheck | None = None,
        existing: Iterable[str] = (),
    ) -> None:
        where = platform_named(platform)  # ConfigError for an unknown one
        self._existing = {normalize(text) for text in existing}  # normalised texts queued or posted
        self._batch: set[str] = set()  # normalised texts accepted by this set
        self._filters = self._active_filters(config, platform=where, novelty=novelty)
        self.names: tuple[str, ...] = tuple(name for name, _ in self._filters)  # only the filters that run

    def check(self, text: str) -> Rejection | None:
        """The first filter's rejection of `text`, or None to keep it; does not remember `text`."""
        for name, predicate in self._filters:
            reason = predicate(text)
            if reason is not None:
                return Rejection(name, reason)
        return None

    def accept(self, text: str) -> Rejection | None:
        """Like `check`, and a kept text is remembered, so a later copy in the batch counts as a duplicate."""
        rejection = self.check(text)
        if rejection is None:
            self._batch.add(normalize(text))
        else:
            logger.debug("Rejected by %s (%s): %r", rejection.filter, rejection.reason, text)
        return rejection

    def apply(self, texts: Iterable[str]) -> FilterReport:
        """Run every text through `accept`, in order."""
        report = FilterReport(counts=dict.fromkeys(self.names, 0))
        for text in texts:
            rejection = self.accept(text)
            if rejection is None:
                report.accepted.append(text)
            else:
                report.rejected.append((text, rejection))
                report.counts[rejection.filter] += 1
        return report

    def _check_duplicate(self, text: str) -> str | None:
        """Reject a text already queued or posted, or accepted earlier in this batch, once normalised."""
        normalized = normalize(text)
        if normalized in self._existing:
            return "repeats a text already queued or posted"
        if normalized in self._batch:
            return "repeats a text accepted earlier in this batch"
        return None

    def _active_filters(
        self, config: FilterConfig, *, platform: Platform, novelty: NoveltyCheck | None
    ) -> list[tuple[str, Predicate]]:
        """(name, predicate) for each filter the config and platform turn on, in FILTER_NAMES order."""
        max_chars = _max_chars(config, platform=platform)
        length = partial(check_length, min_words=config.min_words, max_chars=max_chars, platform=platform.name)
        filters: list[tuple[str, Predicate]] = [(CONTROLS, check_controls), ("length", length)]
        if config.novelty and novelty is not None:
            filters.append(("novelty", novelty.check))
        filters.append(("duplicate", self._check_duplicate))
        terms = [*(DEFAULT_BLOCKLIST if config.default_blocklist else ()), *config.blocklist]
        pattern = blocklist_pattern(terms)
        if pattern is not None:
            filters.append(("blocklist", partial(check_blocklist, pattern=pattern)))
        if not _allowed(config.allow_mentions, platform.mentions_allowed):
            filters.append(("mentions", check_mentions))
        if not _allowed(config.allow_links, platform.links_allowed):
            filters.append(("links", check_links))
        return filters


def _max_chars(config: FilterConfig, *, platform: Platform) -> int | None:
    """The length limit in force: the configured one, but never above what the platform accepts."""
    limits = [limit for limit in (config.max_chars, platform.max_length) if limit is not None]
    return min(limits, default=None)


def _allowed(configured: bool | None, platform_default: bool) -> bool:
    """The configured choice, or the platform's default where the config leaves it unset."""
    return platform_default if configured is None else configured
