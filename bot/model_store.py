"""Models travel through the database: a finished version is packed, stored once under its sha256, and pointed at as
the version that serves; a host without it fetches, verifies and swaps it in on first use.

    model_versions   one row per model name and packed content: an uncompressed tar with sorted entries and fixed
                     times, modes and owners, so the same folder packs to the same bytes and the same hash
    serving_models   one row per model name: the hash that serves, moved by compare-and-set on its `generation`

Publishing (`publish`): a version whose hash is new is stored, and the pointer moves to it only from the hash the
caller started from (`replaces`, which `serving` gave before the version was trained): of two trainings that started
from the same version, one serves and the other is told it does not; a publish of content that is stored already
changes nothing, so a redelivered training never swaps twice. Pruning, after a new version is stored: a model keeps
the version that serves and the newest KEEP_VERSIONS - 1 others; older rows are deleted.

Fetching (`fetch_serving`, which `bot.registry.load` calls when it is given the store): one small SELECT of the
serving hash, compared with the hash this host's folder holds (BOT_HOME/models/NAME/packed.sha256). Only when they
differ is the content read, in slices of CHUNK_BYTES, hashed and unpacked as it comes into a temporary folder; a
version whose hash matches and that loads is moved to BOT_HOME/models/.versions/NAME/<hash prefix> and swapped in as
`bot.training.swap_in` swaps a retrained one. Anything else is one error, and the model this host had serves on.
A model with no row is loaded from its folder, as before models travelled.

Not packed: `checkpoint/` (the optimizer state `--resume` needs, twice the weights' size): it stays on the host that
trained, so a fetched model serves but does not resume.
"""

from __future__ import annotations

import fcntl
import hashlib
import io
import logging
import os
import secrets
import shutil
import sqlite3
import tarfile
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from sqlalchemy import LargeBinary, delete, func, select, update
from sqlalchemy.orm import Session

from bot import registry
from bot.config import Settings
from bot.errors import BotError
from bot.processes import process_owner
from bot.store import Store, insert_ignoring_conflict
from bot.store.schema import ModelVersion, ServingModel, utcnow
from bot.training import KEEP_VERSIONS, LOCKS, VERSIONS, swap_in
from models.artifact import CHECKPOINT, load_model
from models.errors import ArtifactError

log = logging.getLogger(__name__)

MARKER = "packed.sha256"  # in a model folder: the sha256 of its packed content, as the database knows it
NOT_PACKED = (CHECKPOINT, MARKER)  # top-level entries of a model folder that stay on the host
CHUNK_BYTES = 4 * 2**20  # bytes per slice a fetch reads (and a publish writes, on SQLite): memory stays bounded
HASH_PREFIX = 16  # hex digits of the hash that name a fetched version's folder
FETCHING_PREFIX = ".fetch-"  # BOT_HOME/models/.versions/NAME/.fetch-RANDOM: a fetch in progress
FILE_MODE, FOLDER_MODE = 0o644, 0o755  # what every packed entry says, whatever the packing host's umask


@dataclass(frozen=True)
class Packed:
    """A model folder packed in memory (`publish` packs to a temporary file instead)."""

    content: memoryview  # the tar
    sha256: str  # of `content`, in hex

    @property
    def size(self) -> int:
        return len(self.content)


@dataclass(frozen=True)
class Published:
    model: str
    sha256: str
    size: int  # bytes
    stored: bool  # the content was new and is now in the database
    moved: bool  # this publish moved the pointer to it
    serving: bool  # it is the version that serves (moved now, or already)


class DamagedVersionError(BotError):
    """The content fetched does not have the hash it is stored under."""


# ---- packing


def pack(folder: Path) -> Packed:
    """The model in `folder` as one deterministic tar, in memory (`pack_into` writes it to a file)."""
    buffer = io.BytesIO()
    sha256, _ = pack_into(folder, buffer)
    return Packed(buffer.getbuffer(), sha256)  # getbuffer: no copy of the archive


