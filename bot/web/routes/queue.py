"""The queue's pages (pending, approved, posted, problems) and what a person does to candidates there."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi import Path as FastAPIPath
from fastapi.responses import Response
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from bot import posting
from bot.config import BotConfig, BotsFile
from bot.errors import NotFoundError, QueueError
from bot.filters import FILTER_NAMES, FilterSet
from bot.names import MAX_ID
from bot.queue import list_candidates
from bot.service.scheduler import next_runs
from bot.store.schema import Candidate, Status
from bot.web import review
from bot.web.access import checked_form, logged_in, redirect_with_flash
from bot.web.rendering import render

router = APIRouter()

POSTED_SHOWN = 200  # posted candidates the history shows, newest first
CONFLICT = 409  # the candidate is not in a state that allows the action (or changed meanwhile)
UNPROCESSABLE = 422  # the edit does not pass the filters
NOT_FOUND = 404


@dataclass
class Section:
    """One bot's part of a page."""

    bot: str
    config: BotConfig | None
    candidates: list[Candidate] = field(default_factory=list)
    next_post: Any = None

    @property
    def filters(self) -> list[str]:
        return filter_names(self.config)


def filter_names(bot: BotConfig | None) -> list[str]:
    """The filters a candidate of `bot` passed to be queued, in the order they run."""
    if bot is None:
        return []
    running = set(FilterSet(bot.filters, platform=bot.platform).names)
    return [name for name in FILTER_NAMES if name in running or (name == "novelty" and bot.filters.novelty)]


def _sections(bots: BotsFile, candidates: list[Candidate], chosen: str | None) -> list[Section]:
    """One section per bot of bots.toml, and per other bot that has candidates; only `chosen` if given."""
    sections = {bot.name: Section(bot.name, bot) for bot in bots.bot}
    for c in candidates:
        sections.setdefault(c.bot, Section(c.bot, None)).candidates.append(c)
    return [s for name, s in sections.items() if chosen in (None, "", name)]


def _bot_names(session: Session, bots: BotsFile) -> list[str]:
    known = [bot.name for bot in bots.bot]
    others = sorted(set(session.scalars(select(Candidate.bot).distinct())) - set(known))
    return known + others


def pending_page(request: Request, bot: str | None) -> dict[str, Any]:
    with request.app.state.store.session() as session:
        candidates = list_candidates(session, status=Status.PENDING)
        names = _bot_names(session, request.app.state.bots)
    return {"title": "Pending", "sections": _sections(request.app.state.bots, candidates, bot), "bot_names": names,
            "chosen": bot or "", "version": review.version, "drafts": {}, "page_class": "pending"}


def approved_page(request: Request, bot: str | None) -> dict[str, Any]:
    store = request.app.state.store
    with store.session() as session:
        candidates = list(session.scalars(select(Candidate).where(Candidate.status == Status.APPROVED)
                                          .order_by(Candidate.approved_at, Candidate.id)))  # posting.next_candidate
        names = _bot_names(session, request.app.state.bots)
    runs = next_runs(store)
    sections = _sections(request.app.state.bots, candidates, bot)
    for section in sections:
        section.next_post = runs.get(f"{section.bot}:post")
    return {"title": "Approved", "sections": sections, "bot_names": names, "chosen": bot or "",
            "version": review.version}


def posted_page(request: Request, bot: str | None) -> dict[str, Any]:
    with request.app.state.store.session() as session:
        query = select(Candidate).where(Candidate.status == Status.POSTED)
        if bot:
            query = query.where(Candidate.bot == bot)
        candidates = list(session.scalars(query.order_by(Candidate.posted_at.desc(), Candidate.id.desc())
                                          .limit(POSTED_SHOWN)))
        names = _bot_names(session, request.app.state.bots)
    return {"title": "Posted", "candidates": candidates, "bot_names": names, "chosen": bot or "",
            "shown": POSTED_SHOWN}


def problems_page(request: Request, bot: str | None) -> dict[str, Any]:
    with request.app.state.store.session() as session:
        query = select(Candidate).where(Candidate.status.in_((Status.UNKNOWN, Status.FAILED)))
        if bot:
            query = query.where(Candidate.bot == bot)
        candidates = list(session.scalars(query.order_by(Candidate.updated_at.desc(), Candidate.id)))
        names = _bot_names(session, request.app.state.bots)
    unknown_bots = sorted({c.bot for c in candidates if c.status == Status.UNKNOWN})
    return {"title": "Problems", "candidates": candidates, "bot_names": names, "chosen": bot or "",
            "unknown_bots": unknown_bots, "version": review.version}


