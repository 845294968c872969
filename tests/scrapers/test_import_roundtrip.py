"""Property: whatever bytes an importer gets, it refuses them in one sentence and stores nothing, or it stores
documents that export (JSONL and CSV) and import again unchanged, adding nothing the second time.

Runs on SQLite and PostgreSQL, so both accept and refuse the same inputs. Seeded (derandomize) and modest in size.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.corpus import add_documents, export_corpus, get_corpus, sample_documents
from bot.errors import BotError, NotFoundError
from scrapers.errors import ScrapeError
from scrapers.files import read_documents

FILE_NAMES = {"txt": "posts.txt", "csv": "posts.csv", "jsonl": "posts.jsonl", "x-archive": "tweets.js"}
EXAMPLES = 150  # per format and database: about 10 seconds for the whole file
ENCODINGS = ("utf-8", "utf-8-sig", "utf-16", "utf-16-be", "utf-32", "utf-32-be", "cp1252")
BOMS = {"utf-16-be": b"\xfe\xff", "utf-32-be": b"\x00\x00\xfe\xff"}  # codecs that write no mark of their own
TRICKY = "ab Zé☕\t\n\r\x00\x07\x1b[31m\x7f\x85\x9b\u2028\"',{}[]=\\"  # characters importers must not trip on
corpus_names = (f"c{n}" for n in itertools.count())

chars = st.one_of(st.sampled_from(TRICKY), st.characters())
texts = st.text(chars, max_size=24)
ids = st.one_of(st.none(), st.from_regex(r"[0-9]{1,6}", fullmatch=True), st.integers(-5, 10**6), texts)
sources = st.one_of(st.none(), st.sampled_from(["file", "reddit", "x", ""]), texts)


@st.composite
def encoded(draw, text: st.SearchStrategy[str]) -> bytes:  # type: ignore[no-untyped-def]
    encoding = draw(st.sampled_from(ENCODINGS))
    return BOMS.get(encoding, b"") + draw(text).encode(encoding, errors="ignore")


def csv_text(rows: list[tuple[str, object, object, object]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["text", "id", "source", "author"])
    writer.writerows(["" if value is None else value for value in row] for row in rows)
    return out.getvalue()


def jsonl_text(rows: list[tuple[str, object, object, object]], ascii_only: bool) -> str:
    return "".join(json.dumps({"text": text, "id": id_, "source": source, "author": author},
                              ensure_ascii=ascii_only) + "\n" for text, id_, source, author in rows)


def tweets_text(tweets: list[tuple[str, object]], ascii_only: bool) -> str:
    items = [{"tweet": {"id_str": id_, "full_text": text, "favorite_count": "3"}} for text, id_ in tweets]
    return "window.YTD.tweets.part0 = " + json.dumps(items, ensure_ascii=ascii_only, indent=1)


rows = st.lists(st.tuples(texts, ids, sources, st.one_of(st.none(), texts)), min_size=1, max_size=4)
tweet_ids = st.one_of(st.from_regex(r"[0-9]{1,3}", fullmatch=True), ids)  # drawn from each half alike
STRUCTURED = {
    "txt": st.lists(texts, max_size=5).map("\n".join),
    "csv": rows.map(csv_text),
    "jsonl": st.builds(jsonl_text, rows, st.booleans()),
    "x-archive": st.builds(tweets_text, st.lists(st.tuples(texts, tweet_ids), min_size=1, max_size=3), st.booleans()),
}


def contents(format: str) -> st.SearchStrategy[bytes]:
    structured = encoded(STRUCTURED[format])
    spliced = st.tuples(structured, st.binary(max_size=8), st.integers(0, 400)).map(
        lambda t: t[0][:t[2]] + t[1] + t[0][t[2]:])  # a few stray bytes somewhere in a good file
    return st.one_of(st.binary(max_size=200), structured, spliced)


@pytest.mark.parametrize("format", list(FILE_NAMES))
def test_every_input_is_refused_cleanly_or_round_trips(store, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                       format: str) -> None:
    path = tmp_path / FILE_NAMES[format]

    @settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(content=contents(format))
    def check(content: bytes) -> None:
        path.write_bytes(content)
        name = next(corpus_names)
        try:
            with store.session() as session:
                add_documents(session, name, read_documents(path, format=format, include_retweets=True))
        except (ScrapeError, BotError) as error:
            message = str(error)
            assert "\n" not in message and message.endswith(".") and "; " in message, message
            with store.session() as session, pytest.raises(NotFoundError):
                get_corpus(session, name)  # nothing stored, not even the corpus
            return
        assert_round_trips(store, name, tmp_path)

    check()


def assert_round_trips(store, name: str, folder: Path) -> None:  # type: ignore[no-untyped-def]
    with store.session() as session:
        stored = [(d.source, d.external_id, d.text) for d in sample_documents(session, name, limit=1000)]
    for suffix in (".jsonl", ".csv"):
        export = folder / f"export{suffix}"
        with store.session() as session:
            export_corpus(session, name, export, force=True)
        assert [(d.source, d.external_id, d.text) for d in read_documents(export)] == [
            (source, id_, text.strip()) for source, id_, text in stored]  # importers trim, as they always have
        with store.session() as session:
            again = add_documents(session, name, read_documents(export))
        assert (again.added, again.already_present) == (0, len(stored))
