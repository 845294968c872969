"""The queue pages as a list a reviewer works down: where an action leaves them, refused edits kept in place, one
score, and pages that state only what is true (the scheduler, next runs, links a page can open, words counted)."""

from __future__ import annotations

import pickle
import re
from datetime import datetime, timedelta

from markupsafe import escape
from sqlalchemy import insert

from bot.queue import SCORE_FORMAT, candidate_json, list_candidates, score
from bot.service import lease
from bot.store.schema import Candidate, Status, scheduler_jobs, utcnow
from bot.web import rendering
from bot.web.routes.queue import next_in_list
from models.tokenizer import MAJ, UP, Tokenizer, piece_count
from tests.bot.service.helpers import add_candidates
from tests.bot.web.helpers import csrf_of, version_of

TEXTS = ["The first title of the list", "The second title of the list", "The third title of the list",
         "The fourth title of the list"]
SCHEDULER = "otherhost:4242:0a1b2c3d"  # a `bot run` on another host: alive as far as this one can tell


def _form(html: str, candidate_id: int, action: str, **fields: str) -> dict[str, str]:
    return {"csrf_token": csrf_of(html), "back": "/", "version": version_of(html, candidate_id), "action": action,
            **fields}


def _pending(logged_in, texts=TEXTS) -> list[int]:  # type: ignore[no-untyped-def]
    """Pending candidates of bot fb, best first in the order given (falling plausibility)."""
    ids = add_candidates(logged_in.store, "fb", texts, approve=False)
    with logged_in.store.session() as session:
        for n, candidate_id in enumerate(ids):
            session.get(Candidate, candidate_id).plausibility = -2.0 - n / 4
    return ids


def _listed(html: str) -> list[int]:
    return [int(i) for i in re.findall(r'<article class="candidate[^"]*" id="c-(\d+)"', html)]


def test_after_an_action_the_list_opens_on_the_next_candidate(logged_in) -> None:  # type: ignore[no-untyped-def]
    ids = _pending(logged_in)
    client = logged_in.client
    approved = client.post(f"/candidates/{ids[1]}", data=_form(client.get("/").text, ids[1], "approve"),
                           follow_redirects=False)
    assert (approved.status_code, approved.headers["location"]) == (303, f"/#c-{ids[2]}")
    edited = client.post(f"/candidates/{ids[2]}", data=_form(client.get("/").text, ids[2], "edit",
                                                             text="A title the person wrote instead"),
                         follow_redirects=False)
    assert edited.headers["location"] == f"/#c-{ids[3]}"
    last = client.post(f"/candidates/{ids[3]}", data=_form(client.get("/").text, ids[3], "reject"),
                       follow_redirects=False)
    assert last.headers["location"] == f"/#c-{ids[0]}"  # nothing below it: the nearest above
    only = client.post(f"/candidates/{ids[0]}", data=_form(client.get("/").text, ids[0], "reject"),
                       follow_redirects=False)
    assert only.headers["location"] == "/"  # the list is empty
    page = client.get(approved.headers["location"]).text
    assert 'src="/static/keys.js"' in page  # which focuses and selects #c-<id> (the browser test watches it)


def test_the_list_a_person_filtered_to_one_bot_stays_filtered(logged_in) -> None:  # type: ignore[no-untyped-def]
    ids = _pending(logged_in)
    other = add_candidates(logged_in.store, "xb", ["A title of the other bot here"], approve=False)
    html = logged_in.client.get("/", params={"bot": "fb"}).text
    assert f'id="c-{other[0]}"' not in html and 'name="bot" value="fb"' in html
    data = {**_form(html, ids[0], "approve"), "bot": "fb"}
    response = logged_in.client.post(f"/candidates/{ids[0]}", data=data, follow_redirects=False)
    assert response.headers["location"] == f"/?bot=fb#c-{ids[1]}"


