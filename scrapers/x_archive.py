"""Reading the tweets of an X (Twitter) account archive: its `data/tweets.js`, its folder, or its `.zip`.

Its .js files are decoded by the same rule as every imported file (`scrapers.files.text_encoding`), and control
characters are removed from the tweets' text as from every imported file's (a tweet left blank is skipped).
A .zip is read without unzipping it to disk, so what its members may unpack to is capped (`MAX_UNPACKED_BYTES`
in all, `MAX_COMPRESSION_RATIO` each): a small zip can otherwise claim gigabytes of memory.
"""

from __future__ import annotations

import html
import json
import logging
import posixpath
import re
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from scrapers.documents import Document
from scrapers.errors import ImportFormatError
from scrapers.files import decode_text, refuse_lone_surrogates
from scrapers.text import strip_controls

logger = logging.getLogger(__name__)

X_SOURCE = "x"
TWEET_URL = "https://x.com/i/web/status/{id}"
X_TIME_FORMAT = "%a %b %d %H:%M:%S %z %Y"  # e.g. "Wed Oct 10 20:19:24 +0000 2018"
RETWEET_PREFIX = "RT @"
ARCHIVE_DATA_DIR = "data"  # where an unzipped archive keeps its .js files
ACCOUNT_FILE = "account.js"
# tweets.js, or tweet.js in older archives; big accounts get tweets-part1.js, tweets-part2.js, ...
TWEETS_FILE = re.compile(r"^tweets?(?:-part(?P<part>\d+))?\.js$")
TWEETS_EXAMPLE = "window.YTD.tweets.part0 = [...]"
TWEET_ID = re.compile(r"[0-9]{1,32}")  # X's ids are 64-bit numbers; written as text in id_str
GIB = 1 << 30  # bytes
MAX_UNPACKED_BYTES = 1 * GIB  # what the members read from one .zip may unpack to, together
MAX_COMPRESSION_RATIO = 100  # unpacked bytes per packed byte; X's JSON packs about 10 to 1, zip bombs about 1000
RATIO_CHECKED_FROM_BYTES = 1 << 20  # 1 MiB: a smaller member costs little memory, whatever its ratio


def read_archive(path: Path, *, include_retweets: bool = False) -> Iterator[Document]:
    """Yield the tweets of an archive given as a tweets .js file, the unzipped folder, or the .zip."""
    if path.is_dir():
        yield from _read_folder(path, include_retweets=include_retweets)
    elif zipfile.is_zipfile(path):
        yield from _read_zip(path, include_retweets=include_retweets)
    else:
        author = _username(path.parent / ACCOUNT_FILE)
        items = _parse_js(path.read_bytes(), label=str(path))
        yield from _documents(items, label=str(path), author=author, include_retweets=include_retweets)


def _read_folder(path: Path, *, include_retweets: bool) -> Iterator[Document]:
    # Accept the archive's top folder (tweets under data/) as well as its data/ folder itself.
    folder = path / ARCHIVE_DATA_DIR if (path / ARCHIVE_DATA_DIR).is_dir() else path
    files = sorted((file for file in folder.iterdir() if TWEETS_FILE.match(file.name)),
                   key=lambda file: _part_number(file.name))
    if not files:
        raise _no_tweets_file(path)
    author = _username(folder / ACCOUNT_FILE)
    for file in files:
        items = _parse_js(file.read_bytes(), label=str(file))
        yield from _documents(items, label=str(file), author=author, include_retweets=include_retweets)


def _read_zip(path: Path, *, include_retweets: bool) -> Iterator[Document]:
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            members = sorted((name for name in names if TWEETS_FILE.match(posixpath.basename(name))),
                             key=lambda name: _part_number(posixpath.basename(name)))
            if not members:
                raise _no_tweets_file(path)
            account = posixpath.join(posixpath.dirname(members[0]), ACCOUNT_FILE)
            _check_sizes(path, [archive.getinfo(name) for name in [account, *members] if name in names])
            author = None
            if account in names:
                author = _username_from(_unpack(archive, account, path=path), label=f"{path}/{account}")
            for member in members:
                label = f"{path}/{member}"
                items = _parse_js(_unpack(archive, member, path=path), label=label)
                yield from _documents(items, label=label, author=author, include_retweets=include_retweets)
    except zipfile.BadZipFile as error:
        raise ImportFormatError(
            f"{path} is a damaged .zip file ({error}); "
            "download the X archive again or pass its unzipped folder."
        ) from error


def _check_sizes(path: Path, members: list[zipfile.ZipInfo]) -> None:
    """Refuse, before unpacking anything, an archive whose members would unpack to more than the caps allow."""
    total = sum(info.file_size for info in members)
    if total > MAX_UNPACKED_BYTES:
        raise _too_big(path, total)
    for info in members:
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size >= RATIO_CHECKED_FROM_BYTES and ratio > MAX_COMPRESSION_RATIO:
            raise ImportFormatError(
                f"{path}/{info.filename} unpacks to {ratio:,.0f} times its "
                f"packed size, more than the {MAX_COMPRESSION_RATIO} of a real X archive; "
                "if you trust the file, unzip it yourself and pass its folder."
            )


