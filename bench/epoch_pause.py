"""How long Keras's `fit` takes to return after a pass's last step: arrays as given, and as the trainer passes them.

The trainer calls `fit` once an epoch. On the TensorFlow backend, Keras turns arrays into an autotuned `tf.data`
pipeline, and tearing its iterator down at the end of the pass can wait for the autotuning thread's next round,
time in which nothing trains. The trainer passes its own pipeline with autotuning off (`models.fitting.in_order`).

Each pass here is a tiny model whose steps are stretched by a sleep to the pass length asked, so that the time after
the last step is the pipeline's alone and the machine is nearly idle. For each length, one pass each way:

  arrays      model.fit(x, y, batch_size=..., shuffle=False), as Keras users write it
  in_order    model.fit(**models.fitting.in_order(x, y, batch_size), shuffle=False), as the trainer calls it

    python bench/epoch_pause.py --seconds 10 25 45 70 --json bench/results/epoch_pause.json
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import machine, today, write_result  # noqa: E402

STEPS = 100  # per pass; each sleeps its share of the pass's length
BATCH = 2


def pause_after(model, data: dict, seconds: float) -> dict[str, float]:
    """One pass of `fit` on `data`, each step stretched to `seconds / STEPS`: the pass's length to its last step's
    end, and the seconds from there until `fit` returned."""
    import keras

    class Stretch(keras.callbacks.Callback):
        last = 0.0

        def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
            time.sleep(seconds / STEPS)
            Stretch.last = time.monotonic()

    start = time.monotonic()
    model.fit(**data, epochs=1, shuffle=False, verbose=0, callbacks=[Stretch()])
    returned = time.monotonic()
    return {"pass_seconds": round(Stretch.last - start, 2), "returned_after": round(returned - Stretch.last, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[10, 25, 45, 70], help="pass lengths")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    import keras

    from models import fitting

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x, y = np.zeros((STEPS * BATCH, 4), "float32"), np.zeros((STEPS * BATCH, 1), "float32")
    ways = {"arrays": {"x": x, "y": y, "batch_size": BATCH},
            "in_order": fitting.in_order(x, y, BATCH)}
    passes = []
    for seconds in args.seconds:
        for way, data in ways.items():
            result = {"way": way, "seconds_asked": seconds} | pause_after(model, data, seconds)
            print(result, flush=True)
            passes.append(result)
    totals = {way: round(sum(p["returned_after"] for p in passes if p["way"] == way), 2) for way in ways}
    write_result({"machine": machine(), "date": today(), "backend": keras.backend.backend(),
                  "keras": keras.__version__, "steps_per_pass": STEPS, "passes": passes,
                  "returned_after_total": totals}, args.json)


if __name__ == "__main__":
    main()
