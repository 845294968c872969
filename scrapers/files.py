"""File importers: plain text, CSV, JSON Lines and X archives, read as a stream of `Document` records.

How a file's bytes become text (`text_encoding`, the one rule every importer uses, X archives' .js files too):

- A byte order mark decides: UTF-8, UTF-16 (LE or BE) or UTF-32 (LE or BE); the mark is not part of the text.
- Without one, the file is UTF-8 if all of it is. Otherwise it is read as Windows-1252, the encoding of most
  older Windows text files (and what browsers read files labelled Latin-1 as), provided all of it decodes as that.
- What is not text is refused with one sentence before anything is stored, whatever `--format` says: a file
  with a NUL byte and no UTF-16/32 byte order mark (text files hold none; programs and images do), a file a byte
  order mark claims but that does not decode, and a file whose first chunk is more than a third odd characters
  (control characters; for a Windows-1252 reading, also every non-ASCII character), Perl's -T/-B file test.
- Control characters left in text that passes are removed from every field read (`scrapers.text.strip_controls`),
  before a plain file's text is hashed into its id (so the id is that of the text the store keeps) and before a
  record is judged blank (a line of only an escape sequence is skipped like an empty one).

CSV and JSON Lines records may carry `id` (or `external_id`) and `source` as well as the text: `bot corpus
export` writes both, so importing an export into the corpus it came from adds nothing.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from scrapers.documents import Document
from scrapers.errors import ImportFormatError
from scrapers.text import CONTROL, strip_controls

logger = logging.getLogger(__name__)

AUTO, TXT, CSV, JSONL, X_ARCHIVE = "auto", "txt", "csv", "jsonl", "x-archive"
FORMATS: tuple[str, ...] = (AUTO, TXT, CSV, JSONL, X_ARCHIVE)
EXTENSION_FORMATS = {
    ".txt": TXT, ".csv": CSV, ".jsonl": JSONL, ".ndjson": JSONL, ".js": X_ARCHIVE, ".zip": X_ARCHIVE,
}
COLUMN_FORMATS = (CSV, JSONL)  # the formats where --column means something

FILE_SOURCE = "file"
HASH_ID_PREFIX = "sha1:"  # files without ids get one from their text, so re-importing adds nothing
CSV_TEXT_COLUMNS = ("text", "Tweet", "tweet", "title", "full_text")  # tried in this order
JSON_TEXT_KEYS = ("text", "full_text", "title", "body")  # tried in this order
ID_FIELDS = ("id", "external_id")  # tried in this order; `bot corpus export` writes external_id (and id in JSONL)
SOURCE_FIELD = "source"  # kept when given, so an exported Reddit or X document keeps its identity

CHUNK_BYTES = 1 << 20  # 1 MiB: how much of the file the encoding check holds at a time, and how much it judges
BYTE_ORDER_MARKS = (  # (mark, codec that reads it, name for messages); UTF-32 LE first, as its mark starts FF FE
    (codecs.BOM_UTF32_LE, "utf-32", "UTF-32"), (codecs.BOM_UTF32_BE, "utf-32", "UTF-32"),
    (codecs.BOM_UTF8, "utf-8-sig", "UTF-8"),
    (codecs.BOM_UTF16_LE, "utf-16", "UTF-16"), (codecs.BOM_UTF16_BE, "utf-16", "UTF-16"),
)
UTF8_ENCODING = "utf-8-sig"  # reads plain UTF-8 too, and drops a leading BOM rather than keep it in the text
FALLBACK_ENCODING = "cp1252"  # Windows-1252: Latin-1's letters, plus curly quotes and dashes where it has controls
MAX_ODD_SHARE = 1 / 3  # more odd characters than this in the first chunk and it is not text (Perl's -T/-B rule)
NUL = b"\x00"
CARRIAGE_RETURN = "\r"  # a control character, but one Windows line endings put on every line: not odd


def detect_format(path: Path) -> str:
    """The import format of `path`, told from its extension (a folder is an unzipped X archive)."""
    if path.is_dir():
        return X_ARCHIVE
    found = EXTENSION_FORMATS.get(path.suffix.lower())
    if found is None:
        raise ImportFormatError(
            f"Could not tell the format of {path} from its extension; "
            "pass --format txt, csv, jsonl or x-archive."
        )
    return found


def read_documents(path: Path, *, format: str = AUTO, column: str | None = None,
                   include_retweets: bool = False) -> Iterator[Document]:
    """Yield the documents in `path` one at a time; `ImportFormatError` if it holds none or is malformed."""
    from scrapers.x_archive import read_archive  # imported here: x_archive reads its .js files by this module's rule

    chosen = _choose_format(path, format=format, column=column)
    if chosen == X_ARCHIVE:
        documents = read_archive(path, include_retweets=include_retweets)
    else:
        documents = READERS[chosen](path, column=column)
    try:
        yield from _require_documents(documents, path=path, format=chosen, include_retweets=include_retweets)
    except OSError as error:
        raise ImportFormatError(
            f"{error.filename or path} could not be read ({error.strerror or error}); "
            "check that it is a file you may read and try again."
        ) from error


def _choose_format(path: Path, *, format: str, column: str | None) -> str:
    if format not in FORMATS:
        raise ImportFormatError(
            f"Unknown format {format!r} for {path}; pass --format with one of {', '.join(FORMATS)}."
        )
    if not path.exists():
        raise ImportFormatError(f"{path} does not exist; check the path and try again.")
    chosen = detect_format(path) if format == AUTO else format
    if chosen != X_ARCHIVE and path.is_dir():
        raise ImportFormatError(
            f"{path} is a directory; pass a file, or --format x-archive if it is an unzipped X archive."
        )
    if column is not None and chosen not in COLUMN_FORMATS:
        raise ImportFormatError(
            f"--column applies to csv and jsonl files, not {chosen}; leave it out for {path}."
        )
    return chosen


def _require_documents(documents: Iterator[Document], *, path: Path, format: str,
                       include_retweets: bool) -> Iterator[Document]:
    # An import that finds nothing is almost always the wrong file, so it is an error, not a silent zero.
    count = 0
    for document in documents:
        count += 1
        yield document
    if count == 0:
        hint = " (retweets are left out unless you pass --include-retweets)" if (
            format == X_ARCHIVE and not include_retweets) else ""
        raise ImportFormatError(
            f"{path} holds no documents{hint}; check that it is the file you meant and that it is not empty."
        )


def text_encoding(stream: BinaryIO, *, label: str) -> str:
    """The codec that reads `stream` as text, by the rule in the module docstring; `ImportFormatError` if it is not.

    Reads the whole stream a chunk at a time (not its size in memory), so a file is refused before any of it is
    stored, and never read half in one encoding and half in another. `label` names the stream in messages.
    """
    head = stream.read(CHUNK_BYTES)
    marked = next(((codec, name) for mark, codec, name in BYTE_ORDER_MARKS if head.startswith(mark)), None)
    codec, name = marked or (UTF8_ENCODING, "UTF-8")
    # utf-8-sig would count offsets from after the mark; utf-8 reads the mark as U+FEFF, which is valid and not odd
    first, bad = _decode(stream, head, codec.removesuffix("-sig"), refuse_nul=marked is None, label=label)
    if bad is None:
        share = _odd_share(first)
        if share > MAX_ODD_SHARE:
            raise ImportFormatError(
                f"{label} is not text ({share:.0%} of its first {len(first):,} characters are control characters); "
                "pass a text file."
            )
        return codec
    if marked is not None:
        raise ImportFormatError(
            f"{label} starts with a {name} byte order mark but is not {name} (the byte at offset {bad:,} is not); "
            "save it again as UTF-8."
        )
    stream.seek(0)
    first, bad_fallback = _decode(stream, stream.read(CHUNK_BYTES), FALLBACK_ENCODING, refuse_nul=True, label=label)
    if bad_fallback is not None or _odd_share(first, non_ascii_is_odd=True) > MAX_ODD_SHARE:
        raise ImportFormatError(
            f"{label} is neither UTF-8 (the byte at offset {bad:,} is not) nor Windows-1252 text; "
            "save it as UTF-8 and try again."
        )
    logger.info("%s is not UTF-8; reading it as %s.", label, FALLBACK_ENCODING)
    return FALLBACK_ENCODING


def decode_text(content: bytes, *, label: str) -> str:
    """`content` as text, by the same rule as files (`text_encoding`)."""
    return content.decode(text_encoding(io.BytesIO(content), label=label))


def refuse_lone_surrogates(value: object, *, where: str) -> None:
    """JSON may escape half of a UTF-16 pair (\\ud83d) on its own; that is not text and no database stores it."""
    try:
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError as error:
        raise ImportFormatError(
            f"{where} holds half a UTF-16 surrogate pair (a \\ud800-\\udfff escape without its partner), "
            "which is not text; fix or remove it."
        ) from error


def _decode(stream: BinaryIO, head: bytes, codec: str, *, refuse_nul: bool, label: str) -> tuple[str, int | None]:
    """Decode `head` and the rest of `stream`: the text of `head`, and the offset of the first bad byte, if any."""
    decoder = codecs.getincrementaldecoder(codec)()
    first, offset, chunk = "", 0, head
    while True:
        if refuse_nul and NUL in chunk:
            raise ImportFormatError(
                f"{label} is not text: it holds NUL bytes and no UTF-16 or UTF-32 byte order mark; "
                "pass a text file saved as UTF-8."
            )
        pending = len(decoder.getstate()[0])  # bytes of a character the previous chunk cut off
        try:
            text = decoder.decode(chunk, final=not chunk)  # an empty read is the end: a cut-off character is bad
        except UnicodeDecodeError as error:
            return first, offset - pending + error.start
        if offset == 0:
            first = text
        if not chunk:
            return first, None
        offset += len(chunk)
        chunk = stream.read(CHUNK_BYTES)


def _odd_share(text: str, *, non_ascii_is_odd: bool = False) -> float:
    """The share of `text` that is control characters (and non-ASCII ones, for a guessed single-byte encoding)."""
    if not text:
        return 0.0
    odd = len(CONTROL.findall(text)) - text.count(CARRIAGE_RETURN)
    if non_ascii_is_odd:
        odd += len(text) - len(text.encode("ascii", "ignore"))
    return odd / len(text)


def _open_text(path: Path, *, newline: str | None = None) -> TextIO:
    """`path` open as text in the encoding `text_encoding` finds for it."""
    stream = path.open("rb")
    try:
        encoding = text_encoding(stream, label=str(path))
        stream.seek(0)
    except BaseException:
        stream.close()
        raise
    return io.TextIOWrapper(stream, encoding=encoding, newline=newline)


def _read_txt(path: Path, *, column: str | None = None) -> Iterator[Document]:
    with _open_text(path) as lines:
        for line in lines:
            text = _clean(line)  # universal newlines already turned \r\n into \n; strip drops both
            if text:
                yield Document(source=FILE_SOURCE, external_id=_hash_id(text), text=text)


def _read_csv(path: Path, *, column: str | None = None) -> Iterator[Document]:
    with _open_text(path, newline="") as stream:  # newline="": the csv module's own
        rows = csv.reader(stream)
        try:
            header = [_clean(name) for name in next(rows, [])]
            if not header:
                return  # an empty file: read_documents reports it as holding no documents
            text_index = header.index(_csv_text_column(header, path=path, column=column))
            for row in rows:
                record = dict(zip(header, row))
                text = _clean(row[text_index]) if text_index < len(row) else ""
                if text:
                    yield _document(record, text=text, where=f"{path} line {rows.line_num}")
        except csv.Error as error:
            raise ImportFormatError(
                f"{path} line {rows.line_num} is not valid CSV ({error}); "
                "fix that line or pass another --format."
            ) from error


def _csv_text_column(header: list[str], *, path: Path, column: str | None) -> str:
    found = ", ".join(header) if any(header) else "none"
    if column is not None:
        if column not in header:
            raise ImportFormatError(
                f"{path} has no column {column!r} (found: {found}); pass --column with one of those."
            )
        return column
    for name in CSV_TEXT_COLUMNS:
        if name in header:
            return name
    raise ImportFormatError(
        f"{path} has no text column ({', '.join(CSV_TEXT_COLUMNS)}; found: {found}); "
        "pass --column with the one that holds the text."
    )


def _read_jsonl(path: Path, *, column: str | None = None) -> Iterator[Document]:
    with _open_text(path) as lines:
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            where = f"{path} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                raise ImportFormatError(
                    f"{where} is not valid JSON ({error.msg}); fix or remove that line."
                ) from error
            except (ValueError, RecursionError) as error:  # a number of over 4,300 digits; arrays nested too deep
                raise ImportFormatError(
                    f"{where} is JSON too large to read (a number too long or nesting too deep); "
                    "fix or remove that line."
                ) from error
            if "\\u" in line:  # only a \u escape can make half a surrogate pair
                refuse_lone_surrogates(record, where=where)
            text = _json_text(record, where=where, column=column)
            if text:
                yield _document(record, text=text, where=where)


def _json_text(record: object, *, where: str, column: str | None) -> str:
    if not isinstance(record, dict):
        raise ImportFormatError(
            f"{where} is not a JSON object; write one object per line, like {{\"text\": ...}}."
        )
    keys = (column,) if column is not None else JSON_TEXT_KEYS
    key = next((key for key in keys if key in record), None)
    if key is None:
        raise ImportFormatError(
            f"{where} has no {' or '.join(keys)} field; pass --column with the key that holds the text."
        )
    value = record[key]
    if value is not None and not isinstance(value, str):
        raise ImportFormatError(
            f"{where} has a {key!r} that is not a string; make it a string or pass --column."
        )
    return _clean(value or "")  # null or blank text: nothing to learn from, so the record is skipped


def _document(record: Mapping[str, Any], *, text: str, where: str) -> Document:
    """A file document from a csv row or a JSON object: the text plus whatever metadata fields it carries."""
    given_id = next((record[name] for name in ID_FIELDS if not _blank(record.get(name))), None)
    return Document(
        source=_optional_text(record.get(SOURCE_FIELD)) or FILE_SOURCE,
        external_id=_record_id(given_id, text=text, where=where),
        text=text,
        author=_optional_text(record.get("author")),
        created_at=_parse_time(record.get("created_at"), where=where),
        score=_parse_score(record.get("score"), where=where),
        url=_optional_text(record.get("url")),
    )


def _record_id(value: object, *, text: str, where: str) -> str:
    if value is None:
        return _hash_id(text)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ImportFormatError(
            f"{where} has an id {value!r} that is neither a string nor a whole number; fix it."
        )
    return _clean(str(value))


def _hash_id(text: str) -> str:
    return HASH_ID_PREFIX + hashlib.sha1(text.encode("utf-8")).hexdigest()


def _clean(text: str) -> str:
    """A field as it is stored: no control characters (`scrapers.text`), no surrounding whitespace."""
    return strip_controls(text).strip()


def _blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not _clean(value))


def _optional_text(value: object) -> str | None:
    text = "" if value is None else _clean(str(value))
    return text or None


def _parse_time(value: object, *, where: str) -> datetime | None:
    """ISO 8601 text (JSON may also give Unix seconds) as an aware UTC time; no zone given means UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        moment = datetime.fromisoformat(str(value).strip())
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, TypeError, OverflowError) as error:  # OverflowError: before year 1 or after 9999 in UTC
        raise ImportFormatError(
            f"{where} has created_at {value!r}, not an ISO 8601 time like 2018-10-10T20:19:24Z; "
            "fix it or leave it blank."
        ) from error


def _parse_score(value: object, *, where: str) -> int | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value) if not isinstance(value, bool) else None  # spreadsheets may write 12 as "12.0"
    except (ValueError, TypeError):
        number = None
    if number is None or not number.is_integer():
        raise ImportFormatError(f"{where} has score {value!r}, not a whole number; fix it or leave it blank.")
    return int(number)


# The plain-file readers all take (path, *, column) so read_documents can call any of them the same way.
READERS: dict[str, Callable[..., Iterator[Document]]] = {TXT: _read_txt, CSV: _read_csv, JSONL: _read_jsonl}
