"""Each bot's status: what `bot status` shows."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from bot.processes import describe_owner
from bot.service.status import service_status
from bot.web.access import logged_in
from bot.web.rendering import render

router = APIRouter()


@router.get("/status")
def status(request: Request, session: Annotated[dict, Depends(logged_in)]) -> Response:
    state = request.app.state
    report = service_status(state.store, state.settings, state.bots)
    holder = report["scheduler"].get("owner")
    return render(request, "status.html", {"title": "Status", "status": report,
                                           "owner": describe_owner(holder) if holder else None,
                                           "describe": describe_owner})
