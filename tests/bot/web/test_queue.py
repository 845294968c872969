"""The queue's pages and actions: approve, reject, edit, bulk; stale forms; escaping; posted links; problems."""

from __future__ import annotations

from datetime import timedelta

from markupsafe import escape
from sqlalchemy import update

from bot.queue import candidate_json, get_candidate
from bot.store.schema import Candidate, Status, utcnow
from bot.web.rendering import SCORE_BY_BASE, SCORE_BY_OWN, SCORE_ORDER
from bot.web.security import CSRF_REFUSED
from tests.bot.service.helpers import add_candidates
from tests.bot.web.helpers import csrf_of, version_of

XSS = ("<script>alert(1)</script> is the headline today", '"><img src=x onerror=alert(1)> is the headline today',
       "javascript:alert(1) is the headline today")


def _rows(store, ids):  # type: ignore[no-untyped-def]
    with store.session() as session:
        return [candidate_json(get_candidate(session, i)) for i in ids]


def _set(store, candidate_id: int, **values) -> None:  # type: ignore[no-untyped-def]
    """Change a candidate as every writer does: its version moves on."""
    with store.session() as session:
        session.execute(update(Candidate).where(Candidate.id == candidate_id)
                        .values(version=Candidate.version + 1, **values))


def test_the_pending_page_shows_each_candidate_with_its_score_and_filters(logged_in) -> None:  # type: ignore
    ids = add_candidates(logged_in.store, "fb", ["Show HN: a thing I made", "Ask HN: what now"], approve=False,
                         logprobs=[-12.0, -3.0], tokens=6)
    page = logged_in.client.get("/").text
    for candidate_id in ids:
        assert f'<article class="candidate" id="c-{candidate_id}" data-id="{candidate_id}"' in page
        assert f'id="approve-{candidate_id}">Approve</button>' in page
    score = f'<span class="score" title="{escape(SCORE_BY_OWN)} {escape(SCORE_ORDER)}">Score <b>{{}}</b></span>'
    assert "Show HN: a thing I made" in page and score.format("-2.00") in page and score.format("-0.50") in page
    assert "Plausibility" not in page and page.count('class="score"') == 2  # one score per candidate
    assert f"· #{ids[0]} · temperature&nbsp;0.8 · top-p&nbsp;1.0 · model&nbsp;fb" in page
    # The filters every candidate passed are named once, for the section, not on every row.
    fb = page[page.index('id="bot-fb"'):page.index('id="bot-xb"')]
    assert fb.count('<span class="filter">novelty</span>') == 1
    assert '<p class="note passed">Each passed the filters: <span class="filter">controls</span>' in fb
    only_xb = logged_in.client.get("/", params={"bot": "xb"}).text
    assert 'id="bot-xb"' in only_xb and 'id="bot-fb"' not in only_xb and "Show HN" not in only_xb


def test_approve_and_reject_change_exactly_their_candidate(logged_in) -> None:  # type: ignore[no-untyped-def]
    store = logged_in.store
    first, second, third = add_candidates(store, "fb", ["one two three", "four five six", "seven eight nine"],
                                          approve=False)
    approved = logged_in.act(first, "approve")
    assert approved.status_code == 200 and "Approved candidate " + str(first) + "." in approved.text
    rejected = logged_in.act(second, "reject", reason="too bland")
    assert "Rejected candidate " + str(second) + "." in rejected.text
    rows = _rows(store, [first, second, third])
    assert [(r["status"], r["reason"]) for r in rows] == [("approved", None), ("rejected", "too bland"),
                                                          ("pending", None)]
    assert rows[0]["approved_at"] is not None
    assert "Approved candidate" not in logged_in.client.get("/").text  # the message shows once


def test_a_reject_without_a_reason_records_the_default(logged_in) -> None:  # type: ignore[no-untyped-def]
    [candidate] = add_candidates(logged_in.store, "fb", ["one two three"], approve=False)
    logged_in.act(candidate, "reject")
    assert _rows(logged_in.store, [candidate])[0]["reason"] == "rejected by a reviewer"


