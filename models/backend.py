"""Imports Keras (and so its backend) once, without the start-up lines TensorFlow writes to the terminal.

TensorFlow 2.21 on a machine without a GPU prints "Could not find cuda drivers on your machine", a CPU-feature note
and an absl warning, twice (two of its libraries log on their own), before anything of the user's. Its C++ code
writes them to file descriptor 2 before TF_CPP_MIN_LOG_LEVEL is read, so the import runs with that descriptor pointed
at /dev/null. Python's own errors still raise; a user who sets TF_CPP_MIN_LOG_LEVEL below 3, or a machine with a GPU (where
the lines say which device serves), sees everything. Import this module before `keras`.
"""

from __future__ import annotations

import glob
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from models.config import GPU_DEVICES


def wants_backend_lines() -> bool:
    """A TF_CPP_MIN_LOG_LEVEL below 3 (the quietest, which `models.trainer.quiet_backend_logs` sets) asks for them."""
    level = os.environ.get("TF_CPP_MIN_LOG_LEVEL")
    return (level is not None and level != "3") or any(glob.glob(pattern) for pattern in GPU_DEVICES)


@contextmanager
def stderr_silenced() -> Iterator[None]:
    """File descriptor 2 points at /dev/null inside; Python's sys.stderr is flushed first and works as before after."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def import_keras() -> None:
    if "keras" in sys.modules or wants_backend_lines():
        return
    with stderr_silenced():
        import keras  # (starts the backend: TensorFlow unless KERAS_BACKEND says otherwise)

        # The first operation looks for devices: on a machine with CUDA's libraries and no GPU, TensorFlow logs
        # "failed call to cuInit" as an error line there, which is no error of the user's.
        keras.ops.convert_to_numpy(keras.ops.zeros((1,)))


import_keras()
