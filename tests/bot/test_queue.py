"""The review queue on SQLite and PostgreSQL: status rules, all-or-nothing moves, edits re-checked."""

import pytest

from bot import queue
from bot.errors import NotFoundError, QueueError
from bot.filters import FilterConfig, FilterSet
from bot.store.schema import Status
from models.sampler import Sample

RECORD = queue.SamplingRecord(model="m", temperature=0.8, top_k=0, top_p=0.9, prefix=None, seed=5)


def sample(text: str) -> Sample:
    return Sample(text=text, logprob=-12.5, tokens=len(text.split()) + 1, complete=True)


@pytest.fixture
def ids(store) -> list[int]:  # type: ignore[no-untyped-def]
    with store.session() as s:
        rows = queue.enqueue(s, "hn", [sample(t) for t in ("one two three", "four five six", "seven eight nine")],
                             RECORD)
        queue.enqueue(s, "other", [sample("ten eleven twelve")], RECORD)
        return [r.id for r in rows]


def statuses(store, bot: str = "hn") -> list[str]:  # type: ignore[no-untyped-def]
    with store.session() as s:
        return [c.status for c in queue.list_candidates(s, bot=bot)]


def test_enqueued_candidates_are_pending_with_their_sampling(store, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        rows = queue.list_candidates(s, bot="hn")
        row = queue.candidate_json(rows[0])
    assert [r.id for r in rows] == ids and statuses(store) == ["pending"] * 3
    assert {k: row[k] for k in ("bot", "model", "status", "text", "edited", "logprob", "tokens", "temperature",
                                "top_k", "top_p", "seed", "reason")} == {
        "bot": "hn", "model": "m", "status": "pending", "text": "one two three", "edited": False, "logprob": -12.5,
        "tokens": 4, "temperature": 0.8, "top_k": 0, "top_p": 0.9, "seed": 5, "reason": None}


def test_list_filters_by_status_and_bot(store, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        queue.approve(s, [ids[0]])
        assert [c.id for c in queue.list_candidates(s, status="approved")] == [ids[0]]
        assert len(queue.list_candidates(s, status="pending")) == 3
        assert len(queue.list_candidates(s, status="pending", bot="hn")) == 2
        assert len(queue.list_candidates(s, limit=1)) == 1


def test_approve_and_reject(store, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        queue.approve(s, ids[:2])
        queue.reject(s, [ids[2]], reason="off topic")
    assert statuses(store) == ["approved", "approved", "rejected"]
    with store.session() as s:
        assert queue.get_candidate(s, ids[2]).reason == "off topic"
        queue.approve(s, [ids[2]])  # a person may change their mind; the rejection stays on record
        again = queue.get_candidate(s, ids[2])
        assert (again.status, again.reason) == ("approved", "approved again after rejection (was: off topic)")
        assert again.approved_at == again.updated_at and again.retry_at is None  # what posting goes by
        queue.reject(s, [ids[0]])
        queue.approve(s, [ids[0]])
        assert queue.get_candidate(s, ids[0]).reason == "approved again after rejection (was: rejected by a reviewer)"


def test_a_move_that_is_not_allowed_changes_nothing(store, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        queue.get_candidate(s, ids[1]).status = Status.POSTED
    with pytest.raises(QueueError) as error, store.session() as s:
        queue.reject(s, [ids[0], ids[1]])
    assert str(error.value) == (f"Candidate {ids[1]} is posted and cannot become rejected; "
                                "only pending, approved, failed, unknown candidates can.")
    assert statuses(store) == ["pending", "posted", "pending"]
    with pytest.raises(NotFoundError) as missing, store.session() as s:
        queue.approve(s, [ids[0], 999_999])
    assert str(missing.value) == "There is no candidate 999999; `bot queue list` shows the queue."
    assert statuses(store) == ["pending", "posted", "pending"]


def test_an_edit_is_checked_by_the_filters(store, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    def filters(s, excluding: int) -> FilterSet:  # type: ignore[no-untyped-def]
        return FilterSet(FilterConfig(), platform="x", existing=queue.existing_texts(s, "hn", excluding=excluding))

    with store.session() as s:
        queue.edit(s, ids[0], "  one two three and more  ", filters(s, ids[0]))
        row = queue.get_candidate(s, ids[0])
        assert (row.text, row.sampled_text, queue.candidate_json(row)["edited"]) == (
            "one two three and more", "one two three", True)
    cases = [("four five six", "The edit was not saved: the duplicate filter rejects it "),
             ("hi", "The edit was not saved: the length filter rejects it "),
             ("ping @someone about this", "The edit was not saved: the mentions filter rejects it ")]
    for text, start in cases:
        with pytest.raises(QueueError) as error, store.session() as s:
            queue.edit(s, ids[0], text, filters(s, ids[0]))
        assert str(error.value).startswith(start)
    with store.session() as s:
        assert queue.get_candidate(s, ids[0]).text == "one two three and more"
        queue.edit(s, ids[0], "one two three and more", filters(s, ids[0]))  # its own text is no duplicate


def test_posted_candidates_cannot_be_edited(store, ids: list[int]) -> None:  # type: ignore[no-untyped-def]
    with store.session() as s:
        queue.get_candidate(s, ids[0]).status = Status.POSTED
    with pytest.raises(QueueError) as error, store.session() as s:
        queue.edit(s, ids[0], "something else entirely", None)
    assert str(error.value) == f"Candidate {ids[0]} is posted and can no longer be edited."


def test_an_edit_never_brings_in_a_control_character(store,  # type: ignore[no-untyped-def]
                                                     ids: list[int]) -> None:
    for filters in (None, FilterSet(FilterConfig(), platform="reddit")):
        with pytest.raises(QueueError) as error, store.session() as s:
            queue.edit(s, ids[0], "one two \x1b[2J three", filters)
        assert str(error.value) == ("The edit was not saved: the controls filter rejects it (contains the control "
                                    "character \\x1b).")
    with store.session() as s:
        assert queue.get_candidate(s, ids[0]).text == "one two three"
        queue.edit(s, ids[0], "one two\tthree", None)  # a tab is text
