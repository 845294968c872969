"""What the file importers make of bytes: encodings by byte order mark, what is not text, control characters, zips."""

from __future__ import annotations

import codecs
import hashlib
import io
import struct
import zipfile
from pathlib import Path

import pytest

from scrapers.documents import Document
from scrapers.files import decode_text, read_documents
from scrapers.x_archive import MAX_COMPRESSION_RATIO
from tests.scrapers.helpers import import_error, write

TWO_LINES = "Hello from a file\nSecond line\n"
BINARY = b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4  # the start of a program, as /bin/ls is
TWEET = b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": "hi"}}]'


def sha1(text: str) -> str:
    return "sha1:" + hashlib.sha1(text.encode("utf-8")).hexdigest()


def texts(path: Path, **options: object) -> list[str]:
    return [document.text for document in read_documents(path, **options)]


# --- decoding: one rule for every importer --------------------------------------------------------

ENCODINGS = {  # name -> the bytes of a text in it, byte order mark first
    "utf-8-sig": lambda text: codecs.BOM_UTF8 + text.encode("utf-8"),
    "utf-16-le": lambda text: codecs.BOM_UTF16_LE + text.encode("utf-16-le"),
    "utf-16-be": lambda text: codecs.BOM_UTF16_BE + text.encode("utf-16-be"),
    "utf-32-le": lambda text: codecs.BOM_UTF32_LE + text.encode("utf-32-le"),
    "utf-32-be": lambda text: codecs.BOM_UTF32_BE + text.encode("utf-32-be"),
}


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_txt_is_decoded_by_its_byte_order_mark(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "u.txt", ENCODINGS[encoding](TWO_LINES + "café ☕\n"))
    assert list(read_documents(path)) == [
        Document(source="file", external_id=sha1("Hello from a file"), text="Hello from a file"),
        Document(source="file", external_id=sha1("Second line"), text="Second line"),
        Document(source="file", external_id=sha1("café ☕"), text="café ☕"),
    ]


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_csv_and_jsonl_are_decoded_by_the_same_rule(tmp_path: Path, encoding: str) -> None:
    csv_path = write(tmp_path / "u.csv", ENCODINGS[encoding]("id,text\r\n7,café ☕\r\n"))
    jsonl_path = write(tmp_path / "u.jsonl", ENCODINGS[encoding]('{"id": 7, "text": "café ☕"}\n'))
    expected = [Document(source="file", external_id="7", text="café ☕")]
    assert list(read_documents(csv_path)) == list(read_documents(jsonl_path)) == expected


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_x_archive_tweets_js_is_decoded_by_the_same_rule(tmp_path: Path, encoding: str) -> None:
    path = write(tmp_path / "tweets.js", ENCODINGS[encoding](TWEET.decode()))
    assert texts(path) == ["hi"]


def test_decode_text_is_the_files_rule() -> None:
    assert decode_text(ENCODINGS["utf-16-be"]("hi"), label="x") == "hi"
    assert decode_text(b"caf\xe9", label="x") == "café"


def test_a_byte_order_mark_that_lies_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "u.txt", codecs.BOM_UTF16_LE + "hello".encode("utf-16-le") + b"\x00\xd8!\x00")
    assert import_error(path) == (
        f"{path} starts with a UTF-16 byte order mark but is not UTF-16 (the byte at offset 12 is not); "
        "save it again as UTF-8."
    )


def test_an_odd_length_utf16_tweets_js_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "tweets.js", b"\xff\xfe = []")
    assert import_error(path) == (
        f"{path} starts with a UTF-16 byte order mark but is not UTF-16 (the byte at offset 6 is not); "
        "save it again as UTF-8."
    )


def test_utf8_with_a_mark_is_not_guessed_as_windows_1252(tmp_path: Path) -> None:
    path = write(tmp_path / "u.txt", codecs.BOM_UTF8 + b"caf\xe9\n")
    assert import_error(path) == (
        f"{path} starts with a UTF-8 byte order mark but is not UTF-8 (the byte at offset 6 is not); "
        "save it again as UTF-8."
    )


# --- what is not text is refused, whatever --format says ------------------------------------------


@pytest.mark.parametrize(("name", "format"), [
    ("ls", "txt"), ("ls", "csv"), ("ls", "jsonl"), ("ls.txt", "auto"), ("tweets.js", "auto"),
])
def test_a_file_with_nul_bytes_is_not_text(tmp_path: Path, name: str, format: str) -> None:
    path = write(tmp_path / name, BINARY)
    assert import_error(path, format=format) == (
        f"{path} is not text: it holds NUL bytes and no UTF-16 or UTF-32 byte order mark; "
        "pass a text file saved as UTF-8."
    )