def pack_into(folder: Path, file: BinaryIO) -> tuple[str, int]:
    """Write the model in `folder` to `file` as one deterministic tar (entries sorted by path, times 0, modes fixed,
    no owners); its sha256 and size."""
    folder = folder.resolve()
    hashing = _Hashing(file)
    with tarfile.open(fileobj=hashing, mode="w|", format=tarfile.PAX_FORMAT) as tar:  # a stream: no seeking
        for path in _entries(folder, folder):
            info = tarfile.TarInfo(path.relative_to(folder).as_posix())
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            if path.is_dir():
                info.type, info.mode = tarfile.DIRTYPE, FOLDER_MODE
                tar.addfile(info)
                continue
            info.size, info.mode = path.stat().st_size, FILE_MODE
            with path.open("rb") as source:
                tar.addfile(info, source)
    return hashing.digest.hexdigest(), hashing.size


class _Hashing:
    """A file that hashes and counts what is written to it on its way through."""

    def __init__(self, file: BinaryIO) -> None:
        self.file, self.digest, self.size = file, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.file.write(data)


def _entries(folder: Path, under: Path) -> Iterator[Path]:
    for path in sorted(under.iterdir(), key=lambda p: p.name):
        if under == folder and path.name in NOT_PACKED:
            continue
        if path.is_symlink() or not (path.is_file() or path.is_dir()):
            raise BotError(f"{path} is not a plain file or folder, so the model in {folder} cannot be published; "
                           "remove it from the model's folder.")
        yield path
        if path.is_dir():
            yield from _entries(folder, path)


def local_hash(folder: Path) -> str | None:
    """The hash of the version in `folder` (a model's folder or its link), if it was published or fetched."""
    try:
        return (folder / MARKER).read_text(encoding="ascii").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _mark(folder: Path, sha256: str) -> None:
    temporary = folder / f".{MARKER}.{secrets.token_hex(4)}"
    temporary.write_text(sha256 + "\n", encoding="ascii")
    os.replace(temporary, folder / MARKER)


# ---- the database side


def serving(store: Store, model: str) -> str | None:
    """The hash of the version of `model` that serves; None where none was published."""
    with store.session() as session:
        return session.scalar(select(ServingModel.sha256).where(ServingModel.model == model))


def publish(store: Store, model: str, folder: Path, *, replaces: str | None) -> Published:
    """Store the version of `model` in `folder` unless its content is stored already, and make it the one that serves
    if the one serving is still `replaces` (what `serving` said before this version was trained; None: none)."""
    owner = process_owner()
    moved = stored = False
    with tempfile.TemporaryFile(dir=folder.parent) as archive, store.session() as session:  # on BOT_HOME's disk
        sha256, size = pack_into(folder, archive)
        known = session.scalar(select(ModelVersion.id).where(ModelVersion.model == model,
                                                             ModelVersion.sha256 == sha256))
        if known is None:
            stored = _store(session, model, sha256, size, owner, archive, summary(folder))
        if stored:
            moved = _move(session, model, sha256, replaces, owner)
            _prune(session, model)
        now = session.scalar(select(ServingModel.sha256).where(ServingModel.model == model))
    _mark(folder, sha256)
    published = Published(model, sha256, size, stored, moved, now == sha256)
    log.info("model %s: version %s (%d bytes) %s, %s", model, sha256[:HASH_PREFIX], size,
             "stored" if stored else "was stored already", "serves" if published.serving else "does not serve")
    return published


def publish_local(store: Store, settings: Settings, model: str) -> Published:
    """Publish the folder this host has for `model` and make it serve, whatever serves now (`bot model publish`: a
    model copied in by hand, or one trained before models travelled through the database)."""
    registry.load(settings, model)  # a folder that does not load is not published
    published = publish(store, model, settings.model_dir(model), replaces=serving(store, model))
    if not published.serving:
        raise BotError(f"Model {model!r} as this host has it (version {published.sha256[:HASH_PREFIX]}) is stored in "
                       "the database already, but another version serves; train it again to publish a new version.")
    return published


def summary(folder: Path) -> dict[str, Any]:
    """What a version is, stored beside it for hosts that have not fetched it (`ModelVersion.summary`)."""
    found = registry.summarize(folder)
    return {"corpus": found.corpus, "valid_perplexity": found.valid_perplexity, "created_at": found.created_at}


def serving_version(store: Store, model: str) -> tuple[str, dict[str, Any]] | None:
    """The hash of the version of `model` that serves and its summary (for a version stored without one, only when
    it was stored); None where none was published."""
    with store.session() as session:
        row = session.execute(select(ModelVersion.sha256, ModelVersion.summary, ModelVersion.created_at)
                              .join(ServingModel, (ServingModel.model == ModelVersion.model)
                                    & (ServingModel.sha256 == ModelVersion.sha256))
                              .where(ServingModel.model == model)).first()
    if row is None:
        return None
    return row.sha256, dict(row.summary or {"created_at": row.created_at.isoformat(timespec="seconds")})


