"""Tests for the file importers: what each format yields, exactly, and the error sentence for bad input."""

from __future__ import annotations

import inspect
import logging
import os
import shutil
import socket
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scrapers.documents import Document
from scrapers.errors import ImportFormatError
from scrapers.files import CHUNK_BYTES, FORMATS, detect_format, read_documents
from tests.scrapers.helpers import import_error, write

DATA = Path(__file__).parent / "data"
ARCHIVE = DATA / "archive"
SHA1_HELLO = "sha1:aaf4c61ddcc5e8a2dabede0f3b482cd9aea9434d"
SHA1_FISH = "sha1:e828ebac2b9222811d61e03d0410dd92dda41762"
SHA1_CAFE = "sha1:f424452a9673918c6f09b0cdd35b20be8e6ae7d7"
SHA1_PLAIN = "sha1:68c46e84d76d2e7e686e5158bf598909abd4e45b"
LONG_TWEET = (
    "A long post, well past the old limit of 280 characters, the kind X calls a note tweet. It goes on about "
    "how a small word-level LSTM learns the voice of an account from a few thousand posts, how it keeps case "
    "and punctuation, and how a person approves each post before it goes out. It ends here."
)


def texts(documents: list[Document]) -> list[str]:
    return [document.text for document in documents]


# --- formats and detection ------------------------------------------------------------------------


def test_formats_are_the_cli_choices() -> None:
    assert FORMATS == ("auto", "txt", "csv", "jsonl", "x-archive")


@pytest.mark.parametrize(("name", "expected"), [
    ("posts.txt", "txt"), ("POSTS.TXT", "txt"), ("posts.csv", "csv"), ("posts.jsonl", "jsonl"),
    ("posts.ndjson", "jsonl"), ("tweets.js", "x-archive"), ("twitter-2024.zip", "x-archive"),
])
def test_detect_format_by_extension(name: str, expected: str) -> None:
    assert detect_format(Path(name)) == expected


def test_detect_format_of_a_folder_is_an_x_archive(tmp_path: Path) -> None:
    assert detect_format(tmp_path) == "x-archive"


def test_detect_format_unknown_extension_names_the_flag() -> None:
    with pytest.raises(ImportFormatError) as caught:
        detect_format(Path("posts.xlsx"))
    assert str(caught.value) == (
        "Could not tell the format of posts.xlsx from its extension; "
        "pass --format txt, csv, jsonl or x-archive."
    )


