"""Posting a candidate at most once: claim it in its own transaction, call the platform, record what happened.

The claim is a conditional update (`approved -> posting`, with owner and time) committed before the platform is
called, inside a transaction that first locks the bot's `bot_states` row: claims of one bot are serialised on
SQLite and PostgreSQL alike, so the daily cap and the choice of candidate cannot race. After the call, the
outcome is recorded by another conditional update that only the claimant's `posting` row matches:

    posted          the platform said where the post is
    failed          nothing was posted: a transient error (retried with backoff), a rate limit (retried when it
                    ends; the bot posts nothing else before then), or the platform's refusal (a person decides)
    unknown         the post may exist (timeout after sending, dropped connection, 5xx): never re-posted by
                    itself; `reconcile` looks for it among the account's recent posts
    (back)          the platform refused the account, not the post: the candidate returns to where it was

A `posting` row whose process died (same host, pid gone) or that is older than STALE_POSTING becomes `unknown`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, or_, select, update
from sqlalchemy.orm import Session

from bot.config import BotConfig, BotsFile, Settings
from bot.errors import BotError, NotFoundError, QueueError
from bot.filters import CONTROLS, FilterSet, Rejection, check_controls
from bot.platforms import platform
from bot.processes import owner_gone, process_owner
from bot.publishers import Outcome, Posted, Publisher, PublishError, open_publisher
from bot.publishers.base import PostKey
from bot.queue import best_first
from bot.store import Store, insert_ignoring_conflict
from bot.store.schema import BotState, Candidate, Status, utcnow

logger = logging.getLogger(__name__)

MAX_POST_ATTEMPTS = 5  # transient failures of one candidate before it waits for a person
RETRY_BASE_SECONDS = 60.0  # first retry after a transient failure; doubles each attempt (times BOT_SLEEP_SCALE)
RETRY_MAX_SECONDS = 3600.0  # and never waits longer than this
ACCOUNT_WAIT_SECONDS = 300.0  # an account or destination that refuses every post is tried again after this
STALE_POSTING = timedelta(minutes=10)  # a `posting` row this old is `unknown` whoever holds it (HTTP times out in 40 s)
RECONCILE_POSTS = 100  # the account's latest posts that reconcile searches
RECONCILE_SLACK = timedelta(minutes=10)  # a post made this long before the claim can still match (clock skew)
CLAIM_TRIES = 20  # candidates one claim may pass over (rejected by the filters, or taken meanwhile)
IN_FLIGHT = (Status.POSTING, Status.POSTED, Status.UNKNOWN)  # what the daily cap counts
BY_HAND = (Status.APPROVED, Status.PENDING, Status.FAILED)  # what `bot post ID` may post

Check = Callable[[Candidate], Rejection | None]  # the filters a candidate must still pass when it is posted


@dataclass(frozen=True)
class Claim:
    candidate_id: int
    text: str
    previous: str  # the status it was claimed from
    attempts: int  # including this one
    key: PostKey  # the same for every claim of this candidate's text (`PostKey`)


@dataclass(frozen=True)
class Skip:
    """Why nothing was claimed: `cap` (the day's posts are made), `waiting` (a rate limit), `empty`."""

    reason: str
    message: str
    until: datetime | None = None  # when posting can go on, for `cap` and `waiting`


@dataclass
class PostOutcome:
    """What one post attempt did, for logs, `bot post` and the scheduler."""

    bot: str
    status: str  # posted, failed, unknown, or the candidate's old status (account refused); or a Skip reason
    message: str
    candidate_id: int | None = None
    url: str | None = None
    retry_at: datetime | None = None  # when the bot's post job should run again

    @property
    def posted(self) -> bool:
        return self.status == Status.POSTED


# ---- the day and the lock


def day_start(now: datetime, timezone: str) -> datetime:
    """Midnight of `now`'s day in `timezone`, in UTC."""
    local = now.astimezone(ZoneInfo(timezone))
    return local.replace(hour=0, minute=0, second=0, microsecond=0).astimezone(UTC)


def next_day_start(now: datetime, timezone: str) -> datetime:
    local = now.astimezone(ZoneInfo(timezone)).date() + timedelta(days=1)
    return datetime(local.year, local.month, local.day, tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def posts_today(session: Session, bot: BotConfig, now: datetime) -> int:
    """Posts of `bot` claimed since midnight in its time zone: posted, being posted, or of unknown outcome."""
    return session.scalar(select(func.count()).select_from(Candidate).where(
        Candidate.bot == bot.name, Candidate.status.in_(IN_FLIGHT),
        Candidate.claimed_at >= day_start(now, bot.schedule.timezone))) or 0


def lock_bot(session: Session, bot: str) -> BotState:
    """Lock `bot`'s state row for the rest of the transaction (creating it if need be) and return it.

    An UPDATE first: on PostgreSQL it takes the row lock, on SQLite the write lock, before anything is read, so
    two claimants never act on the same snapshot.
    """
    bump = update(BotState).where(BotState.bot == bot).values(claims=BotState.claims + 1)
    bump = bump.execution_options(synchronize_session=False)
    if session.execute(bump).rowcount == 0:  # type: ignore[attr-defined]
        insert_ignoring_conflict(session, BotState, {"bot": bot, "claims": 0})
        session.execute(bump)
    state = session.get(BotState, bot, populate_existing=True)
    assert state is not None
    return state


# ---- choosing and claiming


def _eligible(bot: BotConfig, now: datetime) -> list[object]:
    retryable = and_(Candidate.status == Status.FAILED, Candidate.retry_at.is_not(None), Candidate.retry_at <= now)
    return [Candidate.bot == bot.name, or_(Candidate.status == Status.APPROVED, retryable)]


def next_candidate(session: Session, bot: BotConfig, now: datetime, *,
                   skip: set[int] | None = None) -> Candidate | None:
    """What `bot` posts next: approved ones (and failed ones due for a retry) in the order a person approved them;
    for an autonomous bot, when there are none, the best pending one by `rank_by`."""
    query = select(Candidate).where(*_eligible(bot, now))
    if skip:
        query = query.where(Candidate.id.not_in(skip))
    found = session.scalars(query.order_by(func.coalesce(Candidate.approved_at, Candidate.created_at),
                                           Candidate.id).limit(1)).first()
    if found is not None or bot.mode != "autonomous":
        return found
    own = (Candidate.logprob / case((Candidate.tokens > 0, Candidate.tokens), else_=1)).desc()
    rank = {"plausibility": best_first(), "mean_logprob": (own, Candidate.id),
            "logprob": (Candidate.logprob.desc(), Candidate.id),
            "oldest": (Candidate.created_at.asc(), Candidate.id)}[bot.rank_by]
    query = select(Candidate).where(Candidate.bot == bot.name, Candidate.status == Status.PENDING)
    if skip:
        query = query.where(Candidate.id.not_in(skip))
    return session.scalars(query.order_by(*rank).limit(1)).first()


def _blocked(session: Session, state: BotState, bot: BotConfig, now: datetime) -> Skip | None:
    if state.post_not_before is not None and state.post_not_before > now:
        return Skip("waiting", f"{state.wait_reason or 'the platform asked to wait'}; posting resumes at "
                    f"{state.post_not_before:%Y-%m-%d %H:%M:%S} UTC", state.post_not_before)
    done = posts_today(session, bot, now)
    if done >= bot.daily_cap:
        until = next_day_start(now, bot.schedule.timezone)
        return Skip("cap", f"bot {bot.name!r} has made its {bot.daily_cap} posts of the day (daily_cap); the next "
                    f"can go out after midnight {bot.schedule.timezone}", until)
    return None


def claim(store: Store, bot: BotConfig, *, owner: str, now: datetime | None = None, candidate_id: int | None = None,
          check: Check | None = None) -> Claim | Skip:
    """Claim `candidate_id`, or the bot's next candidate, for posting: committed before this returns.

    `check` (autonomous bots) re-runs the filters: a candidate they reject now is marked `rejected` and the
    next one is tried.
    """
    now = now or utcnow()
    passed: set[int] = set()
    for _ in range(CLAIM_TRIES):
        with store.session() as session:
            state = lock_bot(session, bot.name)
            blocked = _blocked(session, state, bot, now)
            if blocked:
                return blocked
            candidate = _by_hand(session, bot, candidate_id) if candidate_id else next_candidate(
                session, bot, now, skip=passed)
            if candidate is None:
                return Skip("empty", nothing_to_post(session, bot))
            passed.add(candidate.id)
            rejection = check(candidate) if check else None
            if rejection is not None:
                _reject_at_post_time(session, candidate, rejection, now)
                continue
            previous = candidate.status
            won = session.execute(
                update(Candidate).where(Candidate.id == candidate.id, Candidate.status == previous,
                                        Candidate.version == candidate.version)  # edited meanwhile: not this text
                .values(status=Status.POSTING, version=Candidate.version + 1, claimed_by=owner, claimed_at=now,
                        attempts=Candidate.attempts + 1,
                        approved_at=func.coalesce(Candidate.approved_at, now), retry_at=None, updated_at=now)
                .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
            if won == 1:
                key = PostKey(bot.name, candidate.id, candidate.text, candidate.created_at)
                return Claim(candidate.id, candidate.text, previous, candidate.attempts + 1, key)
        if candidate_id:  # changed by someone else (a person, the review page) between the read and the update
            raise QueueError(f"Candidate {candidate_id} changed while it was being claimed; look at it again "
                             "with `bot queue list`.")
    return Skip("empty", f"bot {bot.name!r}: no candidate could be claimed after {CLAIM_TRIES} tries")


def _by_hand(session: Session, bot: BotConfig, candidate_id: int) -> Candidate:
    candidate = session.get(Candidate, candidate_id, populate_existing=True)
    if candidate is None or candidate.bot != bot.name:
        raise NotFoundError(f"Bot {bot.name!r} has no candidate {candidate_id}; `bot queue list --bot {bot.name}` "
                            "shows its queue.")
    if candidate.status == Status.UNKNOWN:
        raise QueueError(f"Candidate {candidate_id} may already be posted (its outcome is unknown); run `bot queue "
                         "reconcile`, or approve it again with `bot queue approve` if you know it is not.")
    if candidate.status not in BY_HAND:
        raise QueueError(f"Candidate {candidate_id} is {candidate.status}; only {', '.join(BY_HAND)} candidates can "
                         "be posted.")
    return candidate


def _reject_at_post_time(session: Session, candidate: Candidate, rejection: Rejection, now: datetime) -> None:
    reason = f"{rejection.filter}: {rejection.reason} (checked when posting)"
    session.execute(update(Candidate).where(Candidate.id == candidate.id, Candidate.version == candidate.version)
                    .values(status=Status.REJECTED, reason=reason, updated_at=now, version=Candidate.version + 1)
                    .execution_options(synchronize_session=False))
    logger.info("bot %s: candidate %d rejected when posting: %s", candidate.bot, candidate.id, reason)


# ---- posting


def post_next(store: Store, settings: Settings, bot: BotConfig, *, candidate_id: int | None = None,
              publisher: Publisher | None = None, owner: str | None = None) -> PostOutcome:
    """Claim, publish and record one candidate of `bot` (or `candidate_id`); every step committed before the next.

    A missing credential (`ConfigError`) stops it before anything is claimed.
    """
    owner = owner or process_owner()
    own_publisher = publisher is None
    publisher = publisher or open_publisher(settings, bot)
    try:
        check = (post_time_filters(store, settings, bot) if bot.mode == "autonomous" and not candidate_id
                 else no_control_characters)
        claimed = claim(store, bot, owner=owner, candidate_id=candidate_id, check=check)
        if isinstance(claimed, Skip):
            return PostOutcome(bot.name, claimed.reason, claimed.message, retry_at=claimed.until)
        logger.info("bot %s: posting candidate %d to %s", bot.name, claimed.candidate_id, publisher.describe())
        try:
            posted = publisher.publish(claimed.text, key=claimed.key)
        except PublishError as error:
            return record_failure(store, settings, bot, claimed, error, owner=owner)
        except BaseException as error:  # Ctrl-C or a bug mid-call: the post may exist
            record_failure(store, settings, bot, claimed, PublishError(
                f"posting stopped before the platform answered ({type(error).__name__})", outcome=Outcome.UNKNOWN),
                owner=owner)
            raise
        return record_success(store, bot, claimed, posted, owner=owner)
    finally:
        if own_publisher:
            publisher.close()


def record_success(store: Store, bot: BotConfig, claimed: Claim, posted: Posted, *, owner: str) -> PostOutcome:
    now = utcnow()
    with store.session() as session:
        done = session.execute(
            update(Candidate).where(Candidate.id == claimed.candidate_id, Candidate.claimed_by == owner,
                                    Candidate.status.in_((Status.POSTING, Status.UNKNOWN)))
            .values(status=Status.POSTED, posted_at=now, remote_id=posted.remote_id, remote_url=posted.url,
                    reason=None, retry_at=None, updated_at=now, version=Candidate.version + 1)
            .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if done != 1:
        logger.error("bot %s: candidate %d was posted (%s) but changed meanwhile; its row was not updated",
                     bot.name, claimed.candidate_id, posted.url)
    logger.info("bot %s: candidate %d posted: %s", bot.name, claimed.candidate_id, posted.url)
    return PostOutcome(bot.name, Status.POSTED, f"posted candidate {claimed.candidate_id}: {posted.url}",
                       claimed.candidate_id, url=posted.url)


def retry_delay(attempts: int, *, scale: float) -> timedelta:
    """Backoff after the `attempts`-th transient failure: 1, 2, 4 … minutes, at most an hour (times `scale`)."""
    return timedelta(seconds=min(RETRY_BASE_SECONDS * 2 ** max(attempts - 1, 0), RETRY_MAX_SECONDS) * scale)


def record_failure(store: Store, settings: Settings, bot: BotConfig, claimed: Claim, error: PublishError, *,
                   owner: str) -> PostOutcome:
    """Record a failed attempt by what the error says about the post (see the module docstring)."""
    now, message = utcnow(), str(error)
    values: dict[str, object] = {"reason": message, "updated_at": now, "version": Candidate.version + 1}
    retry_at = None
    if error.outcome == Outcome.UNKNOWN:
        values["status"] = Status.UNKNOWN
    elif error.outcome == Outcome.ACCOUNT:  # not the post's fault: it goes back, and the bot waits
        values.update(status=claimed.previous, attempts=Candidate.attempts - 1)
        retry_at = now + timedelta(seconds=ACCOUNT_WAIT_SECONDS * settings.bot_sleep_scale)
    elif error.outcome == Outcome.RATE_LIMITED:
        retry_at = error.retry_at or now + retry_delay(1, scale=settings.bot_sleep_scale)
        values.update(status=Status.FAILED, retry_at=retry_at, attempts=Candidate.attempts - 1)
    elif error.outcome == Outcome.TRANSIENT and claimed.attempts < MAX_POST_ATTEMPTS:
        retry_at = now + retry_delay(claimed.attempts, scale=settings.bot_sleep_scale)
        values.update(status=Status.FAILED, retry_at=retry_at,
                      reason=f"{message} (attempt {claimed.attempts} of {MAX_POST_ATTEMPTS}; retried later)")
    elif error.outcome == Outcome.TRANSIENT:
        values.update(status=Status.FAILED, reason=f"{message} (gave up after {claimed.attempts} attempts)")
    else:
        values["status"] = Status.FAILED
    with store.session() as session:
        if error.outcome in (Outcome.RATE_LIMITED, Outcome.ACCOUNT):
            state = lock_bot(session, bot.name)
            state.post_not_before, state.wait_reason = retry_at, message
        done = session.execute(
            update(Candidate).where(Candidate.id == claimed.candidate_id, Candidate.claimed_by == owner,
                                    Candidate.status == Status.POSTING)
            .values(**values).execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    if done != 1:
        logger.error("bot %s: candidate %d changed while it was being posted; not recorded: %s", bot.name,
                     claimed.candidate_id, message)
    status = str(values["status"])
    logger.warning("bot %s: candidate %d %s: %s", bot.name, claimed.candidate_id, status, message)
    return PostOutcome(bot.name, status, f"candidate {claimed.candidate_id} {status}: {message}",
                       claimed.candidate_id, retry_at=retry_at)


def no_control_characters(candidate: Candidate) -> Rejection | None:
    """What every post is checked for, approved by a person or not: a candidate stored before the `controls`
    filter existed may hold a control character, and none may reach a platform."""
    reason = check_controls(candidate.text)
    return Rejection(CONTROLS, reason) if reason else None


def post_time_filters(store: Store, settings: Settings, bot: BotConfig) -> Check:
    """The bot's filters as they stand now (corpus, blocklist, what it has posted), for autonomous posting."""
    from bot.generation import novelty_index

    with store.session() as session:
        index = None
        if bot.filters.novelty:
            index = novelty_index(session, bot.corpus, settings.bot_home / "cache" / "novelty")
        # What is posted or in flight; the candidates checked (pending, approved, failed) are never among them.
        in_flight = list(session.scalars(select(Candidate.text).where(
            Candidate.bot == bot.name, Candidate.status.in_(IN_FLIGHT))))
    filters = FilterSet(bot.filters, platform=bot.platform, novelty=index, existing=in_flight)
    return lambda candidate: filters.check(candidate.text)


# ---- dry runs


@dataclass(frozen=True)
class Preview:
    candidate: Candidate | None
    where: str
    blocked: Skip | None
    nothing: str = ""  # why there is no candidate, where there is none


def nothing_to_post(session: Session, bot: BotConfig) -> str:
    """Why a bot has nothing to post, and for a review bot with pending candidates, what to do."""
    message = (f"bot {bot.name!r} has no {'pending or ' if bot.mode == 'autonomous' else ''}approved candidate to "
               "post")
    if bot.mode == "review":
        pending = session.scalar(select(func.count()).where(Candidate.bot == bot.name,
                                                            Candidate.status == Status.PENDING)) or 0
        if pending:
            message += (f" ({pending} pending: approve some with `bot queue approve ID` or on the review page, "
                        "`bot serve`)")
    return message


def preview(store: Store, settings: Settings, bot: BotConfig, *, candidate_id: int | None = None) -> Preview:
    """What `post_next` would send and where, changing nothing and contacting no platform."""
    now = utcnow()
    where = _where(settings, bot)
    with store.session() as session:
        state = session.get(BotState, bot.name) or BotState(bot=bot.name, claims=0)
        blocked = _blocked(session, state, bot, now)
        candidate = _by_hand(session, bot, candidate_id) if candidate_id else next_candidate(session, bot, now)
        nothing = "" if candidate is not None else nothing_to_post(session, bot)
    return Preview(candidate, where, blocked, nothing)


def _where(settings: Settings, bot: BotConfig) -> str:
    return platform(bot.platform).where(settings, bot)


# ---- crashes and reconciling


def recover_interrupted(store: Store, *, now: datetime | None = None) -> list[int]:
    """`posting` rows whose process died mid-call (or that are older than STALE_POSTING) become `unknown`."""
    now = now or utcnow()
    with store.session() as session:
        rows = session.execute(select(Candidate.id, Candidate.claimed_by, Candidate.claimed_at).where(
            Candidate.status == Status.POSTING)).all()
        moved = []
        for id_, owner, claimed_at in rows:
            if not (owner_gone(owner) or (claimed_at is not None and claimed_at < now - STALE_POSTING)):
                continue
            done = session.execute(
                update(Candidate).where(Candidate.id == id_, Candidate.status == Status.POSTING,
                                        Candidate.claimed_by == owner)
                .values(status=Status.UNKNOWN, updated_at=now, version=Candidate.version + 1,
                        reason="the process posting it stopped before the platform answered; it may or may not be "
                               "posted (`bot queue reconcile` looks for it)")
                .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
            if done:
                moved.append(id_)
    for id_ in moved:
        logger.warning("candidate %d was being posted by a process that stopped; it is now unknown", id_)
    return moved


@dataclass
class ReconcileResult:
    bot: str
    found: list[tuple[int, str]] = field(default_factory=list)  # (candidate id, url) now posted
    missing: list[int] = field(default_factory=list)  # still unknown
    error: str | None = None


def _same_text(a: str, b: str) -> bool:
    return " ".join(a.split()) == " ".join(b.split())


def reconcile(store: Store, settings: Settings, bots: BotsFile, *, bot_name: str | None = None,
              publisher_for: Callable[[BotConfig], Publisher] | None = None) -> list[ReconcileResult]:
    """Look for every `unknown` candidate among its account's recent posts: found means `posted`."""
    recover_interrupted(store)
    with store.session() as session:
        query = select(Candidate).where(Candidate.status == Status.UNKNOWN).order_by(Candidate.id)
        if bot_name:
            query = query.where(Candidate.bot == bot_name)
        unknown = list(session.scalars(query))
    results = []
    for name in sorted({c.bot for c in unknown}):
        result = ReconcileResult(name)
        results.append(result)
        mine = [c for c in unknown if c.bot == name]
        result.missing = [c.id for c in mine]
        bot = bots.get(name)
        if bot is None:
            result.error = f"bot {name!r} is not in bots.toml, so its account is not known"
            continue
        try:
            publisher = publisher_for(bot) if publisher_for else open_publisher(settings, bot)
            try:
                recent = publisher.recent_posts(limit=RECONCILE_POSTS)
            finally:
                publisher.close()
        except (PublishError, BotError) as error:
            result.error = str(error)
            continue
        _match(store, bot, mine, recent, result)
    return results


def _match(store: Store, bot: BotConfig, candidates: list[Candidate], recent: list, result: ReconcileResult) -> None:
    holds = platform(bot.platform).holds
    with store.session() as session:
        # A post already credited to a candidate, of this bot or of another bot on the same account or file, is
        # not this one; and where the platform says which bot posted (the file), only this bot's posts count.
        taken = set(session.scalars(select(Candidate.remote_id).where(Candidate.remote_id.is_not(None))))
        for candidate in candidates:
            since = (candidate.claimed_at or candidate.updated_at) - RECONCILE_SLACK
            match = next((p for p in recent if p.remote_id not in taken and _same_text(p.text, candidate.text)
                          and (p.bot is None or p.bot == bot.name)
                          and (p.created_at is None or p.created_at >= since)
                          and holds(bot, p)), None)
            if match is None:
                session.execute(update(Candidate).where(Candidate.id == candidate.id,
                                                        Candidate.status == Status.UNKNOWN)
                                .values(reason=f"not among the account's {RECONCILE_POSTS} latest posts; approve it "
                                               "again to post it, or reject it", version=Candidate.version + 1)
                                .execution_options(synchronize_session=False))
                continue
            taken.add(match.remote_id)
            session.execute(update(Candidate).where(Candidate.id == candidate.id, Candidate.status == Status.UNKNOWN)
                            .values(status=Status.POSTED, remote_id=match.remote_id, remote_url=match.url,
                                    posted_at=match.created_at or utcnow(), reason=None, updated_at=utcnow(),
                                    version=Candidate.version + 1)
                            .execution_options(synchronize_session=False))
            result.found.append((candidate.id, match.url))
            result.missing.remove(candidate.id)
