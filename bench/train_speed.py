"""Training throughput against the machine's fp32 matrix-multiply rate, measured in the same run.

The reference configuration is Zaremba et al.'s "small" Penn Treebank model: 2 LSTM layers of 200, a 10,000-word
vocabulary, windows of 35 tokens. The script trains the real nnbot network (models.network, through Keras's
`fit`, as `bot train` does) on random token ids for a fixed number of steps, and reports

  tokens/s            window positions trained per second (the best of 3 epochs after an untimed first one)
  GFLOP/s achieved    tokens/s x the multiply-adds per token (forward + backward) x 2
  matmul GFLOP/s      the best fp32 rate this machine reaches, measured now: a large matrix product through
                      numpy (OpenBLAS) and through the Keras backend in use, at a square size and at the shapes
                      of the softmax layer; the highest is the denominator
  ratio               achieved / matmul
  planning probe      the quarter-second 1,024-square product `bot train` times to plan a time limit
                      (models.fitting.matmul_rate), and achieved / probe

Multiply-adds counted per token, forward: each LSTM layer 4H(I + H) (the four gates from input and state; I is the
layer's input width), the softmax H x V (plus H x E for a projection before a tied softmax), the embedding 0 (a
lookup). Backward counts twice the forward (the gradients with respect to inputs and to weights). Elementwise work
(gate nonlinearities, the softmax's exponentials) is not counted: the ratio is conservative.

    python bench/train_speed.py                       # TensorFlow, the default backend
    KERAS_BACKEND=jax python bench/train_speed.py
    KERAS_BACKEND=torch python bench/train_speed.py --batch 128
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
from models.config import ModelConfig, flops_per_token, macs_per_token  # noqa: E402

REFERENCE = ModelConfig(embedding_dim=200, hidden_dim=200, layers=2, tied=False, dropout=0.0,
                        embedding_dropout=0.0, window=35, batch_size=64, optimizer="sgd", learning_rate=1.0,
                        clip_norm=5.0, max_vocab=10_000)
VOCAB = 10_000
MATMUL_SECONDS = 3.0  # per matmul shape measured
SQUARE = 2048  # side of the square matrix product
REPEATS = 3  # timed training epochs; the fastest counts


def _time_repeated(run, seconds: float) -> float:
    run()
    start, count = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        run()
        count += 1
    return (time.perf_counter() - start) / count


def matmul_rates(shapes: list[tuple[int, int, int]]) -> dict[str, float]:
    """GFLOP/s of fp32 C = A @ B for each (m, k, n), through numpy and through the Keras backend."""
    import keras
    from keras import ops

    from models.fitting import compiled_matmul

    rates = {}
    rng = np.random.default_rng(0)
    for m, k, n in shapes:
        a = rng.standard_normal((m, k), dtype=np.float32)
        b = rng.standard_normal((k, n), dtype=np.float32)
        flops = 2 * m * k * n
        rates[f"numpy {m}x{k}x{n}"] = flops / _time_repeated(lambda: a @ b, MATMUL_SECONDS) / 1e9
        ta, tb = ops.convert_to_tensor(a), ops.convert_to_tensor(b)
        matmul = compiled_matmul()
        rates[f"{keras.backend.backend()} {m}x{k}x{n}"] = flops / _time_repeated(
            lambda: ops.convert_to_numpy(matmul(ta, tb)[:1, :1]), MATMUL_SECONDS) / 1e9
    return rates


def training_rate(config: ModelConfig, vocab: int, *, steps: int) -> dict[str, float]:
    """Tokens/s of `fit` on the nnbot network: the best of REPEATS epochs after an untimed one (tracing)."""
    import keras

    from models import fitting, network

    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    proposal = 1e6 / np.arange(1, vocab + 1) if config.sampled_softmax else None  # Zipf's law, as text has
    model = network.build_network(config, vocab, batch_size=config.batch_size, proposal=proposal)
    model.compile(optimizer=fitting.optimizer(config), loss=fitting.loss())
    n = steps * config.batch_size
    x = rng.integers(4, vocab, size=(n, config.window), dtype=np.int32)
    y = rng.integers(4, vocab, size=(n, config.window), dtype=np.int32)
    if config.sampled_softmax:  # as the trainer feeds a sampled softmax
        x, y = {"ids": x, "targets": y}, np.zeros_like(y)
    seconds = []
    for _ in range(REPEATS + 1):  # the first call builds and traces the step function: not timed
        start = time.perf_counter()
        # as the trainer calls it (a pipeline that does not wait for tf.data's autotuner at the end of the pass)
        model.fit(**fitting.in_order(x, y, config.batch_size), epochs=1, shuffle=False, verbose=0)
        seconds.append(time.perf_counter() - start)
    best = min(seconds[1:])  # the least disturbed run on a shared machine
    return {"tokens_per_second": n * config.window / best, "seconds": best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=REFERENCE.batch_size, help="parallel streams per step")
    parser.add_argument("--window", type=int, default=REFERENCE.window)
    parser.add_argument("--hidden", type=int, default=REFERENCE.hidden_dim, help="embedding and LSTM width")
    parser.add_argument("--layers", type=int, default=REFERENCE.layers)
    parser.add_argument("--steps", type=int, default=40, help="timed training steps")
    parser.add_argument("--sampled", type=int, default=0, help="train with a softmax sampled over this many words; "
                        "the arithmetic counted stays the full softmax's, so the ratio shows what it saves")
    parser.add_argument("--tied", action="store_true", help="tie the softmax to the embedding")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    import keras

    from models import fitting

    config = REFERENCE.replace(batch_size=args.batch, window=args.window, hidden_dim=args.hidden,
                               embedding_dim=args.hidden, layers=args.layers, sampled_softmax=args.sampled,
                               tied=args.tied)
    n = args.batch * args.window
    h = config.hidden_dim
    rates = matmul_rates([(SQUARE, SQUARE, SQUARE), (n, h, VOCAB), (n, VOCAB, h), (h, n, VOCAB)])
    probe = fitting.matmul_rate() / 1e9  # what `bot train` measures to plan a time limit (models.budget)
    train = training_rate(config, VOCAB, steps=args.steps)
    full = config.replace(sampled_softmax=0)  # the arithmetic counted is the full softmax's
    flops = flops_per_token(full, VOCAB)
    achieved = train["tokens_per_second"] * flops / 1e9
    best = max(rates.values())
    backend_square = rates[f"{keras.backend.backend()} {SQUARE}x{SQUARE}x{SQUARE}"]
    result = {
        "machine": machine(), "date": today(), "backend": keras.backend.backend(),
        "keras": keras.__version__,
        "config": {"layers": config.layers, "hidden": h, "vocab": VOCAB, "window": config.window,
                   "batch": config.batch_size, "tied": config.tied, "sampled_softmax": config.sampled_softmax},
        "macs_per_token_forward": macs_per_token(full, VOCAB), "flops_per_token": flops,
        "tokens_per_second": round(train["tokens_per_second"]), "achieved_gflops": round(achieved, 1),
        "matmul_gflops": {k: round(v, 1) for k, v in rates.items()}, "best_matmul_gflops": round(best, 1),
        "ratio_to_best_matmul": round(achieved / best, 3),
        "ratio_to_backend_square_matmul": round(achieved / backend_square, 3),
        "planning_probe_gflops": round(probe, 1), "ratio_to_planning_probe": round(achieved / probe, 3),
    }
    write_result(result, args.json)


if __name__ == "__main__":
    main()
