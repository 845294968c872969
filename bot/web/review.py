"""What a reviewer's actions do to the queue: each checks that the candidate is still as the page showed it
(its version, `updated_at`) in the same transaction that changes it, and goes through `bot.queue`."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.orm import Session

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


class EditRefused(QueueError):
    """The edited text does not pass the bot's filters (or cannot be edited): nothing was saved."""


def version(candidate: Candidate) -> str:
    """What a form carries to say which state of the candidate the person saw."""
    return candidate.updated_at.isoformat()


def _locked(session: Session, versions: Mapping[int, str]) -> list[Candidate]:
    """Lock each candidate (`queue.get_candidate`) and make sure none changed since the page showed it."""
    candidates = []
    for candidate_id, seen in versions.items():
        candidate = queue.get_candidate(session, candidate_id)
        if version(candidate) != seen:
            raise StaleCandidate(f"Candidate {candidate_id} changed after the page showed it (it is now "
                                 f"{candidate.status}); nothing was changed, so look at it again and decide.")
        candidates.append(candidate)
    return candidates


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
    with store.session() as session:
        _locked(session, versions)
        done = queue.approve(session, list(versions))
    return Done("approve", tuple(c.id for c in done))


def reject(store: Store, versions: Mapping[int, str], *, reason: str | None = None) -> Done:
    if not versions:
        raise QueueError("No candidate was chosen; tick the ones to reject.")
    reason = (reason or "").strip()[:MAX_REASON_CHARS] or None
    with store.session() as session:
        _locked(session, versions)
        done = queue.reject(session, list(versions), reason=reason)
    return Done("reject", tuple(c.id for c in done))


def edit_and_approve(store: Store, settings: Settings, bots: BotsFile, candidate_id: int, seen: str,
                     text: str) -> Done:
    """Replace the text after the bot's filters pass it, and approve it; a refusal changes nothing."""
    if len(text) > MAX_TEXT_CHARS:
        raise EditRefused(f"The edit was not saved: it is {len(text)} characters long; shorten it below "
                          f"{MAX_TEXT_CHARS}.")
    with store.session() as session:
        (candidate,) = _locked(session, {candidate_id: seen})
        filters = filters_for_candidate(session, settings, candidate, bots.get(candidate.bot))
        try:
            queue.edit(session, candidate_id, text, filters)
        except QueueError as error:
            raise EditRefused(str(error)) from None
        queue.approve(session, [candidate_id])
    return Done("edit", (candidate_id,))
