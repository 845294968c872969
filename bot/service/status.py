"""What `bot status` reports: the scheduler's holder, and per bot its target, model, queue, posts and jobs."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from bot import registry
from bot.config import BotConfig, BotsFile, Settings
from bot.errors import NotFoundError
from bot.posting import posts_today
from bot.service import lease
from bot.service.scheduler import next_runs
from bot.store import Store
from bot.store.schema import BotState, Candidate, JobRun, Status, utcnow
from models.errors import ModelError


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def service_status(store: Store, settings: Settings, bots: BotsFile) -> dict[str, Any]:
    """One JSON-ready document: {"scheduler": …, "bots": [...]}."""
    now = utcnow()
    holder = lease.holder(store, now=now)
    runs = next_runs(store)
    return {
        "scheduler": {"running": holder is not None, **(holder.to_json() if holder else {})},
        "bots": [_bot_status(store, settings, bot, runs, now) for bot in bots.bot],
    }


def _bot_status(store: Store, settings: Settings, bot: BotConfig, runs: dict[str, datetime | None],
                now: datetime) -> dict[str, Any]:
    with store.session() as session:
        counts = dict(session.execute(select(Candidate.status, func.count()).where(Candidate.bot == bot.name)
                                      .group_by(Candidate.status)).all())
        today = posts_today(session, bot, now)
        last = session.scalars(select(Candidate).where(Candidate.bot == bot.name, Candidate.status == Status.POSTED)
                               .order_by(Candidate.posted_at.desc()).limit(1)).first()
        error = session.scalars(select(JobRun).where(JobRun.bot == bot.name, JobRun.outcome == "error")
                                .order_by(JobRun.id.desc()).limit(1)).first()
        state = session.get(BotState, bot.name)
    waiting = state.post_not_before if state and state.post_not_before and state.post_not_before > now else None
    return {
        "name": bot.name, "mode": bot.mode, "platform": bot.platform, "destination": bot.destination,
        "corpus": bot.corpus, "model": _model(settings, bot.model_name, now),
        "queue": {status.value: counts.get(status.value, 0) for status in Status},
        "posts_today": today, "daily_cap": bot.daily_cap, "timezone": bot.schedule.timezone,
        "last_post": {"id": last.id, "at": _iso(last.posted_at), "url": last.remote_url, "text": last.text}
        if last else None,
        "next_runs": {job: _iso(runs.get(f"{bot.name}:{job}")) for job in bot.schedule.entries()},
        "waiting_until": _iso(waiting), "waiting_reason": state.wait_reason if waiting and state else None,
        "last_error": {"job": error.job, "at": _iso(error.finished_at or error.started_at), "message": error.message}
        if error else None,
    }


def _model(settings: Settings, name: str, now: datetime) -> dict[str, Any]:
    try:
        model = registry.load(settings, name)
    except (NotFoundError, ModelError) as error:
        return {"name": name, "problem": str(error)}
    created = model.info.get("created_at")
    age = None
    try:
        age = round((now - datetime.fromisoformat(created)).total_seconds() / 3600, 1)
    except (TypeError, ValueError):  # missing or damaged: no age rather than no status
        created = None
    return {"name": name, "valid_perplexity": _finite(model.metrics.get("valid_perplexity")), "trained_at": created,
            "age_hours": age}


def _finite(value: Any) -> float | None:
    """A number from a file people can edit, or None where it is not one."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)
