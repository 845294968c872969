"""Generation throughput: complete samples per second, n = 256 at once and n = 1, for a 2 x 256 LSTM, V = 10,000.

The sampler (models.sampler) runs the saved weights in numpy: one LSTM step per new token for every running
sample, state carried, finished rows refilled or dropped. The weights here are random, with the `<eos>` bias set
so that a sample ends after about 20 tokens on average, as titles do: each step costs the same whatever the
weights say, so the figure is that of a trained model of this size. A sample is complete when it reaches `<eos>`;
the cap (60 tokens) cuts off the few that do not, and those are not counted as complete.

    python bench/generate_speed.py
    python bench/generate_speed.py --model bench/results/base-checkpoint   # a real model: its size, its lengths
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import machine, today, write_result  # noqa: E402
from models.config import ModelConfig, weight_shapes  # noqa: E402
from models.sampler import Sampler, SamplingSettings  # noqa: E402
from models.tokenizer import EOS_ID, SPECIALS, Tokenizer  # noqa: E402

VOCAB = 10_000
MEAN_TOKENS = 20  # tokens per sample, <eos> included, that the <eos> bias aims at
CONFIG = ModelConfig(embedding_dim=256, hidden_dim=256, layers=2, tied=False, max_vocab=VOCAB)
SETTINGS = SamplingSettings(temperature=1.0, max_tokens=60)
REPEATS = 3  # timed runs per case; the fastest counts


def model(seed: int = 0) -> Sampler:
    rng = np.random.default_rng(seed)
    weights = {k: rng.normal(0, 0.1, size=s).astype(np.float32) for k, s in weight_shapes(CONFIG, VOCAB).items()}
    # P(<eos>) ~ 1/MEAN_TOKENS at each step: logit(<eos>) - log(sum of the other exp(logits)) = log(p / (1 - p)).
    p = 1 / MEAN_TOKENS
    weights["output/bias"][EOS_ID] = math.log(p / (1 - p)) + math.log(VOCAB - len(SPECIALS))
    tokenizer = Tokenizer(SPECIALS + tuple(f" w{i}" for i in range(VOCAB - len(SPECIALS))))
    return Sampler(CONFIG, tokenizer, weights)


def measure(sampler: Sampler, *, n: int, batch: int, runs: int) -> dict[str, float]:
    """Samples/s over `runs` calls of sample(n), the fastest of REPEATS rounds."""
    best = math.inf
    lengths: list[int] = []
    complete = 0
    for repeat in range(REPEATS):
        start = time.perf_counter()
        samples = [s for r in range(runs) for s in sampler.sample(n, SETTINGS, seed=repeat * runs + r,
                                                                   batch_size=batch)]
        best = min(best, time.perf_counter() - start)
        lengths = [s.tokens for s in samples]
        complete = sum(s.complete for s in samples)
    return {"samples": len(lengths), "complete": complete, "mean_tokens": round(float(np.mean(lengths)), 1),
            "seconds": round(best, 3), "complete_samples_per_second": round(complete / best, 1),
            "tokens_per_second": round(sum(lengths) / best)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the result here")
    parser.add_argument("--model", type=Path, help="a model directory to sample from instead of random weights")
    args = parser.parse_args()
    if args.model:
        from models.artifact import load_model

        trained = load_model(args.model)
        sampler, described = trained.sampler(), {"path": str(args.model), "layers": trained.config.layers,
                                                 "hidden": trained.config.hidden_dim,
                                                 "vocab": trained.tokenizer.size}
    else:
        sampler, described = model(), {"layers": CONFIG.layers, "hidden": CONFIG.hidden_dim, "vocab": VOCAB}
    sampler.sample(8, SETTINGS, seed=0)  # first calls pay for allocation
    result = {
        "machine": machine(), "date": today(), "numpy": np.__version__, "model": described,
        "n=256 at once": measure(sampler, n=256, batch=256, runs=4),
        "n=2048, 256 at a time (refilled)": measure(sampler, n=2048, batch=256, runs=1),
        "n=1": measure(sampler, n=1, batch=1, runs=50),
    }
    write_result(result, args.json)


if __name__ == "__main__":
    main()
