"""The review queue: candidates a bot may post, and what a person decides about them.

Status flow (DESIGN.md): pending -> approved -> posting -> posted; pending -> rejected; posting -> failed
(retryable); a `posting` row found after a crash becomes `unknown`, for a person to decide. A rejected candidate is
never posted unless a person approves it again (they may change their mind); its rejection then stays on record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from bot.errors import NotFoundError, QueueError
from bot.filters import CONTROLS, FilterSet, Rejection, check_controls
from bot.store.schema import Candidate, Status, utcnow
from models.sampler import Sample

# Which statuses a person may move a candidate from.
APPROVABLE = (Status.PENDING, Status.REJECTED, Status.FAILED, Status.UNKNOWN)
REJECTABLE = (Status.PENDING, Status.APPROVED, Status.FAILED, Status.UNKNOWN)
EDITABLE = (Status.PENDING, Status.APPROVED, Status.REJECTED, Status.FAILED)
READY = (Status.PENDING, Status.APPROVED)  # what counts towards a bot's queue_size


@dataclass(frozen=True)
class SamplingRecord:
    """How a batch of candidates was sampled; stored with each one."""

    model: str
    temperature: float
    top_k: int
    top_p: float
    prefix: str | None
    seed: int | None


def enqueue(session: Session, bot: str, samples: Iterable[Sample], sampling: SamplingRecord,
            plausibility: Mapping[int, float] | None = None) -> list[Candidate]:
    """Queue `samples` as pending; `plausibility` maps a sample's position to its reader's score."""
    now = utcnow()
    scores = plausibility or {}
    rows = [
        Candidate(bot=bot, model=sampling.model, text=s.text, sampled_text=s.text, temperature=sampling.temperature,
                  top_k=sampling.top_k, top_p=sampling.top_p, prefix=sampling.prefix, seed=sampling.seed,
                  logprob=s.logprob, tokens=s.tokens, status=Status.PENDING, created_at=now, updated_at=now,
                  plausibility=scores.get(i))
        for i, s in enumerate(samples)
    ]
    session.add_all(rows)
    session.flush()
    return rows


def ready_count(session: Session, bot: str) -> int:
    """The bot's candidates that count towards its `queue_size`: pending and approved ones."""
    return session.scalar(select(func.count()).select_from(Candidate).where(
        Candidate.bot == bot, Candidate.status.in_(READY))) or 0


def existing_texts(session: Session, bot: str, *, excluding: int | None = None) -> list[str]:
    """Every text this bot has queued, posted or had rejected: a repeat of any of them is a duplicate."""
    query = select(Candidate.text).where(Candidate.bot == bot)
    if excluding is not None:
        query = query.where(Candidate.id != excluding)
    return list(session.scalars(query))


def best_first() -> tuple[object, ...]:
    """The order that shows the most plausible candidates first: by the reader's score, then (where no base model
    scored them) by the model's own mean log-probability per token, then oldest first."""
    own = Candidate.logprob / case((Candidate.tokens > 0, Candidate.tokens), else_=1)
    return (Candidate.plausibility.desc().nulls_last(), own.desc(), Candidate.id)


def score(c: Candidate) -> float:
    """A candidate's one score, shown under this name and rounded alike (`SCORE_FORMAT`) in the CLI, its JSON and the
    review page: the base model's plausibility (its mean log-probability per piece, `models.scoring`) where the base
    scored the candidate, else the bot's own model's mean log-probability per token. Higher reads more like real
    text; `best_first` sorts by it (scored by the base before scored by the bot's own model)."""
    if c.plausibility is not None:
        return c.plausibility
    return c.logprob / max(c.tokens, 1)


SCORE_FORMAT = "{:.2f}"


def list_candidates(session: Session, *, status: str | None = None, bot: str | None = None,
                    limit: int | None = None) -> list[Candidate]:
    """Pending candidates best first (`best_first`); a listing of other or all statuses in id order."""
    query = select(Candidate).order_by(*(best_first() if status == Status.PENDING else (Candidate.id,)))
    if status:
        query = query.where(Candidate.status == Status(status))
    if bot:
        query = query.where(Candidate.bot == bot)
    if limit:
        query = query.limit(limit)
    return list(session.scalars(query))


def count_candidates(session: Session, *, status: str | None = None, bot: str | None = None) -> int:
    query = select(func.count()).select_from(Candidate)
    if status:
        query = query.where(Candidate.status == Status(status))
    if bot:
        query = query.where(Candidate.bot == bot)
    return session.scalar(query) or 0


def get_candidate(session: Session, candidate_id: int) -> Candidate:
    """The candidate as the database holds it now, locked where the database can (PostgreSQL); one this session had
    read at another version changed meanwhile (`CandidateChanged`)."""
    try:
        candidate = session.get(Candidate, candidate_id, with_for_update=True, populate_existing=True)
    except StaleDataError:
        raise CandidateChanged(candidate_id, _current(session, [candidate_id])[candidate_id][0]) from None
    if candidate is None:
        raise NotFoundError(f"There is no candidate {candidate_id}; `bot queue list` shows the queue.")
    return candidate


class CandidateChanged(QueueError):
    """Another process (a person, the scheduler) changed the candidate after it was read: nothing was changed."""

    def __init__(self, candidate_id: int, status: str) -> None:
        self.candidate_id, self.status = candidate_id, status
        super().__init__(f"Candidate {candidate_id} changed while this was being done (it is now {status}); nothing "
                         "was changed, so look at it again and decide.")


