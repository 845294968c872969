"""The review page as a person uses it: `bot serve` in its own process, Debian's Chromium driven by Playwright.

A person logs in, approves one candidate and rejects another with the keyboard alone, edits a third (a filter
refuses the first try), samples from the try-the-model panel and queues one sample; the database is checked after
each step. Screenshots of the pending page at desktop and phone widths go to the test's folder (and to
$NNBOT_SCREENSHOTS when set). Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import load_settings
from bot.corpus import add_documents
from bot.store import open_store
from bot.store.schema import Candidate
from scrapers.documents import Document
from tests.bot.service.helpers import add_candidates, file_bot, wait_for, write_bots

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "correct horse battery staple"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]  # no network beyond localhost
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
TEXTS = ["Approved with the keyboard here", "Rejected with the keyboard here", "Edited before approval here"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(database_url: str, bot_home: Path, tmp_path: Path, tiny_model_dir: Path, titles: list[str]):  # type: ignore[no-untyped-def]
    """`bot serve` on a free port, with bot `fb` (a model, its corpus, three pending candidates)."""
    shutil.copytree(tiny_model_dir, load_settings().model_dir("fb"))
    store = open_store(database_url)
    with store.session() as s:
        for corpus in ("titles", "fb"):  # the tiny model records corpus "titles"; the bot's corpus is the same text
            add_documents(s, corpus, [Document(source="file", external_id=str(i), text=t)
                                      for i, t in enumerate(titles)])
    ids = add_candidates(store, "fb", TEXTS, approve=False)
    config = write_bots(tmp_path / "bots.toml", file_bot("fb", extra='[bot.filters]\nblocklist = ["crypto"]'))
    with serving(config, database_url) as url:
        yield url, store, ids
    store.close()


@contextlib.contextmanager
def serving(config: Path, database_url: str) -> Iterator[str]:
    """`bot serve` on a free port with `config` and `database_url`, answering; its URL. Stopped on the way out."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "BOT_DATABASE_URL": database_url,
           "BOT_REVIEW_PASSWORD": PASSWORD}
    process = subprocess.Popen([sys.executable, "-m", "bot.cli", "--config", str(config), "serve", "--port",
                                str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"

    def up() -> bool:
        try:
            return urllib.request.urlopen(f"{url}/login", timeout=2).status == 200
        except OSError:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            return False

    try:
        wait_for(up, what="`bot serve` to answer")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def status(store, candidate_id: int) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    with store.session() as s:
        c = s.get(Candidate, candidate_id)
        return c.status, c.text


def test_a_person_reviews_with_the_keyboard_edits_and_queues_from_the_panel(chromium: str, server,
                                                                           tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, store, ids = server
    shots = Path(os.environ.get("NNBOT_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.set_default_timeout(30_000)

        page.goto(f"{url}/")  # not logged in: the login page
        page.fill("#password", "wrong password")
        page.click("#login")
        expect(page.locator("#error")).to_be_visible()
        page.fill("#password", PASSWORD)
        page.click("#login")
        expect(page.locator(f"#c-{ids[0]}")).to_be_visible()
        page.screenshot(path=str(shots / "pending-desktop.png"), full_page=True)

        page.keyboard.press("j")  # select the first candidate, approve it: keyboard only
        expect(page.locator(f"#c-{ids[0]}")).to_have_class("candidate selected")
        page.keyboard.press("a")
        expect(page.locator(f"#c-{ids[0]}")).to_have_count(0)
        assert status(store, ids[0]) == ("approved", TEXTS[0])

        expect(page.locator(f"#c-{ids[1]}")).to_have_class("candidate selected")  # the list opens on the next one
        page.keyboard.press("r")
        expect(page.locator(f"#c-{ids[1]}")).to_have_count(0)
        assert status(store, ids[1])[0] == "rejected"

        expect(page.locator(f"#c-{ids[2]}")).to_have_class("candidate selected")
        page.keyboard.press("e")  # edit: a blocked word first, which the filter refuses
        page.fill(f"#text-{ids[2]}", "Buy crypto now friends")
        page.click(f"#edit-{ids[2]}")
        expect(page.locator("#error")).to_contain_text("blocklist")
        assert status(store, ids[2]) == ("pending", TEXTS[2])
        page.fill(f"#text-{ids[2]}", "A better title, edited by hand")
        page.click(f"#edit-{ids[2]}")
        expect(page.locator("#flash")).to_be_visible()
        assert status(store, ids[2]) == ("approved", "A better title, edited by hand")

        page.goto(f"{url}/try")  # the panel: sample from the bot's model, queue the first that passes
        page.fill("input[name=count]", "20")  # enough that some pass the filters, whatever the draw
        page.click("#try-sample")
        expect(page.locator("li.sample").first).to_be_visible()
        passing = page.locator("li.sample:not(.refused) input[name=pick]")
        assert passing.count() > 0, "no sample passed the filters"
        passing.first.check()
        page.click("#send")
        expect(page.locator("#flash")).to_be_visible()
        with store.session() as s:
            queued = list(s.scalars(select(Candidate).where(Candidate.id.not_in(ids))))
        assert len(queued) == 1 and queued[0].status == "pending" and queued[0].bot == "fb"

        page.goto(f"{url}/")
        expect(page.locator(f"#c-{queued[0].id}")).to_be_visible()
        page.screenshot(path=str(shots / "pending-desktop-after.png"), full_page=True)
        phone = browser.new_context(viewport=PHONE, storage_state=page.context.storage_state()).new_page()
        phone.goto(f"{url}/")
        expect(phone.locator(f"#c-{queued[0].id}")).to_be_visible()
        width = phone.evaluate("document.documentElement.scrollWidth")
        phone.screenshot(path=str(shots / "pending-phone.png"), full_page=True)
        assert width <= PHONE["width"], f"the pending page scrolls sideways on a phone ({width}px wide)"
        browser.close()
