"""The queue's pages (pending, approved, posted, problems) and what a person does to candidates there."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Annotated, Any
from urllib.parse import urlencode

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
from bot.service import lease
from bot.service.scheduler import next_runs
from bot.store.schema import Candidate, Status
from bot.web import review
from bot.web.access import checked_form, logged_in, redirect_with_flash
from bot.web.rendering import render

router = APIRouter()

POSTED_SHOWN = 200  # posted candidates the history shows, newest first
DRAFTS_KEPT = 100  # refused edits kept for the page a person is sent back to; the oldest is dropped past this
MAX_BOT_NAME_CHARS = 100  # characters of the bot filter a form carries back to its page


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


def _approved(session: Session) -> list[Candidate]:
    return list(session.scalars(select(Candidate).where(Candidate.status == Status.APPROVED)
                                .order_by(Candidate.approved_at, Candidate.id)))  # posting.next_candidate's order


def _problems(session: Session, bot: str | None) -> list[Candidate]:
    query = select(Candidate).where(Candidate.status.in_((Status.UNKNOWN, Status.FAILED)))
    if bot:
        query = query.where(Candidate.bot == bot)
    return list(session.scalars(query.order_by(Candidate.updated_at.desc(), Candidate.id)))


def listed(request: Request, path: str, bot: str | None) -> list[int]:
    """The ids of the candidates a page that acts on them lists, top to bottom."""
    with request.app.state.store.session() as session:
        if path == "/problems":
            return [c.id for c in _problems(session, bot)]
        candidates = list_candidates(session, status=Status.PENDING) if path == "/" else _approved(session)
    return [c.id for s in _sections(request.app.state.bots, candidates, bot) for c in s.candidates]


def pending_page(request: Request, bot: str | None) -> dict[str, Any]:
    with request.app.state.store.session() as session:
        candidates = list_candidates(session, status=Status.PENDING)  # best first (bot.queue.best_first)
        names = _bot_names(session, request.app.state.bots)
    return {"title": "Pending", "sections": _sections(request.app.state.bots, candidates, bot), "bot_names": names,
            "chosen": bot or "", "version": review.version, "drafts": {}, "page_class": "pending"}


def approved_page(request: Request, bot: str | None) -> dict[str, Any]:
    store = request.app.state.store
    with store.session() as session:
        candidates = _approved(session)
        names = _bot_names(session, request.app.state.bots)
    running = lease.holder(store) is not None  # a job table's times mean nothing while no `bot run` holds the lease
    runs = next_runs(store) if running else {}
    sections = _sections(request.app.state.bots, candidates, bot)
    for section in sections:
        section.next_post = runs.get(f"{section.bot}:post")
    return {"title": "Approved", "sections": sections, "bot_names": names, "chosen": bot or "",
            "version": review.version, "running": running}


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
        candidates = _problems(session, bot)
        names = _bot_names(session, request.app.state.bots)
    unknown_bots = sorted({c.bot for c in candidates if c.status == Status.UNKNOWN})
    return {"title": "Problems", "candidates": candidates, "bot_names": names, "chosen": bot or "",
            "unknown_bots": unknown_bots, "version": review.version}


class Drafts:
    """Edits the filters refused, kept in memory for the page the person is sent back to (a draft can be far longer
    than a cookie holds): one per login, taken when that page shows it."""

    def __init__(self, most: int = DRAFTS_KEPT) -> None:
        self._kept: OrderedDict[str, tuple[int, str]] = OrderedDict()  # login id -> (candidate id, text)
        self._most = most

    def keep(self, session: dict[str, Any], candidate_id: int, text: str) -> None:
        sid = str(session.get("sid"))
        self._kept.pop(sid, None)
        self._kept[sid] = (candidate_id, text)
        while len(self._kept) > self._most:
            self._kept.popitem(last=False)

    def take(self, session: dict[str, Any]) -> dict[int, str]:
        kept = self._kept.pop(str(session.get("sid")), None)
        return dict([kept]) if kept else {}


PAGES: dict[str, tuple[Callable[[Request, str | None], dict[str, Any]], str]] = {
    "/": (pending_page, "pending.html"), "/approved": (approved_page, "approved.html"),
    "/posted": (posted_page, "posted.html"), "/problems": (problems_page, "problems.html"),
}


def _show(request: Request, path: str, bot: str | None) -> Response:
    build, template = PAGES[path]
    context = build(request, bot)
    if "drafts" in context:
        context["drafts"] = request.app.state.drafts.take(request.state.session)
    context["listed"] = ({c.id for s in context["sections"] for c in s.candidates} if "sections" in context
                         else {c.id for c in context["candidates"]})
    return render(request, template, context)


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


ACTION_PAGES = ("/", "/approved", "/problems")  # the pages whose candidates a person acts on


def _back(form: FormData) -> str:
    """The page an action returns to: one of ours, never a URL the form names (no open redirect)."""
    back = form.get("back")
    return back if isinstance(back, str) and back in ACTION_PAGES else "/"


def _chosen(form: FormData) -> str | None:
    """The bot the page showed alone, if it did."""
    bot = form.get("bot")
    return bot if isinstance(bot, str) and 0 < len(bot) <= MAX_BOT_NAME_CHARS else None


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def list_url(path: str, bot: str | None, focus: int | None) -> str:
    """A page of the queue, for one bot or all, scrolled to and focusing candidate `focus` (keys.js)."""
    return path + (f"?{urlencode({'bot': bot})}" if bot else "") + (f"#c-{focus}" if focus is not None else "")


def next_in_list(before: list[int], acted: Collection[int], after: list[int]) -> int | None:
    """The candidate to go on from once `acted` left a list that read `before` and now reads `after`: the first that
    followed them and is still listed, else the nearest above them."""
    at = [before.index(i) for i in acted if i in before]
    if not at:
        return after[0] if after else None
    still = set(after) - set(acted)
    below = [i for i in before[min(at) + 1:] if i in still]
    above = [i for i in before[:min(at)] if i in still]
    return below[0] if below else (above[-1] if above else None)


def _done(request: Request, form: FormData, done: review.Done, before: list[int]) -> Response:
    """Back to the list the person acted from, on the candidate after the one(s) they acted on."""
    back, bot = _back(form), _chosen(form)
    focus = next_in_list(before, done.ids, listed(request, back, bot))
    return redirect_with_flash(request, list_url(back, bot, focus), done.message)


def _failed(request: Request, form: FormData, error: Exception, *, candidate_id: int | None = None,
            draft: str | None = None) -> Response:
    """Back to the list with the error shown beside the candidate (and the refused edit kept in its box)."""
    if draft is not None and candidate_id is not None:
        request.app.state.drafts.keep(request.state.session, candidate_id, draft)
    return redirect_with_flash(request, list_url(_back(form), _chosen(form), candidate_id), str(error), error=True,
                               about=candidate_id)


@router.post("/candidates/bulk")
def bulk(request: Request, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    """Approve or reject the ticked candidates: all of them, or none if one changed or may not move."""
    action = _text(form, "action")
    try:
        if action not in review.BULK_ACTIONS:
            raise QueueError("Choose approve or reject for the ticked candidates.")
        ids = [int(i) for i in form.getlist("ids") if isinstance(i, str) and i.isdigit() and int(i) <= MAX_ID]
        versions = {i: _text(form, f"version-{i}") for i in ids}
        before = listed(request, _back(form), _chosen(form))
        done = (review.approve(request.app.state.store, versions) if action == "approve"
                else review.reject(request.app.state.store, versions, reason=_text(form, "reason")))
    except QueueError as error:
        return _failed(request, form, error)
    return _done(request, form, done, before)


@router.post("/candidates/{candidate_id}")
def act(request: Request, candidate_id: Annotated[int, FastAPIPath(ge=1, le=MAX_ID)],
        form: Annotated[FormData, Depends(checked_form)]) -> Response:
    """approve, reject (with an optional reason) or edit (then approve) one candidate."""
    action, seen = _text(form, "action"), _text(form, "version")
    state = request.app.state
    before = listed(request, _back(form), _chosen(form))
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
    except (QueueError, NotFoundError) as error:
        return _failed(request, form, error, candidate_id=candidate_id,
                       draft=_text(form, "text") if action == "edit" else None)
    return _done(request, form, done, before)


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
