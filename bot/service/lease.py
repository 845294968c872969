"""One scheduler per database: a lease row (owner, heartbeat, expiry) that a `bot run` takes, renews and gives back.

A holder renews its lease every quarter of its length; one that stops renewing (killed, frozen, cut off) loses
it when it expires, and a holder on this host whose process has ended loses it at once.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, update

from bot.errors import BotError
from bot.processes import describe_owner, owner_gone
from bot.store import Store, insert_ignoring_conflict
from bot.store.schema import ServiceLease, utcnow

logger = logging.getLogger(__name__)

LEASE_NAME = "scheduler"
RENEW_FRACTION = 0.25  # renew after this share of the lease has passed


class LeaseHeldError(BotError):
    """Another `bot run` holds the database."""


@dataclass(frozen=True)
class Lease:
    owner: str
    acquired_at: datetime
    heartbeat_at: datetime
    expires_at: datetime

    def to_json(self) -> dict[str, str]:
        return {"owner": self.owner, "since": self.acquired_at.isoformat(timespec="seconds"),
                "heartbeat": self.heartbeat_at.isoformat(timespec="seconds"),
                "expires": self.expires_at.isoformat(timespec="seconds")}


def holder(store: Store, *, now: datetime | None = None) -> Lease | None:
    """The live lease, if a scheduler holds one (an expired one, or one of an ended process, is no lease)."""
    now = now or utcnow()
    with store.session() as session:
        row = session.get(ServiceLease, LEASE_NAME)
        if row is None or row.expires_at <= now or owner_gone(row.owner):
            return None
        return Lease(row.owner, row.acquired_at, row.heartbeat_at, row.expires_at)


def acquire(store: Store, owner: str, *, seconds: float, now: datetime | None = None) -> Lease:
    """Take the lease for `owner`, or raise `LeaseHeldError` naming who holds it and until when."""
    now = now or utcnow()
    expires = now + timedelta(seconds=seconds)
    values = {"owner": owner, "acquired_at": now, "heartbeat_at": now, "expires_at": expires}
    with store.session() as session:
        if insert_ignoring_conflict(session, ServiceLease, {"name": LEASE_NAME, **values}):
            return Lease(owner, now, now, expires)
        current = session.get(ServiceLease, LEASE_NAME, with_for_update=True, populate_existing=True)
        assert current is not None
        free = current.owner == owner or current.expires_at <= now or owner_gone(current.owner)
        if not free:
            raise LeaseHeldError(
                f"Another `bot run` ({describe_owner(current.owner)}, running since "
                f"{current.acquired_at:%Y-%m-%d %H:%M:%S} UTC) holds this database until "
                f"{current.expires_at:%H:%M:%S} UTC; stop it first, or wait for its lease to expire.")
        if current.owner != owner:
            logger.warning("taking over the scheduler lease of %s, which %s", describe_owner(current.owner),
                           "has ended" if owner_gone(current.owner) else "expired")
        taken = session.execute(
            update(ServiceLease).where(ServiceLease.name == LEASE_NAME, ServiceLease.owner == current.owner)
            .values(**values).execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
        if taken != 1:
            raise LeaseHeldError("Another `bot run` took this database at the same moment; run `bot status` to "
                                 "see which.")
    return Lease(owner, now, now, expires)


def renew(store: Store, owner: str, *, seconds: float, now: datetime | None = None) -> bool:
    """Extend `owner`'s lease; False when it is no longer `owner`'s (it expired and someone took it)."""
    now = now or utcnow()
    with store.session() as session:
        done = session.execute(
            update(ServiceLease).where(ServiceLease.name == LEASE_NAME, ServiceLease.owner == owner)
            .values(heartbeat_at=now, expires_at=now + timedelta(seconds=seconds))
            .execution_options(synchronize_session=False)).rowcount  # type: ignore[attr-defined]
    return done == 1


def release(store: Store, owner: str) -> None:
    with store.session() as session:
        session.execute(delete(ServiceLease).where(ServiceLease.name == LEASE_NAME, ServiceLease.owner == owner))
