"""What a reviewer's actions do to the queue: each changes a candidate only if it is still as the page showed it
(its version, compared and set in the statement that changes it, `bot.queue`)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass

from bot import queue
from bot.config import BotsFile, Settings
from bot.errors import QueueError
from bot.generation import filters_for_candidate
from bot.store import Store
from bot.store.schema import Candidate

ACTIONS = ("approve", "reject", "edit")  # what the page's `action` buttons may ask for
BULK_ACTIONS = ("approve", "reject")
MAX_REASON_CHARS = 500  # characters of a rejection reason kept
MAX_TEXT_CHARS = 10_000  # characters of an edited text accepted (every platform's limit is far below)


class StaleCandidate(QueueError):
    """The candidate changed after the page showed it: the action was not taken."""

    def __init__(self, changed: queue.CandidateChanged) -> None:
        super().__init__(f"Candidate {changed.candidate_id} changed after the page showed it (it is now "
                         f"{changed.status}); nothing was changed, so look at it again and decide.")


class EditRefused(QueueError):
    """The edited text does not pass the bot's filters (or cannot be edited): nothing was saved."""


def version(candidate: Candidate) -> str:
    """What a form carries to say which state of the candidate the person saw."""
    return str(candidate.version)


def _versions(seen: Mapping[int, str]) -> dict[int, int]:
    """The versions a form says the person saw; one that is not a version matches no candidate."""
    return {candidate_id: int(v) if v.isdigit() and len(v) < 10 else -1 for candidate_id, v in seen.items()}


@contextmanager
def _as_the_page_showed() -> Iterator[None]:
    """A candidate that changed after the page showed it is told in the page's words (`StaleCandidate`)."""
    try:
        yield
    except queue.CandidateChanged as changed:
        raise StaleCandidate(changed) from None


@dataclass(frozen=True)
class Done:
    """What an action changed, for the page's message."""

    action: str
    ids: tuple[int, ...]

    @property
    def message(self) -> str:
        verb = {"approve": "Approved", "reject": "Rejected", "edit": "Edited and approved"}[self.action]
        noun = "candidate" if len(self.ids) == 1 else "candidates"
        return f"{verb} {noun} {', '.join(map(str, self.ids))}."


def approve(store: Store, versions: Mapping[int, str]) -> Done:
    if not versions:
        raise QueueError("No candidate was chosen; tick the ones to approve.")
    with _as_the_page_showed(), store.session() as session:
        done = queue.approve(session, list(versions), expected=_versions(versions))
    return Done("approve", tuple(c.id for c in done))


def reject(store: Store, versions: Mapping[int, str], *, reason: str | None = None) -> Done:
    if not versions:
        raise QueueError("No candidate was chosen; tick the ones to reject.")
    reason = (reason or "").strip()[:MAX_REASON_CHARS] or None
    with _as_the_page_showed(), store.session() as session:
        done = queue.reject(session, list(versions), reason=reason, expected=_versions(versions))
    return Done("reject", tuple(c.id for c in done))


def edit_and_approve(store: Store, settings: Settings, bots: BotsFile, candidate_id: int, seen: str,
                     text: str) -> Done:
    """Replace the text after the bot's filters pass it, and approve it; a refusal changes nothing."""
    if len(text) > MAX_TEXT_CHARS:
        raise EditRefused(f"The edit was not saved: it is {len(text)} characters long; shorten it below "
                          f"{MAX_TEXT_CHARS}.")
    with _as_the_page_showed(), store.session() as session:
        candidate = queue.get_candidate(session, candidate_id)
        filters = filters_for_candidate(session, settings, candidate, bots.get(candidate.bot))
        try:
            queue.edit(session, candidate_id, text, filters, expected=_versions({candidate_id: seen})[candidate_id])
        except queue.CandidateChanged:
            raise
        except QueueError as error:
            raise EditRefused(str(error)) from None
        queue.approve(session, [candidate_id], expected={candidate_id: candidate.version})
    return Done("edit", (candidate_id,))
