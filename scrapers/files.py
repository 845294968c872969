"""File importers: plain text, CSV, JSON Lines and X archives, read as a stream of `Document` records."""

from __future__ import annotations

import codecs
import csv
import hashlib
import json
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from scrapers.documents import Document
from scrapers.errors import ImportFormatError
from scrapers.x_archive import read_archive

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
ID_FIELD = "id"
CHUNK_BYTES = 1 << 20  # 1 MiB: how much of the file the encoding check holds at a time
UTF8_ENCODING = "utf-8-sig"  # reads plain UTF-8 too, and drops a leading BOM rather than keep it in the text
FALLBACK_ENCODING = "latin-1"  # decodes any bytes, so a non-UTF-8 file still imports


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


def _read_txt(path: Path, *, column: str | None = None) -> Iterator[Document]:
    with path.open(encoding=_text_encoding(path)) as lines:
        for line in lines:
            text = line.strip()  # universal newlines already turned \r\n into \n; strip drops both
            if text:
                yield Document(source=FILE_SOURCE, external_id=_hash_id(text), text=text)


def _read_csv(path: Path, *, column: str | None = None) -> Iterator[Document]:
    with path.open(encoding=_text_encoding(path), newline="") as stream:  # newline="": the csv module's own
        rows = csv.reader(stream)
        try:
            header = [name.strip() for name in next(rows, [])]
            if not header:
                return  # an empty file: read_documents reports it as holding no documents
            text_index = header.index(_csv_text_column(header, path=path, column=column))
            for row in rows:
                record = dict(zip(header, row))
                text = row[text_index].strip() if text_index < len(row) else ""
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
    with path.open(encoding=_text_encoding(path)) as lines:
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
    return (value or "").strip()  # null or blank text: nothing to learn from, so the record is skipped


def _document(record: Mapping[str, Any], *, text: str, where: str) -> Document:
    """A file document from a csv row or a JSON object: the text plus whatever metadata fields it carries."""
    return Document(
        source=FILE_SOURCE,
        external_id=_record_id(record.get(ID_FIELD), text=text, where=where),
        text=text,
        author=_optional_text(record.get("author")),
        created_at=_parse_time(record.get("created_at"), where=where),
        score=_parse_score(record.get("score"), where=where),
        url=_optional_text(record.get("url")),
    )


def _record_id(value: object, *, text: str, where: str) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return _hash_id(text)
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise ImportFormatError(
            f"{where} has an id {value!r} that is neither a string nor a whole number; fix it."
        )
    return str(value).strip()


def _hash_id(text: str) -> str:
    return HASH_ID_PREFIX + hashlib.sha1(text.encode("utf-8")).hexdigest()


def _optional_text(value: object) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


def _parse_time(value: object, *, where: str) -> datetime | None:
    """ISO 8601 text (JSON may also give Unix seconds) as an aware UTC time; no zone given means UTC."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
        moment = datetime.fromisoformat(str(value).strip())
    except (ValueError, TypeError, OverflowError) as error:
        raise ImportFormatError(
            f"{where} has created_at {value!r}, not an ISO 8601 time like 2018-10-10T20:19:24Z; "
            "fix it or leave it blank."
        ) from error
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


def _text_encoding(path: Path) -> str:
    """UTF-8 (a BOM allowed) if every byte of the file decodes as UTF-8, else latin-1 for the whole file.

    Checked on the raw bytes before parsing: switching encodings mid-file would decode its first rows one way
    and the rest another. The check streams, so it costs one extra read of the file, not its size in memory.
    """
    decoder = codecs.getincrementaldecoder("utf-8")()
    with path.open("rb") as stream:
        try:
            while chunk := stream.read(CHUNK_BYTES):
                decoder.decode(chunk)
            decoder.decode(b"", final=True)  # a sequence cut off at the end of the file is not UTF-8 either
        except UnicodeDecodeError:
            logger.info("%s is not UTF-8; reading it as %s.", path, FALLBACK_ENCODING)
            return FALLBACK_ENCODING
    return UTF8_ENCODING


# The plain-file readers all take (path, *, column) so read_documents can call any of them the same way.
READERS: dict[str, Callable[..., Iterator[Document]]] = {TXT: _read_txt, CSV: _read_csv, JSONL: _read_jsonl}