def test_an_edit_passes_the_filters_then_is_approved(logged_in) -> None:  # type: ignore[no-untyped-def]
    [candidate] = add_candidates(logged_in.store, "fb", ["one two three"], approve=False)
    response = logged_in.act(candidate, "edit", text="  A better title for the bot  ")
    assert response.status_code == 200 and f"Edited and approved candidate {candidate}." in response.text
    row = _rows(logged_in.store, [candidate])[0]
    assert (row["text"], row["sampled_text"], row["status"]) == ("A better title for the bot", "one two three",
                                                                 "approved")


def test_an_edit_a_filter_refuses_says_which_and_why_and_changes_nothing(logged_in) -> None:  # type: ignore
    store = logged_in.store
    ids = add_candidates(store, "fb", ["one two three", "an already queued title"], approve=False)
    before = _rows(store, ids)
    short = logged_in.act(ids[0], "edit", text="two words")
    assert short.status_code == 200 and short.url.path == "/" and short.url.fragment == f"c-{ids[0]}"
    assert "The edit was not saved: the length filter rejects it (has 2 words (minimum 3))." in short.text
    assert "two words</textarea>" in short.text  # the person's draft is kept for another try
    duplicate = logged_in.act(ids[0], "edit", text="An already queued title")
    assert duplicate.url.path == "/" and "the duplicate filter rejects it" in duplicate.text
    blocked = logged_in.act(ids[0], "edit", text="what the fuck is this")
    assert "the blocklist filter rejects it (contains the blocked term &#39;fuck&#39;)" in blocked.text
    assert _rows(store, ids) == before


def test_bulk_approve_and_reject_change_the_ticked_candidates_only(logged_in) -> None:  # type: ignore
    store = logged_in.store
    ids = add_candidates(store, "fb", ["one two three", "four five six", "seven eight nine", "ten eleven twelve"],
                         approve=False)
    page = logged_in.client.get("/").text
    versions = {f"version-{i}": version_of(page, i) for i in ids}
    token = csrf_of(page)
    done = logged_in.client.post("/candidates/bulk", data={"csrf_token": token, "back": "/", "action": "approve",
                                                           "ids": [str(ids[0]), str(ids[2])], **versions})
    assert f"Approved candidates {ids[0]}, {ids[2]}." in done.text
    page = logged_in.client.get("/").text
    versions = {f"version-{i}": version_of(page, i) for i in (ids[1],)}
    logged_in.client.post("/candidates/bulk", data={"csrf_token": token, "back": "/", "action": "reject",
                                                    "ids": [str(ids[1])], "reason": "meh", **versions})
    assert [(r["status"], r["reason"]) for r in _rows(store, ids)] == [
        ("approved", None), ("rejected", "meh"), ("approved", None), ("pending", None)]
    nothing = logged_in.client.post("/candidates/bulk", data={"csrf_token": token, "action": "approve"})
    assert nothing.url.path == "/" and "No candidate was chosen; tick the ones to approve." in nothing.text


def test_a_missing_or_wrong_csrf_token_is_refused_and_changes_nothing(logged_in) -> None:  # type: ignore
    store = logged_in.store
    ids = add_candidates(store, "fb", ["one two three", "four five six"], approve=False)
    page = logged_in.client.get("/").text
    before = _rows(store, ids)
    forms = [(f"/candidates/{ids[0]}", {"action": "approve", "version": version_of(page, ids[0])}),
             (f"/candidates/{ids[0]}", {"action": "edit", "text": "a new text here",
                                        "version": version_of(page, ids[0])}),
             ("/candidates/bulk", {"action": "reject", "ids": [str(i) for i in ids],
                                   **{f"version-{i}": version_of(page, i) for i in ids}}),
             ("/try/send", {"bot": "fb", "pick": "0", "text-0": "a new text here", "logprob-0": "-1", "tokens-0": "4",
                            "temperature": "1", "top_p": "1"}),
             ("/bots/fb/reconcile", {})]
    for path, data in forms:
        for token in (None, "not-the-token", ""):
            sent = data if token is None else {**data, "csrf_token": token}
            response = logged_in.client.post(path, data=sent)
            assert (response.status_code, response.text) == (403, CSRF_REFUSED), (path, token)
    assert _rows(store, ids) == before
    assert logged_in.client.get(f"/candidates/{ids[0]}").status_code == 405  # state changes are POST only