def _store(session: Session, model: str, sha256: str, size: int, owner: str, archive: BinaryIO,
           about: dict[str, Any]) -> bool:
    """Insert the version unless a publish of the same content committed first; True if this one stored it.

    SQLite: a blob of zeros, then written in slices through its incremental blob I/O, so no more than a slice of
    the archive is in memory. PostgreSQL: one bytes parameter (psycopg sends it in binary, and libpq copies it into
    its message: twice the archive's size in memory for the moment it is sent)."""
    sqlite = session.get_bind().dialect.name == "sqlite"
    archive.seek(0)
    values = {"model": model, "sha256": sha256, "size": size, "created_at": utcnow(), "created_by": owner,
              "summary": about, "content": func.zeroblob(size) if sqlite else archive.read()}
    if not insert_ignoring_conflict(session, ModelVersion, values):
        return False
    if sqlite:
        row = session.scalar(select(ModelVersion.id).where(ModelVersion.model == model, ModelVersion.sha256 == sha256))
        with _sqlite(session).blobopen(ModelVersion.__tablename__, "content", row) as blob:
            while piece := archive.read(CHUNK_BYTES):
                blob.write(piece)
    return True


def _sqlite(session: Session) -> sqlite3.Connection:
    """The sqlite3 connection under the session's transaction."""
    return session.connection().connection.driver_connection  # type: ignore[return-value]


def _move(session: Session, model: str, sha256: str, replaces: str | None, owner: str) -> bool:
    """Point `model` at `sha256` if it points at `replaces` still: a compare-and-set on the pointer's generation, so
    that of two publishes that read the same pointer only one moves it."""
    row = session.execute(select(ServingModel.sha256, ServingModel.generation)
                          .where(ServingModel.model == model)).first()
    if (row.sha256 if row else None) != replaces:
        return False
    if row is None:
        return insert_ignoring_conflict(session, ServingModel, {
            "model": model, "sha256": sha256, "generation": 1, "moved_at": utcnow(), "moved_by": owner})
    result = session.execute(update(ServingModel)
                             .where(ServingModel.model == model, ServingModel.generation == row.generation)
                             .values(sha256=sha256, generation=row.generation + 1, moved_at=utcnow(), moved_by=owner))
    return result.rowcount == 1


def _prune(session: Session, model: str) -> None:
    """Keep the version of `model` that serves and the newest KEEP_VERSIONS - 1 others; delete the rest."""
    current = select(ServingModel.sha256).where(ServingModel.model == model).scalar_subquery()
    others = session.scalars(select(ModelVersion.id)
                             .where(ModelVersion.model == model, ModelVersion.sha256 != func.coalesce(current, ""))
                             .order_by(ModelVersion.id.desc())).all()
    old = others[KEEP_VERSIONS - 1:]
    if old:
        session.execute(delete(ModelVersion).where(ModelVersion.id.in_(old)))
        log.info("model %s: %d old versions pruned from the database", model, len(old))


# ---- the host side


def fetch_serving(store: Store, settings: Settings, model: str) -> Path | None:
    """Make BOT_HOME/models/`model` the version that serves in the database, fetching it if this host lacks it.
    Returns the version folder swapped in; None where nothing changed (none published, or this host has it)."""
    wanted = serving(store, model)
    link = settings.model_dir(model)
    if wanted is None or local_hash(link) == wanted:
        return None
    with _fetch_lock(settings, model):
        if local_hash(link) == wanted:  # another process on this host fetched it while this one waited
            return None
        version = _kept_version(settings, model, wanted) or _download(store, settings, model, wanted)
        swap_in(settings, model, version)
    return version


@contextmanager
def _fetch_lock(settings: Settings, model: str) -> Iterator[None]:
    """One fetch of `model` at a time on this host (flock: it ends with the process); the others wait for it."""
    folder = settings.models_dir / LOCKS / "fetch"
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / f"{model}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _kept_version(settings: Settings, model: str, sha256: str) -> Path | None:
    """A version folder this host kept (fetched or trained here) that holds `sha256`."""
    versions = settings.models_dir / VERSIONS / model
    if not versions.is_dir():
        return None
    return next((p for p in sorted(versions.iterdir()) if not p.name.startswith(".") and p.is_dir()
                 and local_hash(p) == sha256), None)