def test_a_nul_byte_after_the_first_chunk_is_found_too(tmp_path: Path) -> None:
    from scrapers.files import CHUNK_BYTES

    path = write(tmp_path / "u.txt", b"hello\n" * (CHUNK_BYTES // 3) + b"\x00\n")
    assert import_error(path).startswith(f"{path} is not text: it holds NUL bytes")


def test_a_file_mostly_of_control_characters_is_not_text(tmp_path: Path) -> None:
    path = write(tmp_path / "u.txt", bytes(range(1, 32)) * 4)  # 124 characters, 112 odd (tabs, newlines, CR are not)
    assert import_error(path) == (
        f"{path} is not text (90% of its first 124 characters are control characters); pass a text file."
    )


@pytest.mark.parametrize(("content", "offset"), [
    (b"plain\ncaf\x81\n", 9),  # 0x81 is a byte Windows-1252 leaves undefined
    (bytes(range(0xa0, 0x100)) * 8, 0),  # every byte is a letter in Windows-1252, but nothing reads like text
    ("Привет, мир\n".encode() * 20 + b"\xff", 420),  # UTF-8 with one bad byte: read as 1252, mojibake
])
def test_neither_utf8_nor_windows_1252_is_refused(tmp_path: Path, content: bytes, offset: int) -> None:
    path = write(tmp_path / "u.txt", content)
    assert import_error(path) == (
        f"{path} is neither UTF-8 (the byte at offset {offset} is not) nor Windows-1252 text; "
        "save it as UTF-8 and try again."
    )


# --- control characters are removed on the way in ---------------------------------------------------


def test_txt_control_characters_are_removed_before_the_id_is_made(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", b"evil \x1b[2J\x1b[31mRED title here\x1b[0m\r\n\x1b[2J\n\x07bell\x7f\n")
    assert list(read_documents(path)) == [
        Document(source="file", external_id=sha1("evil RED title here"), text="evil RED title here"),
        Document(source="file", external_id=sha1("bell"), text="bell"),  # the line of only an escape is gone
    ]


def test_bidirectional_and_zero_width_characters_are_removed_on_the_way_in(tmp_path: Path) -> None:
    path = write(tmp_path / "b.txt", "A title \u202dreversed\u202c and zero\u200bwidth\u2066 here\n".encode())
    assert [d.text for d in read_documents(path)] == ["A title reversed and zerowidth here"]


def test_jsonl_nul_escape_and_controls_in_every_field_are_removed(tmp_path: Path) -> None:
    path = write(tmp_path / "n.jsonl", b'{"text": "nul \\u0000 here\\u001b[2J", "id": "\\u0007 5", '
                                       b'"author": "a\\u0000b", "url": "\\u009bhttps://e.com", '
                                       b'"source": "re\\u0000ddit"}\n{"text": "\\u0000\\u001b[31m"}\n')
    assert list(read_documents(path)) == [
        Document(source="reddit", external_id="5", text="nul  here", author="ab", url="https://e.com"),
    ]


def test_csv_control_characters_are_removed_from_the_header_and_cells(tmp_path: Path) -> None:
    path = write(tmp_path / "a.csv", b'\x1b[1mtext\x1b[0m,id\n"two\r\nlines \x1b[31mred",\x07\n')
    assert list(read_documents(path)) == [
        Document(source="file", external_id=sha1("two\nlines red"), text="two\nlines red"),
    ]


def test_only_control_characters_holds_no_documents(tmp_path: Path) -> None:
    path = write(tmp_path / "a.txt", b"\x1b[2J\n\x1b[31m\n")
    assert import_error(path) == (
        f"{path} holds no documents; check that it is the file you meant and that it is not empty."
    )


@pytest.mark.parametrize(("name", "content"), [
    ("s.jsonl", b'{"text": "half \\ud83d a smile"}\n'),
    ("tweets.js", b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": "half \\ude00"}}]'),
])
def test_half_a_surrogate_pair_is_refused(tmp_path: Path, name: str, content: bytes) -> None:
    path = write(tmp_path / name, content)
    where = f"{path} line 1" if name.endswith(".jsonl") else str(path)
    assert import_error(path) == (
        f"{where} holds half a UTF-16 surrogate pair (a \\ud800-\\udfff escape without its partner), "
        "which is not text; fix or remove it."
    )


def test_a_whole_surrogate_pair_is_an_emoji(tmp_path: Path) -> None:
    path = write(tmp_path / "s.jsonl", b'{"text": "a smile \\ud83d\\ude00"}\n')
    assert texts(path) == ["a smile \U0001f600"]


# --- ids and sources in CSV and JSONL, as `bot corpus export` writes them ------------------------------


def test_csv_keeps_external_id_and_source(tmp_path: Path) -> None:
    path = write(tmp_path / "export.csv", b"text,source,external_id,author,created_at,score,url\n"
                                          b"from reddit,reddit,t3_abc,,,,\n"
                                          b"a plain line,file,sha1:0a,,,,\n"
                                          b"no id here,x,,,,,\n")
    assert [(d.source, d.external_id) for d in read_documents(path)] == [
        ("reddit", "t3_abc"), ("file", "sha1:0a"), ("x", sha1("no id here")),
    ]


def test_jsonl_id_comes_before_external_id(tmp_path: Path) -> None:
    path = write(tmp_path / "e.jsonl", b'{"text": "t", "id": "1", "external_id": "2"}\n'
                                        b'{"text": "u", "id": " ", "external_id": "3"}\n')
    assert [d.external_id for d in read_documents(path)] == ["1", "3"]


# --- zips: what they may unpack to is capped ----------------------------------------------------


def declare_size(path: Path, size: int) -> None:
    """Make the zip's central directory claim its member unpacks to `size` bytes, as a zip bomb's does."""
    content = bytearray(path.read_bytes())
    at = content.index(b"PK\x01\x02") + 24  # the uncompressed size in the central directory header
    content[at:at + 4] = struct.pack("<I", size)
    path.write_bytes(bytes(content))


def test_a_zip_claiming_more_than_a_gib_is_refused_before_unpacking(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/tweets.js", TWEET)
    declare_size(path, 1_300_000_000)
    assert import_error(path) == (
        f"{path} unpacks to more than 1 GiB (1,300,000,000 bytes), the most this reads from an X archive; "
        "if you trust the file, unzip it yourself and pass its folder."
    )


def test_a_zip_packed_too_tightly_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/tweets.js", b"window.YTD.tweets.part0 = [" + b" " * (4 << 20) + b"]")
        info = archive.getinfo("data/tweets.js")
    ratio = info.file_size / info.compress_size
    assert ratio > MAX_COMPRESSION_RATIO
    assert import_error(path) == (
        f"{path}/data/tweets.js unpacks to {ratio:,.0f} times its packed size, more than the "
        f"{MAX_COMPRESSION_RATIO} of a real X archive; if you trust the file, unzip it yourself and pass its folder."
    )


def test_a_small_member_may_pack_tightly(tmp_path: Path) -> None:
    path = tmp_path / "archive.zip"
    padded = TWEET.replace(b"[", b"[" + b" " * 50_000, 1)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("data/tweets.js", padded)
    assert texts(path) == ["hi"]


def test_decode_text_reads_a_stream_once_in_chunks() -> None:
    # the check holds a chunk at a time: a stream is not read whole into memory by it
    from scrapers.files import CHUNK_BYTES, text_encoding

    class Counting(io.BytesIO):
        largest = 0

        def read(self, size: int | None = -1) -> bytes:
            data = super().read(size)
            Counting.largest = max(Counting.largest, len(data))
            return data

    stream = Counting(b"x" * (3 * CHUNK_BYTES))
    assert text_encoding(stream, label="s") == "utf-8-sig"
    assert Counting.largest == CHUNK_BYTES


# --- more input that used to end in a traceback -----------------------------------------------------


@pytest.mark.parametrize("line", [b'{"text": "deep", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
                                  b'{"text": "long", "score": ' + b"9" * 5000 + b"}"])
def test_jsonl_too_large_to_read_is_one_sentence(tmp_path: Path, line: bytes) -> None:
    path = write(tmp_path / "big.jsonl", line + b"\n")
    assert import_error(path) == (
        f"{path} line 1 is JSON too large to read (a number too long or nesting too deep); fix or remove that line."
    )


def test_created_at_past_year_9999_in_utc_is_one_sentence(tmp_path: Path) -> None:
    path = write(tmp_path / "t.jsonl", b'{"text": "t", "created_at": "9999-12-31T23:00:00-05:00"}\n')
    assert import_error(path) == (
        f"{path} line 1 has created_at '9999-12-31T23:00:00-05:00', not an ISO 8601 time like "
        "2018-10-10T20:19:24Z; fix it or leave it blank."
    )


def test_x_tweet_id_must_be_digits(tmp_path: Path) -> None:
    path = write(tmp_path / "tweets.js", b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "\\u0000", '
                                         b'"full_text": "hi"}}]')
    assert import_error(path) == (
        f"{path} item 1 has id_str '\\x00', not a tweet id (digits); pass the tweets.js of an unmodified X archive."
    )


def test_x_tweet_of_only_control_characters_is_skipped(tmp_path: Path) -> None:
    path = write(tmp_path / "tweets.js", b'window.YTD.tweets.part0 = [{"tweet": {"id_str": "1", "full_text": '
                                         b'"\\u001b[2J \\u0007"}}, {"tweet": {"id_str": "2", "full_text": '
                                         b'"kept \\u001b[31mred"}}]')
    assert [(d.external_id, d.text) for d in read_documents(path)] == [("2", "kept red")]
