"""What every benchmark records beside its figures: the machine, the date, peak memory; and how it writes them."""

from __future__ import annotations

import json
import os
import platform
import resource
import time
from pathlib import Path


def machine() -> dict[str, object]:
    """The CPU model, its cores, and its widest vector instructions (machines of one name differ in them)."""
    cpu, flags = "", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and not cpu:
                cpu = value.strip()
            elif key.strip() == "flags" and not flags:
                flags = set(value.split())
    except OSError:
        pass
    vector = next((f for f in ("avx512f", "avx2", "avx", "neon", "asimd") if f in flags), None)
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "vector": vector,
            "python": platform.python_version()}


def today() -> str:
    return time.strftime("%Y-%m-%d")


def peak_mb() -> int:
    """This process's peak resident memory so far, MB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def write_result(result: dict[str, object], path: Path | None) -> None:
    """The result as indented JSON on standard output, and in `path` when given."""
    text = json.dumps(result, indent=2)
    print(text)
    if path:
        path.write_text(text + "\n")