def _unpack(archive: zipfile.ZipFile, member: str, *, path: Path) -> bytes:
    # zipfile stops at the size the member declares, which _check_sizes capped; reading one byte past the cap
    # keeps that promise even if it did not.
    with archive.open(member) as stream:
        content = stream.read(MAX_UNPACKED_BYTES + 1)
    if len(content) > MAX_UNPACKED_BYTES:
        raise _too_big(path, len(content))
    return content


def _too_big(path: Path, size: int) -> ImportFormatError:
    return ImportFormatError(
        f"{path} unpacks to more than {MAX_UNPACKED_BYTES // GIB} GiB ({size:,} bytes), the most this reads "
        "from an X archive; if you trust the file, unzip it yourself and pass its folder."
    )


def _part_number(name: str) -> int:
    # tweets.js is part 0; order the parts so tweets come out in the archive's order.
    match = TWEETS_FILE.match(name)
    return int(match["part"]) if match and match["part"] else 0


def _no_tweets_file(path: Path) -> ImportFormatError:
    return ImportFormatError(
        f"{path} holds no data/tweets.js; pass an X archive (its .zip, its unzipped folder or its tweets.js) "
        "or choose another --format."
    )


def _parse_js(content: bytes, *, label: str) -> list[object]:
    """The list assigned in `window.YTD.tweets.part0 = [...]`."""
    text = decode_text(content, label=label)
    try:
        _, equals, payload = text.partition("=")
        items = json.loads(payload.strip().rstrip(";")) if equals else None
    except (ValueError, RecursionError) as error:  # bad JSON, a number of over 4,300 digits, too deep nesting
        raise _not_archive(label) from error
    if not isinstance(items, list):
        raise _not_archive(label)
    if "\\u" in payload:  # only a \u escape can make half a surrogate pair
        refuse_lone_surrogates(items, where=label)
    return items


def _not_archive(label: str) -> ImportFormatError:
    return ImportFormatError(
        f"{label} is not an X archive tweets file (expected `{TWEETS_EXAMPLE}`); "
        "pass the archive's data/tweets.js, its folder or its .zip."
    )


def _documents(items: list[object], *, label: str, author: str | None,
               include_retweets: bool) -> Iterator[Document]:
    for number, item in enumerate(items, start=1):
        # Archives since 2019 wrap each tweet as {"tweet": {...}}; older ones list the tweet objects bare.
        tweet = item.get("tweet", item) if isinstance(item, dict) else None
        if not isinstance(tweet, dict) or not isinstance(tweet.get("full_text"), str):
            raise ImportFormatError(
                f"{label} item {number} has no full_text; pass the tweets.js of an unmodified X archive."
            )
        if include_retweets or not _is_retweet(tweet):
            document = _document(tweet, where=f"{label} item {number}", author=author)
            if document.text.strip():  # nothing left once control characters are gone: skipped, as a blank line is
                yield document


def _is_retweet(tweet: dict) -> bool:
    return tweet["full_text"].startswith(RETWEET_PREFIX) or tweet.get("retweeted") in (True, "true")


def _document(tweet: dict, *, where: str, author: str | None) -> Document:
    value = tweet.get("id_str") or tweet.get("id")
    if value is None or value == "":
        raise ImportFormatError(f"{where} has no id_str; pass the tweets.js of an unmodified X archive.")
    tweet_id = str(value)
    if isinstance(value, bool) or not TWEET_ID.fullmatch(tweet_id):
        raise ImportFormatError(
            f"{where} has id_str {value!r}, not a tweet id (digits); pass the tweets.js of an unmodified X archive."
        )
    return Document(
        source=X_SOURCE,
        external_id=tweet_id,
        text=strip_controls(html.unescape(tweet["full_text"])),  # the archive keeps X's HTML escaping: &amp; &lt;
        author=author,
        created_at=_parse_time(tweet.get("created_at"), where=where),
        score=_parse_count(tweet.get("favorite_count"), where=where),
        url=TWEET_URL.format(id=tweet_id),
    )


def _parse_time(value: object, *, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.strptime(str(value), X_TIME_FORMAT).astimezone(UTC)
    except (ValueError, OverflowError) as error:  # OverflowError: before year 1 or after 9999 in UTC
        raise ImportFormatError(
            f"{where} has created_at {value!r}, not a time like 'Wed Oct 10 20:19:24 +0000 2018'; "
            "pass the tweets.js of an unmodified X archive."
        ) from error


def _parse_count(value: object, *, where: str) -> int | None:
    if value is None:
        return None
    try:
        return int(str(value))  # the archive writes counts as strings: "favorite_count": "12"
    except ValueError as error:
        raise ImportFormatError(
            f"{where} has favorite_count {value!r}, not a whole number; "
            "pass the tweets.js of an unmodified X archive."
        ) from error


def _username(account_file: Path) -> str | None:
    if not account_file.is_file():
        return None
    return _username_from(account_file.read_bytes(), label=str(account_file))


def _username_from(content: bytes, *, label: str) -> str | None:
    """The username in account.js; the tweets are worth importing without it, so a bad file only warns."""
    try:
        _, _, payload = decode_text(content, label=label).partition("=")
        username = json.loads(payload)[0]["account"]["username"]
        username.encode("utf-8")  # half a surrogate pair (a lone \ud83d escape) is no name
    except (ValueError, LookupError, TypeError, AttributeError, RecursionError, ImportFormatError):
        logger.warning("%s has no readable account username; importing the tweets without an author.", label)
        return None
    return username if isinstance(username, str) and username else None