def test_a_stale_form_says_the_candidate_changed_and_changes_nothing(logged_in) -> None:  # type: ignore
    store = logged_in.store
    [candidate] = add_candidates(store, "fb", ["one two three"], approve=False)
    page = logged_in.client.get("/").text
    old = version_of(page, candidate)
    with store.session() as session:  # meanwhile, someone else (the CLI, another reviewer) rejects it
        from bot import queue

        queue.reject(session, [candidate], reason="by the CLI")
    for data in ({"action": "approve"}, {"action": "edit", "text": "a brand new text"}):
        response = logged_in.client.post(f"/candidates/{candidate}",
                                         data={"csrf_token": csrf_of(page), "version": old, "back": "/", **data})
        assert response.status_code == 200 and response.url.path == "/"
        assert (f"Candidate {candidate} changed after the page showed it (it is now rejected); nothing was changed, "
                "so look at it again and decide.") in response.text
    bulk = logged_in.client.post("/candidates/bulk", data={"csrf_token": csrf_of(page), "action": "approve",
                                                           "ids": [str(candidate)], f"version-{candidate}": old})
    assert bulk.url.path == "/" and "changed after the page showed it" in bulk.text
    row = _rows(store, [candidate])[0]
    assert (row["status"], row["reason"], row["text"]) == ("rejected", "by the CLI", "one two three")


def test_a_bulk_action_with_one_stale_candidate_changes_none(logged_in) -> None:  # type: ignore[no-untyped-def]
    store = logged_in.store
    ids = add_candidates(store, "fb", ["one two three", "four five six"], approve=False)
    page = logged_in.client.get("/").text
    versions = {f"version-{i}": version_of(page, i) for i in ids}
    _set(store, ids[1], text="changed by someone", updated_at=utcnow() + timedelta(seconds=1))
    response = logged_in.client.post("/candidates/bulk", data={"csrf_token": csrf_of(page), "action": "approve",
                                                               "ids": [str(i) for i in ids], **versions})
    assert "changed after the page showed it" in response.text
    assert [r["status"] for r in _rows(store, ids)] == ["pending", "pending"]


def test_generated_and_edited_text_is_always_escaped(logged_in) -> None:  # type: ignore[no-untyped-def]
    store = logged_in.store
    ids = add_candidates(store, "fb", list(XSS), approve=False)
    posted = add_candidates(store, "xb", list(XSS))
    for candidate_id, text in zip(posted, XSS):
        _set(store, candidate_id, status=Status.POSTED, posted_at=utcnow(), remote_url=text.split()[0])
    problem = add_candidates(store, "fb", ["<script>alert(2)</script> broke"])[0]
    _set(store, problem, status=Status.UNKNOWN, reason="<script>alert(3)</script>")
    pages = {path: logged_in.client.get(path).text for path in ("/", "/posted", "/problems", "/approved", "/status")}
    for text in XSS:
        assert str(escape(text)) in pages["/"]
    for page in pages.values():
        assert "<script>alert" not in page and "<img src=x" not in page
        assert 'href="javascript:' not in page
    assert "&lt;script&gt;alert(3)&lt;/script&gt;" in pages["/problems"]
    edited = logged_in.act(ids[0], "edit", text="<script>alert(4)</script> and more words")
    assert edited.status_code == 200 and "<script>alert" not in edited.text
    approved = logged_in.client.get("/approved").text
    assert "&lt;script&gt;alert(4)&lt;/script&gt; and more words" in approved and "<script>alert(4)" not in approved