def test_read_documents_streams_one_document_at_a_time(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.jsonl", b'{"text": "first"}\n{"text": "second"}\nnot json\n')
    documents = read_documents(path)
    assert inspect.isgenerator(documents)
    assert next(documents).text == "first"  # yielded before the bad line 3 is even read
    assert next(documents).text == "second"
    with pytest.raises(ImportFormatError):
        next(documents)


def test_explicit_format_overrides_the_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.log", b"one\ntwo\n")
    assert texts(list(read_documents(path, format="txt"))) == ["one", "two"]


# --- txt ------------------------------------------------------------------------------------------


def test_txt_one_document_per_line_blank_lines_skipped() -> None:
    assert list(read_documents(DATA / "posts.txt")) == [
        Document(source="file", external_id=SHA1_HELLO, text="hello"),
        Document(source="file", external_id=SHA1_FISH, text="Fish & chips"),
        Document(source="file", external_id=SHA1_HELLO, text="hello"),  # same line, same id: the store skips
    ]


def test_txt_windows_line_endings_are_stripped(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.txt", b"hello\r\n\r\n  Fish & chips\t\r\n")
    assert [(d.text, d.external_id) for d in read_documents(path)] == [
        ("hello", SHA1_HELLO), ("Fish & chips", SHA1_FISH),
    ]


def test_txt_utf8_bom_is_not_part_of_the_text(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.txt", b"\xef\xbb\xbfhello\n")
    assert list(read_documents(path)) == [Document(source="file", external_id=SHA1_HELLO, text="hello")]


def test_txt_latin1_file_is_read_as_windows_1252(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.txt", b"plain\ncaf\xe9\n")
    assert [(d.text, d.external_id) for d in read_documents(path)] == [
        ("plain", SHA1_PLAIN), ("café", SHA1_CAFE),
    ]


def test_txt_windows_1252_curly_quotes_are_kept(tmp_path: Path) -> None:
    # in Latin-1 these bytes would be C1 control characters, and removed
    path = write(tmp_path / "posts.txt", b"It\x92s \x93quoted\x94 \x96 caf\xe9\n")
    assert texts(list(read_documents(path))) == ["It\u2019s \u201cquoted\u201d \u2013 café"]


# --- csv ------------------------------------------------------------------------------------------


def test_csv_quoted_fields_and_metadata() -> None:
    assert list(read_documents(DATA / "posts.csv")) == [
        Document(source="file", external_id="t1", text="Hello, world", author="alice",
                 created_at=datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC), score=12,
                 url="https://example.com/1"),
        Document(source="file", external_id="t2", text="Two lines\nin one cell", author="bob",
                 created_at=datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)),
        # t3 has blank text and is skipped; a row with no id gets its text hash; a bare date is midnight UTC
        Document(source="file", external_id="sha1:71ba9186189ea976fa873f35262fb76f9f75df93",
                 text='She said "hi", then left', author="carol", created_at=datetime(2020, 1, 1, tzinfo=UTC),
                 score=3),
    ]


@pytest.mark.parametrize(("header", "expected"), [
    ("Tweet,title", "from Tweet"),
    ("title,tweet", "from tweet"),
    ("full_text,title", "from title"),
    ("other,full_text", "from full_text"),
    ("title,text", "from text"),
])
def test_csv_text_column_fallbacks_in_order(tmp_path: Path, header: str, expected: str) -> None:
    first, second = header.split(",")
    path = write(tmp_path / "posts.csv", f"{header}\nfrom {first},from {second}\n".encode())
    assert texts(list(read_documents(path))) == [expected]


def test_csv_column_option_picks_the_text(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.csv", b"text,message\nignored,the message\n")
    assert list(read_documents(path, column="message")) == [
        Document(source="file", external_id="sha1:a890a8036880f8a3d657ee497f08e660eb11d812",
                 text="the message"),
    ]


def test_csv_utf8_bom_does_not_hide_the_header(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.csv", "\ufefftext,id\ncafé,7\n".encode())
    assert list(read_documents(path)) == [Document(source="file", external_id="7", text="café")]


def test_csv_latin1_file_is_read_as_windows_1252_throughout(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.csv", b"text\nplain\ncaf\xe9\n")
    assert texts(list(read_documents(path))) == ["plain", "café"]


def test_csv_utf8_character_across_the_check_chunk_is_still_utf8(tmp_path: Path) -> None:
    # "é" is two bytes in UTF-8; put them either side of the chunk boundary of the encoding check
    header, row = "text\n", "x" * 99 + "\n"
    rows, last = divmod(CHUNK_BYTES - 1 - len(header), len(row))
    path = write(tmp_path / "posts.csv", f"{header}{row * rows}{'y' * last}é\n".encode())
    documents = texts(list(read_documents(path)))
    assert (len(documents), documents[-1]) == (rows + 1, "y" * last + "é")


# --- jsonl ----------------------------------------------------------------------------------------


def test_jsonl_text_fields_ids_and_metadata() -> None:
    assert list(read_documents(DATA / "posts.jsonl")) == [
        Document(source="file", external_id="17", text="First post", author="alice",
                 created_at=datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC), score=5,
                 url="https://example.com/17"),
        Document(source="file", external_id="abc", text="Second, via full_text"),
        Document(source="file", external_id="sha1:aadfbfd7a5938790bca726bdf5be3f83d45b436e",
                 text="Third via title",  # created_at given in Unix seconds
                 created_at=datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC)),
        Document(source="file", external_id="sha1:980940189a94c0509384016a2bcc5a04054efd20",
                 text="Fourth via body"),
        # {"text": null} and {"text": "   "} hold nothing to learn from and are skipped
    ]


def test_jsonl_column_option_picks_the_text(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.ndjson", b'{"text": "ignored", "message": "hello", "id": 3}\n')
    assert list(read_documents(path, column="message")) == [
        Document(source="file", external_id="3", text="hello"),
    ]


# --- x archive ------------------------------------------------------------------------------------

FISH_TWEET = Document(
    source="x", external_id="1050118621198921728", text='Fish & chips <3 > "pizza"', author="nnbot_fan",
    created_at=datetime(2018, 10, 10, 20, 19, 24, tzinfo=UTC), score=12,
    url="https://x.com/i/web/status/1050118621198921728",
)
RETWEET = Document(
    source="x", external_id="1050118621198921729", text="RT @someone: a retweet is someone else's words",
    author="nnbot_fan", created_at=datetime(2018, 10, 10, 21, tzinfo=UTC), score=0,
    url="https://x.com/i/web/status/1050118621198921729",
)
REPLY = Document(
    source="x", external_id="1050118621198921730", text="@friend same here", author="nnbot_fan",
    created_at=datetime(2018, 10, 11, 8, 30, tzinfo=UTC), score=1,
    url="https://x.com/i/web/status/1050118621198921730",
)
LONG = Document(
    source="x", external_id="1650118621198921731", text=LONG_TWEET, author="nnbot_fan",
    created_at=datetime(2023, 4, 23, 12, tzinfo=UTC), score=140,
    url="https://x.com/i/web/status/1650118621198921731",
)
PART1 = Document(
    source="x", external_id="950118621198921700", text="An older post, from the second part of the archive",
    author="nnbot_fan", created_at=datetime(2018, 1, 8, 9, 15, tzinfo=UTC), score=7,
    url="https://x.com/i/web/status/950118621198921700",
)


def zip_archive(tmp_path: Path, *, prefix: str = "") -> Path:
    path = tmp_path / "twitter-2024-01-01.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for file in sorted((ARCHIVE / "data").iterdir()):
            archive.write(file, arcname=f"{prefix}data/{file.name}")
    return path


def test_x_tweets_js_leaves_retweets_out_and_keeps_long_tweets_whole() -> None:
    assert list(read_documents(ARCHIVE / "data" / "tweets.js")) == [FISH_TWEET, REPLY, LONG]
    assert len(LONG.text) > 280


def test_x_tweets_js_with_retweets() -> None:
    assert list(read_documents(ARCHIVE / "data" / "tweets.js", include_retweets=True)) == [
        FISH_TWEET, RETWEET, REPLY, LONG,
    ]


def test_x_archive_folder_reads_every_part_in_order() -> None:
    assert list(read_documents(ARCHIVE)) == [FISH_TWEET, REPLY, LONG, PART1]
    assert list(read_documents(ARCHIVE / "data", format="x-archive")) == [FISH_TWEET, REPLY, LONG, PART1]


@pytest.mark.parametrize("prefix", ["", "twitter-2024-01-01/"])
def test_x_archive_zip_is_read_without_unzipping(tmp_path: Path, prefix: str) -> None:
    assert list(read_documents(zip_archive(tmp_path, prefix=prefix), include_retweets=True)) == [
        FISH_TWEET, RETWEET, REPLY, LONG, PART1,
    ]
    assert sorted(path.name for path in tmp_path.iterdir()) == ["twitter-2024-01-01.zip"]


def test_x_old_archive_without_wrapper_or_account(tmp_path: Path) -> None:
    path = write(tmp_path / "tweet.js", b"""window.YTD.tweet.part0 = [ {
        "id_str": "5", "full_text": "old style &amp; bare", "created_at": "Tue Jan 01 00:00:00 +0000 2019",
        "favorite_count": "2", "retweeted": false
      }, {
        "id_str": "6", "full_text": "retweeted without the RT prefix", "retweeted": true
      } ]""")
    assert list(read_documents(path)) == [
        Document(source="x", external_id="5", text="old style & bare",
                 created_at=datetime(2019, 1, 1, tzinfo=UTC), score=2, url="https://x.com/i/web/status/5"),
    ]


def test_x_unreadable_account_js_only_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = write(tmp_path / "tweets.js",
                 b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": "hi"}}]')
    write(tmp_path / "account.js", b"window.YTD.account.part0 = []")
    with caplog.at_level(logging.WARNING):
        assert list(read_documents(path)) == [
            Document(source="x", external_id="1", text="hi", url="https://x.com/i/web/status/1"),
        ]
    assert caplog.messages == [f"{tmp_path / 'account.js'} has no readable account username; "
                               "importing the tweets without an author."]


# --- errors ---------------------------------------------------------------------------------------


def test_error_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.txt"
    assert import_error(path) == f"{path} does not exist; check the path and try again."


@pytest.mark.parametrize("format", ["txt", "csv", "jsonl"])
def test_error_directory_for_a_file_format(tmp_path: Path, format: str) -> None:
    assert import_error(tmp_path, format=format) == (
        f"{tmp_path} is a directory; pass a file, or --format x-archive if it is an unzipped X archive."
    )


def test_error_unknown_format_value() -> None:
    assert import_error(DATA / "posts.txt", format="xml") == (
        f"Unknown format 'xml' for {DATA / 'posts.txt'}; "
        "pass --format with one of auto, txt, csv, jsonl, x-archive."
    )


def test_error_unknown_extension(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.xlsx", b"hello\n")
    assert import_error(path) == (
        f"Could not tell the format of {path} from its extension; pass --format txt, csv, jsonl or x-archive."
    )


def test_error_column_for_a_format_without_columns() -> None:
    assert import_error(DATA / "posts.txt", column="text") == (
        f"--column applies to csv and jsonl files, not txt; leave it out for {DATA / 'posts.txt'}."
    )


def test_error_unreadable_file(tmp_path: Path) -> None:
    # a socket exists but cannot be opened, even by root, so this runs everywhere
    path = tmp_path / "s.txt"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert import_error(path) == (
            f"{path} could not be read (No such device or address); "
            "check that it is a file you may read and try again."
        )


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_error_file_without_read_permission(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.txt", b"hello\n")
    path.chmod(0)
    assert import_error(path) == (
        f"{path} could not be read (Permission denied); check that it is a file you may read and try again."
    )


@pytest.mark.parametrize(("name", "content"), [
    ("empty.txt", b""), ("blank.txt", b"\n  \r\n\t\n"), ("empty.csv", b""), ("header.csv", b"id,text\n"),
    ("blank.csv", b"text\n\"  \"\n"), ("empty.jsonl", b""), ("blank.jsonl", b'\n{"text": ""}\n'),
])
def test_error_no_documents(tmp_path: Path, name: str, content: bytes) -> None:
    path = write(tmp_path / name, content)
    assert import_error(path) == (
        f"{path} holds no documents; check that it is the file you meant and that it is not empty."
    )


def test_error_csv_without_a_text_column(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.csv", b"id,message\n1,hello\n")
    assert import_error(path) == (
        f"{path} has no text column (text, Tweet, tweet, title, full_text; found: id, message); "
        "pass --column with the one that holds the text."
    )


def test_error_csv_column_not_in_header(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.csv", b"id,message\n1,hello\n")
    assert import_error(path, column="body") == (
        f"{path} has no column 'body' (found: id, message); pass --column with one of those."
    )


def test_error_csv_bad_metadata_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.csv", b"text,created_at\nfine,2020-01-01\nbad,yesterday\n")
    assert import_error(path) == (
        f"{path} line 3 has created_at 'yesterday', not an ISO 8601 time like 2018-10-10T20:19:24Z; "
        "fix it or leave it blank."
    )


def test_error_jsonl_malformed_line(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.jsonl", b'{"text": "fine"}\n\n{"text": "trailing comma",}\n')
    assert import_error(path) == (
        f"{path} line 3 is not valid JSON (Expecting property name enclosed in double quotes); "
        "fix or remove that line."
    )


def test_error_jsonl_line_not_an_object(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.jsonl", b'["a", "list"]\n')
    assert import_error(path) == (
        f'{path} line 1 is not a JSON object; write one object per line, like {{"text": ...}}.'
    )


def test_error_jsonl_line_without_text_field(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.jsonl", b'{"text": "fine"}\n{"message": "hello"}\n')
    assert import_error(path) == (
        f"{path} line 2 has no text or full_text or title or body field; "
        "pass --column with the key that holds the text."
    )
    assert import_error(path, column="message") == (
        f"{path} line 1 has no message field; pass --column with the key that holds the text."
    )


def test_error_jsonl_bad_score(tmp_path: Path) -> None:
    path = write(tmp_path / "posts.jsonl", b'{"text": "hello", "score": "lots"}\n')
    assert import_error(path) == (
        f"{path} line 1 has score 'lots', not a whole number; fix it or leave it blank."
    )


@pytest.mark.parametrize("content", [
    b"[]", b"window.YTD.tweets.part0 = [ {", b'window.YTD.tweets.part0 = {"tweet": {}}',
])
def test_error_not_an_x_archive(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path / "tweets.js", content)
    assert import_error(path) == (
        f"{path} is not an X archive tweets file (expected `window.YTD.tweets.part0 = [...]`); "
        "pass the archive's data/tweets.js, its folder or its .zip."
    )


def test_error_x_item_without_full_text(tmp_path: Path) -> None:
    path = write(tmp_path / "tweets.js", b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1"}}]')
    assert import_error(path) == (
        f"{path} item 1 has no full_text; pass the tweets.js of an unmodified X archive."
    )


def test_error_x_bad_created_at(tmp_path: Path) -> None:
    path = write(tmp_path / "tweets.js",
                 b'window.YTD.tweets.part0 = [{"tweet": '
                 b'{"id_str": "1", "full_text": "hi", "created_at": "soon"}}]')
    assert import_error(path) == (
        f"{path} item 1 has created_at 'soon', not a time like 'Wed Oct 10 20:19:24 +0000 2018'; "
        "pass the tweets.js of an unmodified X archive."
    )


def test_error_x_only_retweets_says_how_to_include_them(tmp_path: Path) -> None:
    path = write(tmp_path / "tweets.js",
                 b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": "RT @a: theirs"}}]')
    assert import_error(path) == (
        f"{path} holds no documents (retweets are left out unless you pass --include-retweets); "
        "check that it is the file you meant and that it is not empty."
    )


def test_error_folder_without_tweets(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    assert import_error(tmp_path) == (
        f"{tmp_path} holds no data/tweets.js; "
        "pass an X archive (its .zip, its unzipped folder or its tweets.js) or choose another --format."
    )


def test_error_zip_without_tweets(tmp_path: Path) -> None:
    path = tmp_path / "photos.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("data/account.js", (ARCHIVE / "data" / "account.js").read_bytes())
    assert import_error(path) == (
        f"{path} holds no data/tweets.js; "
        "pass an X archive (its .zip, its unzipped folder or its tweets.js) or choose another --format."
    )


def test_error_damaged_zip(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    content = b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": "hi"}}]'
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("data/tweets.js", content)
    # flip the stored text so its CRC no longer matches, as a cut-off download would
    write(path, path.read_bytes().replace(b'"hi"', b'"HI"'))
    assert import_error(path) == (
        f"{path} is a damaged .zip file (Bad CRC-32 for file 'data/tweets.js'); "
        "download the X archive again or pass its unzipped folder."
    )


def test_fixture_archive_is_left_untouched(tmp_path: Path) -> None:
    # reading copies of the archive must not write into it (no extraction, no caches)
    copy = shutil.copytree(ARCHIVE, tmp_path / "archive")
    before = sorted(path.relative_to(copy) for path in copy.rglob("*"))
    list(read_documents(copy))
    assert sorted(path.relative_to(copy) for path in copy.rglob("*")) == before