PAGES: dict[str, tuple[Callable[[Request, str | None], dict[str, Any]], str]] = {
    "/": (pending_page, "pending.html"), "/approved": (approved_page, "approved.html"),
    "/posted": (posted_page, "posted.html"), "/problems": (problems_page, "problems.html"),
}


def _show(request: Request, path: str, bot: str | None, *, error: str | None = None, status_code: int = 200,
          drafts: dict[int, str] | None = None) -> Response:
    build, template = PAGES[path]
    context = build(request, bot)
    if drafts:
        context["drafts"] = drafts
    return render(request, template, {**context, "error": error}, status_code=status_code)


@router.get("/")
def pending(request: Request, session: Annotated[dict, Depends(logged_in)], bot: str | None = None) -> Response:
    return _show(request, "/", bot)


@router.get("/approved")
def approved(request: Request, session: Annotated[dict, Depends(logged_in)], bot: str | None = None) -> Response:
    return _show(request, "/approved", bot)


@router.get("/posted")
def posted(request: Request, session: Annotated[dict, Depends(logged_in)], bot: str | None = None) -> Response:
    return _show(request, "/posted", bot)


@router.get("/problems")
def problems(request: Request, session: Annotated[dict, Depends(logged_in)], bot: str | None = None) -> Response:
    return _show(request, "/problems", bot)


def _back(form: FormData) -> str:
    """The page an action returns to: one of ours, never a URL the form names (no open redirect)."""
    back = form.get("back")
    return back if isinstance(back, str) and back in PAGES else "/"


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _failed(request: Request, form: FormData, error: Exception, *, drafts: dict[int, str] | None = None) -> Response:
    if isinstance(error, NotFoundError):
        status_code = NOT_FOUND
    elif isinstance(error, review.EditRefused):
        status_code = UNPROCESSABLE
    else:
        status_code = CONFLICT
    return _show(request, _back(form), None, error=str(error), status_code=status_code, drafts=drafts)


@router.post("/candidates/bulk")
def bulk(request: Request, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    """Approve or reject the ticked candidates: all of them, or none if one changed or may not move."""
    action = _text(form, "action")
    try:
        if action not in review.BULK_ACTIONS:
            raise QueueError("Choose approve or reject for the ticked candidates.")
        ids = [int(i) for i in form.getlist("ids") if isinstance(i, str) and i.isdigit() and int(i) <= MAX_ID]
        versions = {i: _text(form, f"version-{i}") for i in ids}
        done = (review.approve(request.app.state.store, versions) if action == "approve"
                else review.reject(request.app.state.store, versions, reason=_text(form, "reason")))
    except QueueError as error:
        return _failed(request, form, error)
    return redirect_with_flash(request, _back(form), done.message)


@router.post("/candidates/{candidate_id}")
def act(request: Request, candidate_id: Annotated[int, FastAPIPath(ge=1, le=MAX_ID)],
        form: Annotated[FormData, Depends(checked_form)]) -> Response:
    """approve, reject (with an optional reason) or edit (then approve) one candidate."""
    action, seen = _text(form, "action"), _text(form, "version")
    state = request.app.state
    try:
        if action == "approve":
            done = review.approve(state.store, {candidate_id: seen})
        elif action == "reject":
            done = review.reject(state.store, {candidate_id: seen}, reason=_text(form, "reason"))
        elif action == "edit":
            done = review.edit_and_approve(state.store, state.settings, state.bots, candidate_id, seen,
                                           _text(form, "text"))
        else:
            raise QueueError(f"Choose one of {', '.join(review.ACTIONS)} for candidate {candidate_id}.")
    except QueueError as error:
        drafts = {candidate_id: _text(form, "text")} if action == "edit" else None
        return _failed(request, form, error, drafts=drafts)
    except NotFoundError as error:
        return _failed(request, form, error)
    return redirect_with_flash(request, _back(form), done.message)


@router.post("/bots/{bot_name}/reconcile")
def reconcile(request: Request, bot_name: str, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    """Look for the bot's `unknown` candidates among its account's recent posts."""
    state = request.app.state
    results = posting.reconcile(state.store, state.settings, state.bots, bot_name=bot_name)
    lines = []
    for result in results:
        lines += [f"Candidate {i} was posted ({url})." for i, url in result.found]
        if result.missing:
            lines.append(f"Still unknown: {', '.join(map(str, result.missing))} "
                         f"({result.error or 'not among the latest posts'}); approve each again to post it, "
                         "or reject it.")
    return redirect_with_flash(request, "/problems", " ".join(lines) or f"Bot {bot_name} has no unknown candidate.")