def test_the_posted_history_links_only_web_urls_and_shows_a_file_post_as_its_path(logged_in) -> None:  # type: ignore[no-untyped-def]
    store = logged_in.store
    urls = ["https://www.reddit.com/r/test/comments/abc/", "file:///srv/posts.jsonl#3", "javascript:alert(1)",
            "data:text/html,<b>x</b>"]
    ids = add_candidates(store, "fb", [f"posted text number {n}" for n in range(len(urls))])
    for n, (candidate_id, url) in enumerate(zip(ids, urls)):
        _set(store, candidate_id, status=Status.POSTED, remote_url=url, posted_at=utcnow() + timedelta(minutes=n))
    page = logged_in.client.get("/posted").text
    assert ('<a href="https://www.reddit.com/r/test/comments/abc/" class="live" rel="noopener noreferrer" '
            'target="_blank">the post</a>') in page
    assert 'href="file:' not in page  # no page may open a file: URL; the path is what a person can use
    assert '<span class="remote-url">/srv/posts.jsonl#3</span>' in page
    assert '<span class="remote-url">javascript:alert(1)</span>' in page
    assert '<span class="remote-url">data:text/html,&lt;b&gt;x&lt;/b&gt;</span>' in page
    assert page.index("posted text number 3") < page.index("posted text number 0")  # newest first


def test_the_approved_queue_is_in_posting_order_with_the_next_post_time(logged_in) -> None:  # type: ignore
    store = logged_in.store
    ids = add_candidates(store, "fb", ["first approved title", "second approved title", "third approved title"],
                         approve=False)
    for candidate_id in (ids[2], ids[0], ids[1]):  # approved in this order: posted in this order
        logged_in.act(candidate_id, "approve")
    page = logged_in.client.get("/approved").text
    positions = [page.index(f'id="c-{i}"') for i in (ids[2], ids[0], ids[1])]
    assert positions == sorted(positions)
    assert ('<p class="scheduler stopped" id="scheduler">Nothing is posted while the scheduler (<code>bot run</code>) '
            'is not running; start it to post these in this order.</p>') in page
    assert 'id="next-post-fb"' not in page and "Next scheduled post" not in page
    response = logged_in.act(ids[0], "reject", page="/approved", reason="changed my mind")
    assert "Rejected candidate" in response.text and "<h1>Approved</h1>" in response.text
    assert _rows(store, [ids[0]])[0]["status"] == "rejected"


def test_problems_are_listed_with_their_reason_and_can_be_decided(logged_in) -> None:  # type: ignore
    store = logged_in.store
    unknown, failed, again = add_candidates(store, "fb", ["an unknown post", "a failed post", "another unknown"])
    _set(store, unknown, status=Status.UNKNOWN, reason="timed out after sending")
    _set(store, again, status=Status.UNKNOWN, reason="dropped connection")
    _set(store, failed, status=Status.FAILED, reason="the platform refused it")
    page = logged_in.client.get("/problems").text
    assert "timed out after sending" in page and "the platform refused it" in page
    assert 'id="reconcile-fb"' in page
    logged_in.act(unknown, "approve", page="/problems")
    logged_in.act(failed, "reject", page="/problems", reason="not worth it")
    reconciled = logged_in.post("/bots/fb/reconcile", {}, page="/problems")
    assert reconciled.status_code == 200
    assert f"Still unknown: {again} (not among the latest posts); approve each again to post it, or reject it." \
        in reconciled.text
    rows = _rows(store, [unknown, failed, again])
    assert [r["status"] for r in rows] == ["approved", "rejected", "unknown"]


def test_the_status_page_shows_what_bot_status_shows(logged_in) -> None:  # type: ignore[no-untyped-def]
    add_candidates(logged_in.store, "fb", ["one two three"], approve=False)
    page = logged_in.client.get("/status").text
    assert "The scheduler (<code>bot run</code>) is not running, so no job runs" in page
    assert "`" not in page  # the messages shared with the CLI show their commands as code
    assert ("under <code>bot run</code> trains it once corpus &#39;fb&#39; holds texts (or now: <code>bot train fb "
            "--model fb</code>)") in page
    assert 'id="status-fb"' in page and 'id="status-xb"' in page
    assert "pending 1, approved 0" in page and "0 of 1000 (UTC)" in page
    assert "fb: not trained yet; the bot&#39;s first refill" in page