def test_a_bulk_action_opens_the_list_after_the_first_ticked(logged_in) -> None:  # type: ignore[no-untyped-def]
    ids = _pending(logged_in)
    html = logged_in.client.get("/").text
    data = {"csrf_token": csrf_of(html), "back": "/", "action": "reject", "ids": [str(ids[1]), str(ids[2])],
            **{f"version-{i}": version_of(html, i) for i in ids}}
    response = logged_in.client.post("/candidates/bulk", data=data, follow_redirects=False)
    assert response.headers["location"] == f"/#c-{ids[3]}"


def test_the_approved_list_opens_on_the_next_candidate_too(logged_in) -> None:  # type: ignore
    ids = add_candidates(logged_in.store, "fb", TEXTS[:3])  # approved, in this order
    html = logged_in.client.get("/approved").text
    data = {**_form(html, ids[0], "reject"), "back": "/approved"}
    response = logged_in.client.post(f"/candidates/{ids[0]}", data=data, follow_redirects=False)
    assert response.headers["location"] == f"/approved#c-{ids[1]}"


def test_next_in_list_goes_down_then_up() -> None:
    assert next_in_list([1, 2, 3, 4], [2], [1, 3, 4]) == 3
    assert next_in_list([1, 2, 3, 4], [2, 3], [1, 4]) == 4
    assert next_in_list([1, 2, 3, 4], [4], [1, 2, 3]) == 3
    assert next_in_list([1, 2, 3, 4], [2], [1, 4]) == 4  # 3 went meanwhile (another reviewer, the CLI)
    assert next_in_list([1], [1], []) is None
    assert next_in_list([1, 2], [9], [1, 2]) == 1  # acted on something the list did not show: its top


def test_a_refused_edit_returns_to_the_list_with_the_draft_in_place(logged_in) -> None:  # type: ignore
    ids = _pending(logged_in)
    draft = "two words"
    response = logged_in.client.post(f"/candidates/{ids[1]}",
                                      data=_form(logged_in.client.get("/").text, ids[1], "edit", text=draft),
                                      follow_redirects=False)
    assert (response.status_code, response.headers["location"]) == (303, f"/#c-{ids[1]}")  # not /candidates/…
    page = logged_in.client.get(response.headers["location"]).text
    row = page[page.index(f'id="c-{ids[1]}"'):page.index(f'id="c-{ids[2]}"')]
    # The error sits in the candidate's row, where the page opens, and its edit box is open with the draft.
    assert ('<p class="error" id="error" role="alert">The edit was not saved: the length filter rejects it '
            '(has 2 words (minimum 3)).</p>') in row
    assert page.count('role="alert"') == 1
    assert '<details class="edit" open>' in row and f'rows="3">{draft}</textarea>' in row
    assert _listed(page) == ids  # the list, in its order, not a page of its own
    again = logged_in.client.get("/").text
    assert "The edit was not saved" not in again and draft + "</textarea>" not in again  # shown once


def test_a_refused_draft_longer_than_a_cookie_holds_is_kept_whole(logged_in) -> None:  # type: ignore
    ids = _pending(logged_in)
    draft = "fuck " + "word " * 1500  # a blocked term, so a filter refuses it; 7,500 characters
    page = logged_in.client.post(f"/candidates/{ids[0]}",
                                 data=_form(logged_in.client.get("/").text, ids[0], "edit", text=draft)).text
    assert "the blocklist filter rejects it" in page and f">{draft}</textarea>" in page
    assert len(logged_in.client.cookies.get("nnbot_session")) < 4096


def test_a_stale_or_missing_candidate_returns_to_the_list_with_the_error_on_top(logged_in) -> None:  # type: ignore
    ids = _pending(logged_in)
    html = logged_in.client.get("/").text
    response = logged_in.client.post("/candidates/999", data=_form(html, ids[0], "approve"),
                                     follow_redirects=False)
    assert response.headers["location"] == "/#c-999"
    page = logged_in.client.get("/").text
    assert '<p class="error" id="error" role="alert">There is no candidate 999' in page
    assert _listed(page) == ids


