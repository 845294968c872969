"""The tables: corpora and their documents, the candidates a bot may post, and the service's own state.

The schema is created and changed only by the Alembic migrations in `bot/migrations`; a test checks that
the migrations and these classes agree, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (JSON, BigInteger, CheckConstraint, Column, DateTime, Float, ForeignKey, ForeignKeyConstraint,
                        Index, Integer, LargeBinary, MetaData, String, Table, Text, TypeDecorator, Unicode,
                        UniqueConstraint)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAME_LENGTH = 64  # corpus, model and bot names (bot.names.NAME_PATTERN)
ID = BigInteger().with_variant(Integer, "sqlite")  # SQLite autoincrements only an INTEGER PRIMARY KEY


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Stored in UTC; read back timezone-aware on every database (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetimes are not stored; use an aware UTC datetime")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: object) -> datetime | None:
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    })


class Corpus(Base):
    __tablename__ = "corpora"

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    documents: Mapped[list[StoredDocument]] = relationship(back_populates="corpus", passive_deletes=True)


class StoredDocument(Base):
    __tablename__ = "documents"
    __table_args__ = (UniqueConstraint("corpus_id", "source", "external_id", name="uq_documents_source_id"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    corpus_id: Mapped[int] = mapped_column(ForeignKey("corpora.id", ondelete="CASCADE"), index=True)
    source: Mapped[str] = mapped_column(String(16))  # "file", "reddit", "x"
    external_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when the source says it was written
    score: Mapped[int | None] = mapped_column(Integer)
    url: Mapped[str | None] = mapped_column(Text)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    corpus: Mapped[Corpus] = relationship(back_populates="documents")


class Status(StrEnum):
    """pending -> approved -> posting -> posted; pending -> rejected; posting -> failed (retryable);
    a `posting` row found after a crash becomes `unknown`, for a person to decide; never re-posted by itself."""

    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"
    POSTING = "posting"
    POSTED = "posted"
    FAILED = "failed"
    UNKNOWN = "unknown"


_STATUSES = ", ".join(f"'{s.value}'" for s in Status)


class Candidate(Base):
    __tablename__ = "candidates"
    __table_args__ = (CheckConstraint(f"status IN ({_STATUSES})", name="status"),
                      Index("ix_candidates_bot_status", "bot", "status"),  # the post job's and the cap's query
                      Index("ix_candidates_bot_claimed_at", "bot", "claimed_at"))  # posts of the day

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    bot: Mapped[str] = mapped_column(String(NAME_LENGTH), index=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    text: Mapped[str] = mapped_column(Text)
    sampled_text: Mapped[str] = mapped_column(Text)  # as the model wrote it, before any edit
    temperature: Mapped[float] = mapped_column(Float)
    top_k: Mapped[int] = mapped_column(Integer, default=0)
    top_p: Mapped[float] = mapped_column(Float, default=1.0)
    prefix: Mapped[str | None] = mapped_column(Text)
    seed: Mapped[int | None] = mapped_column(BigInteger)
    logprob: Mapped[float] = mapped_column(Float)  # natural log of the model's probability of the text
    # a reader's judgement, independent of the model that wrote it: the base model's mean log-probability per piece
    # (models.scoring); higher is more plausible; None where no base model was at hand
    plausibility: Mapped[float | None] = mapped_column(Float)
    tokens: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=Status.PENDING, index=True)
    reason: Mapped[str | None] = mapped_column(Text)  # why it was rejected, or why posting failed
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    posted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    remote_id: Mapped[str | None] = mapped_column(String(128))
    remote_url: Mapped[str | None] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # posting attempts
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # review mode posts in this order
    claimed_by: Mapped[str | None] = mapped_column(String(128))  # the process that moved it to `posting`
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # when; the daily cap counts by it
    retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a `failed` one is retried then; None: never
    # Bumped by every change, so each change is a compare-and-set: the ORM adds `AND version = <read>` to its
    # UPDATE (and a loser gets StaleDataError); the Core updates of `bot.posting` bump and compare it themselves.
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    __mapper_args__ = {"version_id_col": version}


class BotState(Base):
    """One row per bot: the lock that serialises its claims, and a platform's wait that holds back its posts."""

    __tablename__ = "bot_states"

    bot: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    claims: Mapped[int] = mapped_column(Integer, default=0)  # bumped by every claim: the row lock is the point
    post_not_before: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a rate limit's end
    wait_reason: Mapped[str | None] = mapped_column(Text)


