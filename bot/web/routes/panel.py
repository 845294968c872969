"""The try-the-model panel: sample from a bot's model, see scores and filter verdicts, queue the ones you pick."""

from __future__ import annotations

import math
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from bot.config import BotConfig
from bot.errors import USER_ERRORS, BotError
from bot.names import MAX_ID
from bot.queue import SamplingRecord
from bot.web import trying
from bot.web.access import checked_form, logged_in, redirect_with_flash
from bot.web.rendering import render
from models.config import DEFAULT_TEMPERATURE, DEFAULT_TOP_P
from models.sampler import Sample

router = APIRouter()

DEFAULT_COUNT = 10  # samples the form asks for unless changed
BAD_REQUEST = 400
MAX_TOKENS = 100_000  # the most tokens a sent sample may say it has (a real one has tens)


def _defaults(bot: BotConfig | None) -> dict[str, Any]:
    return {"bot": bot.name if bot else "", "prefix": "", "count": DEFAULT_COUNT,
            "temperature": bot.sampling.temperature if bot else DEFAULT_TEMPERATURE,
            "top_p": bot.sampling.top_p if bot else DEFAULT_TOP_P}


def _page(request: Request, values: dict[str, Any], *, tried: list[trying.Tried] | None = None,
          record: SamplingRecord | None = None, error: str | None = None, status_code: int = 200) -> Response:
    bots = request.app.state.bots.bot
    return render(request, "panel.html", {"title": "Try the model", "bots": bots, "values": values, "tried": tried,
                                          "record": record, "error": error, "max_samples": trying.MAX_SAMPLES},
                  status_code=status_code)


def _bot(request: Request, name: object) -> BotConfig:
    bot = request.app.state.bots.get(name) if isinstance(name, str) else None
    if bot is None:
        raise BotError("Choose a bot from bots.toml; its model writes the samples and its queue receives them.")
    return bot


def _number(form: FormData, name: str, label: str) -> float:
    try:
        value = float(str(form.get(name, "")))
    except ValueError:
        raise BotError(f"The {label} must be a number.") from None
    if not math.isfinite(value):
        raise BotError(f"The {label} must be a finite number.")
    return value


def _whole(form: FormData, name: str, label: str, most: int) -> int:
    value = _number(form, name, label)
    if value != int(value) or not 0 <= value <= most:
        raise BotError(f"The {label} must be a whole number from 0 to {most}.")
    return int(value)


@router.get("/try")
def panel(request: Request, session: Annotated[dict, Depends(logged_in)]) -> Response:
    bots = request.app.state.bots.bot
    return _page(request, _defaults(bots[0] if bots else None))


@router.post("/try")
def sample(request: Request, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    values = {"bot": form.get("bot", ""), "prefix": form.get("prefix", ""), "count": form.get("count", ""),
              "temperature": form.get("temperature", ""), "top_p": form.get("top_p", "")}
    try:
        bot = _bot(request, values["bot"])
        count = _number(form, "count", "number of samples")
        if count != int(count):
            raise BotError(f"Ask for a whole number of samples, 1 to {trying.MAX_SAMPLES}.")
        state = request.app.state
        tried, record = trying.try_model(state.store, state.settings, bot, n=int(count),
                                         temperature=_number(form, "temperature", "temperature"),
                                         top_p=_number(form, "top_p", "top-p"), prefix=str(values["prefix"]))
    except USER_ERRORS as error:
        return _page(request, values, error=str(error), status_code=BAD_REQUEST)
    return _page(request, values, tried=tried, record=record)


@router.post("/try/send")
def send(request: Request, form: Annotated[FormData, Depends(checked_form)]) -> Response:
    """Queue the picked samples as pending candidates; the filters check each again first."""
    try:
        bot = _bot(request, form.get("bot"))
        seed = str(form.get("seed", ""))
        record = SamplingRecord(model=bot.model_name, temperature=_number(form, "temperature", "temperature"),
                                top_k=bot.sampling.top_k, top_p=_number(form, "top_p", "top-p"),
                                prefix=str(form.get("prefix", "")) or None,
                                seed=int(seed) if seed.isdigit() and int(seed) <= MAX_ID else None)
        picked = [int(i) for i in form.getlist("pick") if isinstance(i, str) and i.isdigit()]
        if not picked:
            raise BotError("No sample was ticked; tick the ones to send to the queue.")
        samples = [Sample(str(form.get(f"text-{i}", "")), _number(form, f"logprob-{i}", "log-probability"),
                          _whole(form, f"tokens-{i}", "token count", MAX_TOKENS), True) for i in picked]
        state = request.app.state
        sent = trying.send(state.store, state.settings, bot, samples, record)
    except USER_ERRORS as error:
        return _page(request, _defaults(request.app.state.bots.get(str(form.get("bot")))), error=str(error),
                     status_code=BAD_REQUEST)
    parts = []
    if sent.ids:
        parts.append(f"Sent {len(sent.ids)} to {bot.name}'s queue as pending "
                     f"(candidate{'s' if len(sent.ids) > 1 else ''} {', '.join(map(str, sent.ids))}).")
    parts += [f"Not sent: the {r.filter} filter rejects {text!r} ({r.reason})." for text, r in sent.refused]
    return redirect_with_flash(request, "/" if sent.ids else "/try", " ".join(parts))
