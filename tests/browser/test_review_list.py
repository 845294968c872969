"""The pending page as a compact list, in Debian's Chromium (driven by Playwright) against `bot serve` in its own
process: how many of 20 realistic candidates a desktop and a phone show at once, and where the page leaves the
person after an action (focus on the next candidate, the list's URL after a refused edit).

Screenshots of the pending page (desktop and phone) and of the Approved and Status pages go to the test's folder,
or to $NNBOT_SCREENSHOTS when set. Runs on SQLite and PostgreSQL.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from bot.store import open_store
from bot.store.schema import Candidate
from tests.bot.service.helpers import add_candidates, file_bot, write_bots
from tests.browser.test_review_page import CHROMIUM_ARGS, DESKTOP, PASSWORD, PHONE, serving

# Generated titles as a Hacker News bot writes them: 60 to 120 characters, the lengths a reviewer reads all day.
TITLES = [
    "Show HN: I built a tiny search engine for my own notes in a weekend with SQLite",
    "Ask HN: How do you keep a side project alive after the first month of enthusiasm?",
    "The hidden cost of microservices nobody mentions when they split the monolith",
    "Why our Postgres queries got ten times faster after we stopped using an ORM",
    "A visual introduction to how garbage collectors decide what to throw away",
    "Launch HN: Fieldnote (YC W24) – offline-first forms for teams working in remote places",
    "What I learned maintaining an open source library used by thousands of strangers",
    "The surprising history of the QWERTY keyboard and the typewriters that came before it",
    "Rust in the Linux kernel: a year later, what worked and what did not",
    "How a single misconfigured DNS record took down our whole company for six hours",
    "Ask HN: Is it still worth learning C in 2024 if you mostly write web applications?",
    "Building a home lab on three old laptops and a shelf from the hardware store",
    "The quiet death of the personal homepage, and why it might be coming back",
    "Show HN: A command-line tool that explains your git history in plain English",
    "Researchers find a way to make batteries last twice as long in cold weather",
    "Why the best engineers I know write less code than everyone else on the team",
    "A practical guide to reading academic papers when you never went to grad school",
    "Our startup ran out of money: a post-mortem on the eighteen months before the end",
    "The economics of running a small SaaS business with no employees and no investors",
    "How to design a database schema that survives the next five years of product changes",
]
ROWS_DESKTOP, ROWS_PHONE = 8, 4  # candidates wholly in view on first load, at least


@pytest.fixture
def listing(database_url: str, bot_home: Path, tmp_path: Path):  # type: ignore[no-untyped-def]
    """`bot serve` on a free port, bot `fb` with TITLES pending (falling plausibility: listed in this order), and
    three approved."""
    store = open_store(database_url)
    ids = add_candidates(store, "fb", TITLES, approve=False, tokens=16)
    with store.session() as session:
        for n, candidate_id in enumerate(ids):
            session.get(Candidate, candidate_id).plausibility = -2.1 - n * 0.07
    add_candidates(store, "fb", ["A title approved earlier and waiting for its turn to be posted",
                                 "Another approved title, second in the posting order of the bot",
                                 "The third approved title, posted after the other two"])
    config = write_bots(tmp_path / "bots.toml", file_bot("fb"))
    with serving(config, database_url) as url:
        yield url, store, ids
    store.close()


IN_VIEW = """() => Array.from(document.querySelectorAll("article.candidate")).filter(row => {
    const box = row.getBoundingClientRect();
    return box.top >= 0 && box.bottom <= window.innerHeight;
}).length"""


def _log_in(page, url: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(f"{url}/")
    page.fill("#password", PASSWORD)
    page.click("#login")
    page.wait_for_selector("article.candidate")


def _focused(page) -> str:  # type: ignore[no-untyped-def]
    return str(page.evaluate("document.activeElement.id"))


def test_the_pending_list_shows_many_candidates_on_a_desktop_and_a_phone(chromium: str, listing,
                                                                         tmp_path: Path) -> None:
    from playwright.sync_api import sync_playwright

    url, _store, ids = listing
    shots = Path(os.environ.get("NNBOT_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=DESKTOP).new_page()
        _log_in(page, url)
        order = page.eval_on_selector_all("article.candidate", "rows => rows.map(row => Number(row.dataset.id))")
        assert order == ids  # best first, as bot.queue.best_first orders them
        desktop = page.evaluate(IN_VIEW)
        page.screenshot(path=str(shots / "pending-desktop.png"))
        page.goto(f"{url}/approved")
        page.screenshot(path=str(shots / "approved-desktop.png"))
        page.goto(f"{url}/status")
        page.screenshot(path=str(shots / "status-desktop.png"))

        phone = browser.new_context(viewport=PHONE, storage_state=page.context.storage_state()).new_page()
        phone.goto(f"{url}/")
        phone.wait_for_selector("article.candidate")
        on_phone = phone.evaluate(IN_VIEW)
        width = phone.evaluate("document.documentElement.scrollWidth")
        phone.screenshot(path=str(shots / "pending-phone.png"))
        phone.click(f"#c-{ids[0]} details.edit summary")  # the edit box opens in place, prefilled
        assert phone.input_value(f"#text-{ids[0]}") == TITLES[0]
        assert phone.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
        phone.screenshot(path=str(shots / "pending-phone-editing.png"))
        browser.close()
    print(f"candidates wholly in view: {desktop} at 1280x900, {on_phone} at 390x844")
    assert desktop >= ROWS_DESKTOP, f"only {desktop} candidates are wholly in view at 1280x900"
    assert on_phone >= ROWS_PHONE, f"only {on_phone} candidates are wholly in view at 390x844"
    assert width <= PHONE["width"], f"the pending page scrolls sideways on a phone ({width}px wide)"


def test_after_each_action_focus_is_on_the_next_candidate(chromium: str, listing) -> None:  # type: ignore
    from playwright.sync_api import expect, sync_playwright

    url, store, ids = listing
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        page = browser.new_context(viewport=DESKTOP).new_page()
        page.set_default_timeout(30_000)
        _log_in(page, url)

        for _ in range(3):
            page.keyboard.press("j")
        expect(page.locator(f"#c-{ids[2]}")).to_have_class("candidate selected")
        page.keyboard.press("a")  # approve the third: the page comes back on the fourth
        page.wait_for_url(f"**/#c-{ids[3]}")
        expect(page.locator("#flash")).to_have_text(f"Approved candidate {ids[2]}.")
        assert _focused(page) == f"c-{ids[3]}"
        expect(page.locator(f"#c-{ids[3]}")).to_have_class("candidate selected")
        page.wait_for_load_state("load")
        page.evaluate("new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))")
        assert page.evaluate("window.scrollY") == 0  # the list stays where it was: the flash is still in view
        assert _focused(page) == f"c-{ids[3]}"
        page.keyboard.press("j")  # j goes on from there, not from the top
        assert _focused(page) == f"c-{ids[4]}"

        page.keyboard.press("r")  # reject with the key: on to the next
        page.wait_for_url(f"**/#c-{ids[5]}")
        assert _focused(page) == f"c-{ids[5]}"

        page.click(f"#reject-{ids[6]}")  # the buttons do the same
        page.wait_for_url(f"**/#c-{ids[7]}")
        assert _focused(page) == f"c-{ids[7]}"

        page.click(f"#c-{ids[8]} details.why summary")  # a reason, then Enter
        page.fill(f"#reason-{ids[8]}", "reads like an advert")
        page.press(f"#reason-{ids[8]}", "Enter")
        page.wait_for_url(f"**/#c-{ids[9]}")
        assert _focused(page) == f"c-{ids[9]}"

        page.keyboard.press("e")  # the edit box opens in place, prefilled; a filter refuses the first try
        expect(page.locator(f"#text-{ids[9]}")).to_be_focused()
        assert page.input_value(f"#text-{ids[9]}") == TITLES[9]
        page.fill(f"#text-{ids[9]}", "two words")
        page.click(f"#edit-{ids[9]}")
        page.wait_for_url(f"{url}/#c-{ids[9]}")  # the list's URL, not /candidates/<id>
        expect(page.locator(f"#c-{ids[9]} .error")).to_contain_text("the length filter rejects it")
        expect(page.locator(f"#text-{ids[9]}")).to_be_focused()  # the draft, ready to fix
        assert page.input_value(f"#text-{ids[9]}") == "two words"
        page.fill(f"#text-{ids[9]}", "A title the reviewer rewrote by hand")
        page.click(f"#edit-{ids[9]}")
        page.wait_for_url(f"**/#c-{ids[10]}")
        assert _focused(page) == f"c-{ids[10]}"

        page.keyboard.press("x")  # tick two, reject them in bulk
        page.keyboard.press("j")
        page.keyboard.press("x")
        page.click("#bulk-fb .bulk-reject")
        page.wait_for_url(f"**/#c-{ids[12]}")
        assert _focused(page) == f"c-{ids[12]}"

        with store.session() as session:  # what the keys and buttons did, before "Tick all" approves the rest
            assert [session.get(Candidate, i).status for i in ids[:12]] == [
                "pending", "pending", "approved", "pending", "rejected", "pending", "rejected", "pending", "rejected",
                "approved", "rejected", "rejected"]
        pending = page.eval_on_selector_all("#bot-fb article.candidate", "rows => rows.map(r => Number(r.dataset.id))")
        page.check("#tick-all-fb")  # every row of the bot ticked, one unticked by hand, the rest approved at once
        assert page.eval_on_selector_all("#bot-fb input.tick", "boxes => boxes.every(b => b.checked)")
        page.uncheck(f"#pick-{ids[0]}")
        assert page.evaluate("document.getElementById('tick-all-fb').indeterminate")
        page.click("#bulk-fb .bulk-approve")
        page.wait_for_url(f"{url}/**")
        expect(page.locator("#flash")).to_have_text(
            f"Approved candidates {', '.join(str(i) for i in pending if i != ids[0])}.")
        browser.close()
    with store.session() as session:
        rows = {i: session.get(Candidate, i) for i in ids[:12]}
        assert rows[ids[8]].reason == "reads like an advert"
        assert rows[ids[9]].text == "A title the reviewer rewrote by hand"
        ticked = [session.get(Candidate, i).status for i in pending if i != ids[0]]
        assert session.get(Candidate, ids[0]).status == "pending" and set(ticked) == {"approved"}