def _download(store: Store, settings: Settings, model: str, sha256: str) -> Path:
    """Read, verify and unpack version `sha256` of `model` into its own folder under .versions; nothing is left
    behind if any step fails."""
    versions = settings.models_dir / VERSIONS / model
    versions.mkdir(parents=True, exist_ok=True)
    for left in versions.glob(f"{FETCHING_PREFIX}*"):  # a fetch whose process died (this one holds the fetch lock)
        shutil.rmtree(left, ignore_errors=True)
    temporary = versions / f"{FETCHING_PREFIX}{secrets.token_hex(4)}"  # a dot: swap_in's pruning passes it by
    short = sha256[:HASH_PREFIX]
    gone = (f"Version {short} of model {model!r} left the database while this host fetched it (newer versions were "
            "published); try again.")
    try:
        with store.session() as session:
            found = session.execute(select(ModelVersion.id, ModelVersion.size)
                                    .where(ModelVersion.model == model, ModelVersion.sha256 == sha256)).first()
            if found is None:
                raise BotError(gone)
            row, size = found
            content = _Content(session, row, size, gone)
            with io.BufferedReader(content, CHUNK_BYTES) as reader:  # closing it closes the content (and its blob)
                _unpack(reader, temporary, model, short)
        if content.read_bytes != size or content.digest.hexdigest() != sha256:
            raise DamagedVersionError(
                f"Version {short} of model {model!r} is damaged in the database (its content hashes to "
                f"{content.digest.hexdigest()[:HASH_PREFIX]}, not {short}), so it was not installed and the model "
                "this host has keeps serving; publish the model again by retraining it.")
        try:
            load_model(temporary)  # a version this nnbot cannot read is not swapped in
        except ArtifactError as error:
            raise BotError(f"Version {short} of model {model!r} was fetched but does not load here, so the model "
                           f"this host has keeps serving: {error}") from None
        _mark(temporary, sha256)
        target = versions / short
        if target.exists():  # a folder of that name holding something else (resumed in place since)
            target = versions / f"{short}-{secrets.token_hex(2)}"
        os.rename(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    log.info("model %s: fetched version %s (%d bytes) into %s", model, short, size, target)
    return target


def _unpack(reader: io.BufferedReader, into: Path, model: str, short: str) -> None:
    """Extract the tar `reader` gives into `into` (tarfile's "data" filter: nothing outside it, no links out, no
    special files), then read to the end, so that the hash covers every byte."""
    into.mkdir()
    try:
        with tarfile.open(fileobj=reader, mode="r|") as tar:
            tar.extractall(into, filter="data")
    except tarfile.TarError as error:
        log.warning("model %s: version %s does not unpack: %s", model, short, error)  # the hash says why, below
    while reader.read(CHUNK_BYTES):
        pass


class _Content(io.RawIOBase):
    """The content of stored version `row`, read in slices of at most CHUNK_BYTES and hashed as it goes: on SQLite
    through its incremental blob I/O, on PostgreSQL by substr() (uncompressed storage: a slice reads only itself)."""

    def __init__(self, session: Session, row: int, size: int, gone: str) -> None:
        super().__init__()
        self.session, self.row, self.size, self.gone = session, row, size, gone
        self.read_bytes = 0
        self.digest = hashlib.sha256()
        self.blob = None
        if session.get_bind().dialect.name == "sqlite":
            self.blob = _sqlite(session).blobopen(ModelVersion.__tablename__, "content", row, readonly=True)

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        if self.blob is not None:
            self.blob.close()
        super().close()

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), CHUNK_BYTES, self.size - self.read_bytes)
        if wanted <= 0:
            return 0
        if self.blob is not None:
            try:
                piece = self.blob.read(wanted)
            except sqlite3.Error:  # the row was deleted under the open blob
                raise BotError(self.gone) from None
        else:
            piece = self.session.scalar(  # substr counts from 1
                select(func.substr(ModelVersion.content, self.read_bytes + 1, wanted, type_=LargeBinary))
                .where(ModelVersion.id == self.row))
            if piece is None:
                raise BotError(self.gone)
        buffer[:len(piece)] = piece  # shorter than its size (b""): the hash check below says it is damaged
        self.digest.update(piece)
        self.read_bytes += len(piece)
        return len(piece)