def test_the_page_keeps_the_queues_best_first_order(logged_in) -> None:  # type: ignore[no-untyped-def]
    ids = add_candidates(logged_in.store, "fb", ["Own model only, fluent one", "Own model only, rough one",
                                                 "Base model scored this low", "Base model scored this high"],
                         approve=False, logprobs=[-5.0, -40.0, -1.0, -1.0])
    with logged_in.store.session() as session:
        session.get(Candidate, ids[2]).plausibility = -6.0
        session.get(Candidate, ids[3]).plausibility = -3.0
        expected = [c.id for c in list_candidates(session, status=Status.PENDING)]
    assert expected == [ids[3], ids[2], ids[0], ids[1]]
    assert _listed(logged_in.client.get("/").text) == expected


def test_one_score_everywhere_as_the_cli_shows_it(logged_in) -> None:  # type: ignore[no-untyped-def]
    ids = add_candidates(logged_in.store, "fb", ["Scored by the base model here", "Scored by its own model"],
                         approve=False, logprobs=[-9.0, -7.0], tokens=4)
    with logged_in.store.session() as session:
        session.get(Candidate, ids[0]).plausibility = -3.14159
    page = logged_in.client.get("/").text
    with logged_in.store.session() as session:
        for candidate_id in ids:
            c = session.get(Candidate, candidate_id)
            shown = SCORE_FORMAT.format(score(c))
            assert float(shown) == candidate_json(c)["score"]
            assert f'{escape(rendering.score_meaning(c))} {escape(rendering.SCORE_ORDER)}">Score <b>{shown}</b>' \
                in page
    assert "<b>-3.14</b>" in page and "<b>-1.75</b>" in page  # the base's score; the own model's -7 / 4


def test_the_compact_row_keeps_every_function(logged_in) -> None:  # type: ignore[no-untyped-def]
    [candidate] = _pending(logged_in, TEXTS[:1])
    page = logged_in.client.get("/").text
    row = page[page.index(f'id="c-{candidate}"'):page.index("</article>")]
    assert f'<input type="checkbox" class="tick" name="ids" value="{candidate}" form="bulk-fb"' in row
    assert f'aria-label="Tick candidate {candidate}"' in row and f'name="version-{candidate}"' in row
    assert f'id="approve-{candidate}">Approve</button>' in row and f'id="reject-{candidate}">Reject</button>' in row
    # The reason and the edit box wait behind "Reason" and "Edit"; the reason belongs to the reject form.
    assert '<summary>Reason<span class="visually-hidden"> for rejecting</span></summary>' in row
    assert '<details class="edit">\n<summary>Edit</summary>' in row
    assert (f'<label for="reason-{candidate}">Reason for rejecting (optional)</label>\n<input type="text" '
            f'name="reason" id="reason-{candidate}" form="reject-form-{candidate}"') in row
    assert f'<textarea name="text" id="text-{candidate}" rows="3">{TEXTS[0]}</textarea>' in row  # prefilled
    assert row.count('name="csrf_token"') == 3
    reason = logged_in.client.post(f"/candidates/{candidate}", data=_form(page, candidate, "reject",
                                                                          reason="too much like the others"))
    assert "Rejected candidate" in reason.text
    with logged_in.store.session() as session:
        assert session.get(Candidate, candidate).reason == "too much like the others"


def _schedule(store, job: str, at: datetime) -> None:  # type: ignore[no-untyped-def]
    """A job as APScheduler stores it: only its id and next run time are read here."""
    with store.session() as session:
        session.execute(insert(scheduler_jobs).values(id=job, next_run_time=at.timestamp(),
                                                      job_state=pickle.dumps({})))


def test_no_next_post_is_stated_while_the_scheduler_is_stopped(logged_in) -> None:  # type: ignore
    add_candidates(logged_in.store, "fb", TEXTS[:1])
    _schedule(logged_in.store, "fb:post", utcnow() - timedelta(minutes=3))  # left by a `bot run` that stopped
    approved = logged_in.client.get("/approved").text
    assert "Nothing is posted while the scheduler (<code>bot run</code>) is not running" in approved
    assert "Next scheduled post" not in approved and rendering.when(utcnow() - timedelta(minutes=3)) not in approved
    status = logged_in.client.get("/status").text
    assert '<dd class="next-runs">none: the scheduler is not running</dd>' in status
    assert rendering.when(utcnow() - timedelta(minutes=3)) not in status