class JobRun(Base):
    """What each scheduled (or hand-run) job of a bot did: `bot status` shows the last error from here.

    A job `bot run` sends to a worker (`bot.service.dispatch`) is a row with a `queue`: no owner while it waits in
    the broker, then the worker process that runs it, its heartbeat, and at the end its outcome."""

    __tablename__ = "job_runs"
    __table_args__ = (Index("ix_job_runs_bot_job", "bot", "job", "id"),
                      Index("ix_job_runs_queue_outcome", "queue", "outcome"))  # tasks queued and running

    id: Mapped[int] = mapped_column(ID, primary_key=True)
    bot: Mapped[str] = mapped_column(String(NAME_LENGTH))
    job: Mapped[str] = mapped_column(String(16))  # refill, post, scrape, train, reconcile
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(16))  # ok, nothing, waiting, error, cancelled
    message: Mapped[str | None] = mapped_column(Text)  # one sentence for people; a task's progress while it runs
    owner: Mapped[str | None] = mapped_column(String(128))
    queue: Mapped[str | None] = mapped_column(String(16))  # the broker queue it was sent to; None: run in-process
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # a worker's last sign of life while running it
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")  # workers that started it (redeliveries)


class Worker(Base):
    """A `bot worker` process: the queues it takes, the task protocol its code speaks, its last heartbeat."""

    __tablename__ = "workers"

    name: Mapped[str] = mapped_column(String(128), primary_key=True)  # its main process, "host:pid:random"
    queues: Mapped[str] = mapped_column(String(64))  # "train,refill"
    concurrency: Mapped[int] = mapped_column(Integer)  # tasks it runs at once
    protocol: Mapped[int] = mapped_column(Integer)  # bot.service.broker.TASK_PROTOCOL of its code
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    stopped_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # set when it stopped cleanly


class ServiceLease(Base):
    """Who runs the scheduler on this database: one `bot run` at a time, until its lease expires."""

    __tablename__ = "service_lease"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)  # "scheduler"
    owner: Mapped[str] = mapped_column(String(128))  # "host:pid:random"
    acquired_at: Mapped[datetime] = mapped_column(UTCDateTime)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


SHA256_LENGTH = 64  # a sha256 in hex


class ModelVersion(Base):
    """A finished model version, packed (`bot.model_store.pack`) so that hosts without a shared disk can fetch it:
    content-addressed by the sha256 of its packed content, stored once per model and hash."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model", "sha256"),)

    id: Mapped[int] = mapped_column(ID, primary_key=True)  # the order versions were stored in; pruning keeps the last
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))  # of `content`
    size: Mapped[int] = mapped_column(BigInteger)  # bytes of `content`
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(128))  # the process that published it: "host:pid:random"
    # An uncompressed tar (weights.npz does not compress); on PostgreSQL stored without TOAST compression, so reads
    # of a slice (substr) fetch only that slice.
    content: Mapped[bytes] = mapped_column(LargeBinary, deferred=True)  # read in slices (bot.model_store)
    # What the version is, for hosts that have not fetched it: {"corpus", "valid_perplexity", "created_at"} (when
    # it was trained), read from its folder (`bot.model_store.summary`); None for versions stored before 0007.
    summary: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)


class ServingModel(Base):
    """One row per published model name: the version that serves, moved by compare-and-set on `generation`.

    The foreign key keeps the serving version from being pruned."""

    __tablename__ = "serving_models"
    __table_args__ = (ForeignKeyConstraint(["model", "sha256"], ["model_versions.model", "model_versions.sha256"]),)

    model: Mapped[str] = mapped_column(String(NAME_LENGTH), primary_key=True)
    sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    generation: Mapped[int] = mapped_column(Integer)  # bumped by every move: the compare in compare-and-set
    moved_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    moved_by: Mapped[str] = mapped_column(String(128))  # the process that moved it


# APScheduler's job store table, as its SQLAlchemyJobStore defines it (apscheduler 3.x); created here by a
# migration like every other table, so the store finds it in place and the schema has one author.
SCHEDULER_JOBS = "apscheduler_jobs"
scheduler_jobs = Table(
    SCHEDULER_JOBS, Base.metadata,
    Column("id", Unicode(191), primary_key=True),
    Column("next_run_time", Float(25), index=True),
    Column("job_state", LargeBinary, nullable=False),
)
