"""Who a process is, as claims and the scheduler's lease name it, and whether such a process has ended."""

from __future__ import annotations

import os
import secrets
import socket
from functools import cache


@cache
def _owner_for(pid: int) -> str:
    return f"{socket.gethostname()}:{pid}:{secrets.token_hex(4)}"


def process_owner() -> str:
    """This process: "host:pid:random" (the random part makes a later process with a reused pid another owner)."""
    return _owner_for(os.getpid())


def owner_gone(owner: str | None) -> bool:
    """Whether the process named by `owner` has certainly ended; only a process on this host can be checked."""
    host, _, rest = (owner or "").partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return owner != process_owner()  # an earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def describe_owner(owner: str) -> str:
    """"host:1234:ab12cd34" -> "pid 1234 on host"."""
    host, _, rest = owner.partition(":")
    return f"pid {rest.partition(':')[0]} on {host}"