def test_a_running_scheduler_shows_its_next_runs_and_a_past_one_as_due(logged_in) -> None:  # type: ignore
    add_candidates(logged_in.store, "fb", TEXTS[:1])
    lease.acquire(logged_in.store, SCHEDULER, seconds=600)
    late, soon = utcnow() - timedelta(minutes=3), utcnow() + timedelta(hours=2)
    _schedule(logged_in.store, "fb:post", late)
    _schedule(logged_in.store, "xb:post", soon)
    approved = logged_in.client.get("/approved").text
    assert 'Next scheduled post: <time datetime="' in approved
    assert f">due now (since {rendering.when(late)})</time>" in approved
    assert f">{rendering.when(soon)}</time>" in approved and "not running" not in approved
    status = logged_in.client.get("/status").text
    assert "The scheduler (<code>bot run</code>) is running (pid 4242 on otherhost)." in status
    assert f"post due now (since {rendering.when(late)})" in status and f"post {rendering.when(soon)}" in status


def test_upcoming_never_states_a_past_time_as_next() -> None:
    now = datetime(2024, 5, 1, 23, 46, tzinfo=utcnow().tzinfo)
    assert rendering.upcoming(now - timedelta(minutes=3), now=now) == "due now (since 2024-05-01 23:43 UTC)"
    assert rendering.upcoming((now + timedelta(minutes=3)).isoformat(), now=now) == "2024-05-01 23:49 UTC"
    assert rendering.upcoming(None, now=now) == "not scheduled"


def test_a_file_bots_post_is_shown_as_its_path_not_a_link(logged_in) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    [candidate] = add_candidates(logged_in.store, "fb", ["A post written to a file"])
    url = "file:///srv/nnbot/my%20posts.jsonl#41"
    with logged_in.store.session() as session:
        session.execute(update(Candidate).where(Candidate.id == candidate).values(
            status=Status.POSTED, posted_at=utcnow(), remote_url=url, version=Candidate.version + 1))
    for path in ("/posted", "/status"):
        page = logged_in.client.get(path).text
        assert 'href="file:' not in page, path
        assert '<span class="remote-url">/srv/nnbot/my posts.jsonl#41</span>' in page, path
    assert rendering.place("https://example.org/x") == "https://example.org/x"


def test_messages_shared_with_the_cli_show_commands_as_code() -> None:
    shown = rendering.prose("Run `bot status` <now>; then `bot run`.")
    assert str(shown) == "Run <code>bot status</code> &lt;now&gt;; then <code>bot run</code>."
    assert str(rendering.prose("`<script>`")) == "<code>&lt;script&gt;</code>"


def test_the_try_panel_counts_words_and_marks_not_case_markers() -> None:
    text = "NASA and Google launch a probe!"
    tokenizer = Tokenizer.build([text, text], case_markers=True, min_count=1)
    tokens = tokenizer.encode(text)
    markers = [tokenizer.pieces.index(MAJ), tokenizer.pieces.index(UP)]
    assert sum(t in markers for t in tokens) == 2 and len(tokens) == 9
    assert piece_count(text) == 7  # NASA, and, Google, launch, a, probe, !
    assert piece_count("Two  spaces\nand a line") == 5


def test_the_try_panel_shows_the_queues_score_and_counts_words_and_marks() -> None:
    from bot.web.trying import Tried

    own = Tried("NASA and Google launch a probe!", -18.0, 10, None)  # 10 tokens: 2 case markers and <eos> too
    read = Tried("NASA and Google launch a probe!", -18.0, 10, None, plausibility=-2.5)
    assert (own.score, own.pieces) == ("-1.80", 7)
    assert (read.score, read.pieces) == ("-2.50", 7)
    assert rendering.score_meaning(read) == rendering.SCORE_BY_BASE
