"""The try-the-model panel: a bot's model samples with scores and filter verdicts; picks go to the queue."""

from __future__ import annotations

import html
import re
import shutil
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.corpus import add_documents
from bot.store.schema import Candidate
from bot.web.trying import MAX_SAMPLES
from scrapers.documents import Document
from tests.bot.web.helpers import csrf_of

SAMPLE = re.compile(r'<li class="sample( refused)?" id="s-(\d+)" data-index="\d+">\s*'
                    r'<input type="hidden" name="text-\d+" value="([^"]*)">\s*'
                    r'<input type="hidden" name="logprob-\d+" value="([^"]+)">\s*'
                    r'<input type="hidden" name="tokens-\d+" value="(\d+)">')


@pytest.fixture
def modelled(logged_in, tiny_model_dir: Path, titles: list[str]):  # type: ignore[no-untyped-def]
    """Bot `fb` with the tiny model and the corpus it was trained on."""
    shutil.copytree(tiny_model_dir, logged_in.settings.model_dir("fb"))
    with logged_in.store.session() as session:
        add_documents(session, "titles", [Document(source="file", external_id=str(i), text=t)
                                          for i, t in enumerate(titles)])
    return logged_in


def _try(web, **fields: str):  # type: ignore[no-untyped-def]
    data = {"csrf_token": web.token("/try"), "bot": "fb", "prefix": "", "temperature": "1.0", "top_p": "0.95",
            "count": "12", **fields}
    return web.client.post("/try", data=data)


def test_the_panel_samples_shows_scores_and_verdicts_and_queues_nothing(modelled) -> None:  # type: ignore
    form = modelled.client.get("/try").text
    for name in ("bot", "prefix", "temperature", "top_p", "count"):
        assert f'name="{name}"' in form
    response = _try(modelled)
    assert response.status_code == 200
    samples = SAMPLE.findall(response.text)
    assert len(samples) == 12
    assert response.text.count('class="verdict passes"') + response.text.count('class="verdict fails"') == 12
    with modelled.store.session() as session:
        assert session.scalars(select(Candidate)).all() == []


def test_picked_samples_go_to_the_queue_as_pending_with_their_sampling(modelled) -> None:  # type: ignore
    page = _try(modelled, count="20", prefix="Show HN: It's").text  # every sample holds an apostrophe
    passing = [(i, text, logprob, tokens) for refused, i, text, logprob, tokens in SAMPLE.findall(page) if not refused]
    assert passing, "the tiny model wrote nothing that passes the filters"
    fields = re.findall(r'<form method="post" action="/try/send".*?</form>', page, re.DOTALL)[0]
    # As a browser does: a hidden field's value is sent unescaped ("What&#39;s" goes out as "What's").
    data = {k: html.unescape(v) for k, v in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', fields)}
    index, text, _logprob, tokens = passing[0]
    response = modelled.client.post("/try/send", data={**data, "pick": [index, index]})  # the second is a duplicate
    assert response.status_code == 200 and "<h1>Pending</h1>" in response.text
    assert "Sent 1 to fb&#39;s queue as pending" in response.text and "the duplicate filter rejects" in response.text
    with modelled.store.session() as session:
        [row] = session.scalars(select(Candidate)).all()
    assert (row.bot, row.status, row.model, row.temperature, row.top_p, row.prefix) == (
        "fb", "pending", "fb", 1.0, 0.95, "Show HN: It's")
    assert row.text == html.unescape(text)
    assert row.tokens == int(tokens) and row.seed is not None
    again = modelled.client.post("/try/send", data={**data, "pick": [index]})  # already queued: refused
    assert "Not sent: the duplicate filter rejects" in again.text


def test_the_panel_caps_how_many_and_names_bad_input(modelled) -> None:  # type: ignore[no-untyped-def]
    too_many = _try(modelled, count=str(MAX_SAMPLES + 1))
    assert too_many.status_code == 400 and f"Ask for 1 to {MAX_SAMPLES} samples at a time." in too_many.text
    hot = _try(modelled, temperature="0")
    assert hot.status_code == 400 and "The temperature must be a finite number greater than 0" in hot.text
    unknown = _try(modelled, bot="nobody")
    assert unknown.status_code == 400 and "Choose a bot from bots.toml" in unknown.text
    nothing = modelled.client.post("/try/send", data={"csrf_token": csrf_of(modelled.client.get("/try").text),
                                                      "bot": "fb", "temperature": "1", "top_p": "1"})
    assert nothing.status_code == 400 and "No sample was ticked" in nothing.text