def _current(session: Session, ids: Iterable[int]) -> dict[int, tuple[str, int]]:
    """(status, version) of each candidate as committed now, read on a connection of its own: the session's
    transaction has failed and must roll back (the caller's `store.session()` does)."""
    with session.get_bind().connect() as connection:
        rows = connection.execute(select(Candidate.id, Candidate.status, Candidate.version)
                                  .where(Candidate.id.in_(list(ids)))).all()
    found = {i: (status, version) for i, status, version in rows}
    return {i: found.get(i, ("deleted", -1)) for i in ids}


def _save(session: Session, candidates: Sequence[Candidate]) -> None:
    """Write the changes to `candidates` as compare-and-sets on the versions read (`Candidate.version`): one that
    another process changed meanwhile, on any database, raises instead of overwriting its change."""
    read = {c.id: c.version for c in candidates}  # a failed flush expires the objects
    try:
        session.flush()
    except StaleDataError:
        now = _current(session, read)
        lost = next((i for i in read if now[i][1] != read[i]), next(iter(read)))
        raise CandidateChanged(lost, now[lost][0]) from None


def _move(session: Session, ids: Sequence[int], allowed: tuple[Status, ...], to: Status,
          change: Callable[[Candidate, str], None] | None = None,
          expected: Mapping[int, int] | None = None) -> list[Candidate]:
    """Move every candidate or none: one that may not move, or that changed since it was read (or since the
    version in `expected` was shown to a person), stops the whole command before anything changes.
    `change(candidate, old_status)` finishes each move."""
    candidates = [get_candidate(session, i) for i in ids]
    for c in candidates:
        if expected is not None and c.version != expected.get(c.id):
            raise CandidateChanged(c.id, c.status)
        if c.status not in allowed and c.status != to:
            raise QueueError(
                f"Candidate {c.id} is {c.status} and cannot become {to}; only {', '.join(allowed)} candidates can."
            )
    now = utcnow()
    for c in candidates:
        old = c.status
        c.status, c.updated_at = to, now
        if change:
            change(c, old)
    _save(session, candidates)
    return candidates


def approve(session: Session, ids: Sequence[int], *, expected: Mapping[int, int] | None = None) -> list[Candidate]:
    """Approve candidates; review-mode bots post them in the order they were approved (the order of `ids`). A
    rejected candidate may be approved again (a person may change their mind), and its rejection stays visible in
    its reason."""
    order: dict[int, int] = {}
    for position, candidate_id in enumerate(ids):
        order.setdefault(candidate_id, position)

    def approved_now(c: Candidate, old: str) -> None:
        c.reason = approved_again(c.reason) if old == Status.REJECTED else None
        c.retry_at = None
        c.approved_at = c.updated_at + timedelta(microseconds=order[c.id])  # the order asked for

    return _move(session, ids, APPROVABLE, Status.APPROVED, approved_now, expected)


def approved_again(rejection: str | None) -> str:
    """The reason an approved-again candidate keeps: the rejection a person overruled."""
    return f"approved again after rejection (was: {rejection or 'rejected'})"


def reject(session: Session, ids: Sequence[int], *, reason: str | None = None,
           expected: Mapping[int, int] | None = None) -> list[Candidate]:
    """Reject candidates; they are kept, and never posted unless approved again."""
    def set_reason(c: Candidate, old: str) -> None:
        c.reason, c.retry_at = reason or "rejected by a reviewer", None

    return _move(session, ids, REJECTABLE, Status.REJECTED, set_reason, expected)


def edit(session: Session, candidate_id: int, text: str, filters: FilterSet | None, *,
         expected: int | None = None) -> Candidate:
    """Replace the text after the filters pass it (the candidate's own old text does not count as a duplicate);
    without filters, a text with a control character is still refused."""
    candidate = get_candidate(session, candidate_id)
    if expected is not None and candidate.version != expected:
        raise CandidateChanged(candidate_id, candidate.status)
    if candidate.status not in EDITABLE:
        raise QueueError(f"Candidate {candidate.id} is {candidate.status} and can no longer be edited.")
    text = text.strip()
    if filters is not None:
        rejection = filters.check(text)
    else:  # no filters, but never a control character (the filters check that first)
        reason = check_controls(text)
        rejection = Rejection(CONTROLS, reason) if reason else None
    if rejection:
        raise QueueError(f"The edit was not saved: the {rejection.filter} filter rejects it ({rejection.reason}).")
    candidate.text, candidate.updated_at = text, utcnow()
    _save(session, [candidate])
    return candidate


def candidate_json(c: Candidate) -> dict[str, object]:
    def iso(value: datetime | None) -> str | None:
        return value.isoformat() if value else None

    return {
        "id": c.id, "bot": c.bot, "model": c.model, "status": c.status, "text": c.text,
        "sampled_text": c.sampled_text, "edited": c.text != c.sampled_text, "logprob": round(c.logprob, 4),
        "score": float(SCORE_FORMAT.format(score(c))),
        "plausibility": None if c.plausibility is None else round(c.plausibility, 4),
        "tokens": c.tokens, "temperature": c.temperature, "top_k": c.top_k, "top_p": c.top_p, "prefix": c.prefix,
        "seed": c.seed, "reason": c.reason, "created_at": iso(c.created_at), "updated_at": iso(c.updated_at),
        "posted_at": iso(c.posted_at), "remote_id": c.remote_id, "remote_url": c.remote_url, "attempts": c.attempts,
        "approved_at": iso(c.approved_at), "claimed_at": iso(c.claimed_at), "retry_at": iso(c.retry_at),
        "version": c.version,
    }
