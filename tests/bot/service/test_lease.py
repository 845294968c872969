"""One scheduler per database: the lease is taken, renewed, refused to a second holder, and taken over."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta

import pytest

from bot.service import lease
from bot.store.schema import ServiceLease, utcnow

ME, OTHER = "thishost:1:aaaa", "otherhost:2:bbbb"  # owners on hosts other than this one: only expiry frees them


def test_a_second_holder_is_refused_with_the_holder_and_expiry_named(store) -> None:
    now = utcnow().replace(microsecond=0)
    lease.acquire(store, OTHER, seconds=60, now=now)
    with pytest.raises(lease.LeaseHeldError) as error:
        lease.acquire(store, ME, seconds=60, now=now + timedelta(seconds=5))
    assert str(error.value) == (
        f"Another `bot run` (pid 2 on otherhost, running since {now:%Y-%m-%d %H:%M:%S} UTC) holds this database "
        f"until {now + timedelta(seconds=60):%H:%M:%S} UTC; stop it first, or wait for its lease to expire.")
    assert lease.holder(store, now=now + timedelta(seconds=5)).owner == OTHER


def test_renewing_keeps_it_and_an_expired_lease_is_taken_over(store) -> None:
    now = utcnow()
    lease.acquire(store, OTHER, seconds=60, now=now)
    assert lease.renew(store, OTHER, seconds=60, now=now + timedelta(seconds=50))
    with pytest.raises(lease.LeaseHeldError):
        lease.acquire(store, ME, seconds=60, now=now + timedelta(seconds=100))  # renewed until 110 s
    taken = lease.acquire(store, ME, seconds=60, now=now + timedelta(seconds=111))
    assert taken.owner == ME and lease.holder(store, now=now + timedelta(seconds=112)).owner == ME
    assert not lease.renew(store, OTHER, seconds=60, now=now + timedelta(seconds=113))  # the old holder lost it


def test_the_lease_of_an_ended_process_on_this_host_is_free_at_once(store) -> None:
    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True,
                           check=True)
    gone = f"{os.uname().nodename}:{int(ended.stdout)}:cccc"
    lease.acquire(store, gone, seconds=3600)
    assert lease.holder(store) is None
    assert lease.acquire(store, ME, seconds=60).owner == ME


def test_released_means_free(store) -> None:
    lease.acquire(store, OTHER, seconds=60)
    lease.release(store, OTHER)
    with store.session() as session:
        assert session.get(ServiceLease, lease.LEASE_NAME) is None
    assert lease.holder(store) is None
    assert lease.acquire(store, ME, seconds=60).owner == ME