def test_the_status_page_describes_a_model_a_worker_published_before_this_host_fetches_it(  # type: ignore
        logged_in, tiny_model_dir, tmp_path) -> None:
    import shutil

    from bot.config import load_settings
    from bot.model_store import HASH_PREFIX, publish

    worker = load_settings(bot_home=tmp_path / "worker")  # another host's BOT_HOME, the same database
    published = publish(logged_in.store, "fb", shutil.copytree(tiny_model_dir, worker.model_dir("fb")), replaces=None)
    page = logged_in.client.get("/status").text
    assert (f"version {published.sha256[:HASH_PREFIX]}: not on this host yet, fetched from the database on first "
            "use") in page
    assert "fb: not trained yet" not in page and not logged_in.settings.model_dir("fb").exists()


def test_the_status_page_shows_the_workers_and_their_tasks_once_there_are_any(logged_in) -> None:  # type: ignore
    from bot.processes import describe_owner, process_owner
    from bot.store.schema import JobRun, Worker

    assert 'id="workers"' not in logged_in.client.get("/status").text  # no broker, no worker: as before
    now, me = utcnow(), process_owner()
    with logged_in.store.session() as s:
        s.add_all([Worker(name=me, queues="train,refill", concurrency=1, protocol=1, started_at=now, heartbeat_at=now),
                   JobRun(bot="fb", job="train", started_at=now, queue="train", owner=me, heartbeat_at=now,
                          message="training: epoch 2 done, held-out perplexity 60.1 (3s)"),
                   JobRun(bot="fb", job="refill", started_at=now, finished_at=now, queue="refill", outcome="error",
                          message="the broker did not take the task <b>x</b>")])
    page = logged_in.client.get("/status").text
    assert '<section class="workers status" id="workers">' in page
    assert f"{describe_owner(me)}: queues train, refill, 1 at a time; heartbeat " in page
    assert "refill 0 waiting, 0 running; train 0 waiting, 1 running" in page
    assert f"fb train on {describe_owner(me)} since " in page and "training: epoch 2 done" in page
    assert "the broker did not take the task &lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page


def test_an_unknown_candidate_or_action_gets_a_sentence(logged_in) -> None:  # type: ignore[no-untyped-def]
    token = logged_in.token()
    missing = logged_in.client.post("/candidates/999", data={"csrf_token": token, "action": "approve",
                                                             "version": "x"})
    assert missing.url.path == "/"
    assert '<p class="error" id="error" role="alert">There is no candidate 999' in missing.text
    [candidate] = add_candidates(logged_in.store, "fb", ["one two three"], approve=False)
    odd = logged_in.client.post(f"/candidates/{candidate}", data={"csrf_token": token, "action": "post"})
    assert odd.url.path == "/" and f"Choose one of approve, reject, edit for candidate {candidate}." in odd.text
    seen = version_of(logged_in.client.get("/").text, candidate)
    away = logged_in.client.post(f"/candidates/{candidate}", data={"csrf_token": token, "action": "reject",
                                                                   "back": "https://evil.example/", "version": seen},
                                 follow_redirects=False)
    assert away.headers["location"] == "/"  # never a redirect to a URL a form names


def test_pending_candidates_are_shown_most_plausible_first_with_their_plausibility(logged_in) -> None:  # type: ignore
    ids = add_candidates(logged_in.store, "fb", ["Third by the reader", "First by the reader", "Not scored"],
                         approve=False)
    with logged_in.store.session() as session:
        for candidate_id, value in zip(ids[:2], (-5.25, -3.5)):
            session.get(Candidate, candidate_id).plausibility = value
    page = logged_in.client.get("/").text
    order = [page.index(f'id="c-{i}"') for i in (ids[1], ids[0], ids[2])]
    assert order == sorted(order)  # scored ones best first, the unscored one after them
    score = f'<span class="score" title="{escape(SCORE_BY_BASE)} {escape(SCORE_ORDER)}">Score <b>-3.50</b></span>'
    assert score in page and "Plausibility" not in page and ">-3.500<" not in page
