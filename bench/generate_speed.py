"""Generation throughput: complete samples per second, n = 256 at once and n = 1, for a 2 x 256 LSTM, V = 10,000.

The sampler (models.sampler) runs the saved weights in numpy: one LSTM step per new token for every running
sample, state carried, finished rows refilled or dropped. The weights here are random, with the `<eos>` bias set
so that a sample ends after about 20 tokens on average, as titles do: each step costs the same whatever the
weights say, so the figure is that of a trained model of this size. A sample is complete when it reaches `<eos>`;
the cap (60 tokens) cuts off the few that do not, and those are not counted as complete.

    python bench/generate_speed.py
    python bench/generate_speed.py --model bot/data/base   # a real model: its size, its lengths
    python bench/generate_speed.py --model DIR --baseline HEAD   # this code against HEAD's, in turns, one process

With --baseline, models/sampler.py as it was at a git revision is imported beside this code's, and the two sample
in turns (n = 256 at once, plain and at top-p 0.95, the bots' default; n = 1) from the reference model and from
--model, so that a shared machine's load falls on both alike; each figure is given as wall-clock and as CPU time.
On a machine busy with other work, also run it with OPENBLAS_NUM_THREADS=1: OpenBLAS's threads wait on each other
when a core is taken, and its default threads then measure the load more than the code (bench/RESULTS.md).
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import subprocess
import sys
import time
import types
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import machine, today, write_result  # noqa: E402
from models.config import DEFAULT_TOP_P, ModelConfig, weight_shapes  # noqa: E402
from models.sampler import Sampler, SamplingSettings  # noqa: E402
from models.tokenizer import EOS_ID, SPECIALS, Tokenizer  # noqa: E402

VOCAB = 10_000
MEAN_TOKENS = 20  # tokens per sample, <eos> included, that the <eos> bias aims at
CONFIG = ModelConfig(embedding_dim=256, hidden_dim=256, layers=2, tied=False, max_vocab=VOCAB)
SETTINGS = SamplingSettings(temperature=1.0, max_tokens=60)
REPEATS = 3  # timed runs per case; the fastest counts
ROUNDS = 5  # with --baseline: rounds of the two codes in turns
ROOT = Path(__file__).resolve().parents[1]


def model(seed: int = 0, sampler_class: type = Sampler) -> Sampler:
    rng = np.random.default_rng(seed)
    weights = {k: rng.normal(0, 0.1, size=s).astype(np.float32) for k, s in weight_shapes(CONFIG, VOCAB).items()}
    # P(<eos>) ~ 1/MEAN_TOKENS at each step: logit(<eos>) - log(sum of the other exp(logits)) = log(p / (1 - p)).
    p = 1 / MEAN_TOKENS
    weights["output/bias"][EOS_ID] = math.log(p / (1 - p)) + math.log(VOCAB - len(SPECIALS))
    tokenizer = Tokenizer(SPECIALS + tuple(f" w{i}" for i in range(VOCAB - len(SPECIALS))))
    return sampler_class(CONFIG, tokenizer, weights)


def sampler_at(revision: str) -> types.ModuleType:
    """models/sampler.py as it was at a git revision, imported under its own name beside this code's."""
    source = subprocess.run(["git", "show", f"{revision}:models/sampler.py"], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout
    module = types.ModuleType(f"sampler_at_{revision}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:models/sampler.py", "exec"), module.__dict__)
    return module


def compare(samplers: dict[str, Sampler], baseline: str, rounds: int) -> dict[str, object]:
    """Each case for each sampler in turns, `rounds` times: complete samples/s by wall clock and by CPU time (all
    threads), each round's and the median; and this code's median over the baseline's, same model and case."""
    cases = {"n=256 at once": (256, SETTINGS, 1), f"n=256 at once, top-p {DEFAULT_TOP_P}":
             (256, SamplingSettings(top_p=DEFAULT_TOP_P, max_tokens=SETTINGS.max_tokens), 1), "n=1": (1, SETTINGS, 20)}
    rates: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for round_ in range(rounds):
        for case, (n, settings, runs) in cases.items():
            for label, sampler in samplers.items():
                wall, cpu = time.perf_counter(), time.process_time()
                complete = sum(s.complete for r in range(runs)
                               for s in sampler.sample(n, settings, seed=round_ * runs + r, batch_size=256))
                wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
                rates.setdefault((case, label), []).append((complete / wall, complete / cpu))
    result: dict[str, object] = {}
    for (case, label), pairs in rates.items():
        wall, cpu = [w for w, _ in pairs], [c for _, c in pairs]
        row = {"wall samples/s": [round(w, 1) for w in wall], "cpu samples/s": [round(c, 1) for c in cpu],
               "wall median": round(statistics.median(wall), 1), "cpu median": round(statistics.median(cpu), 1)}
        base = rates.get((case, label.replace("this code", baseline)))
        if base and not label.endswith(baseline):
            row["wall ratio to baseline"] = round(row["wall median"] / statistics.median(w for w, _ in base), 2)
            row["cpu ratio to baseline"] = round(row["cpu median"] / statistics.median(c for _, c in base), 2)
        result.setdefault(case, {})[label] = row
    return result


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
    parser.add_argument("--baseline", metavar="REV", help="also run models/sampler.py of this git revision, in turns")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="with --baseline: rounds of the codes in turns")
    args = parser.parse_args()
    if args.baseline:
        write_result(baseline_run(args), args.json)
        return
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


def baseline_run(args: argparse.Namespace) -> dict[str, object]:
    """This code and the baseline's, on the reference model and on --model, in turns."""
    old = sampler_at(args.baseline)
    samplers = {f"reference, {args.baseline}": model(sampler_class=old.Sampler), "reference, this code": model()}
    described = {"reference": {"layers": CONFIG.layers, "hidden": CONFIG.hidden_dim, "vocab": VOCAB}}
    if args.model:
        from models.artifact import load_model

        trained = load_model(args.model)
        parts = (trained.config, trained.tokenizer, trained.weights)
        samplers |= {f"model, {args.baseline}": old.Sampler(*parts), "model, this code": Sampler(*parts)}
        described["model"] = {"path": str(args.model), "layers": trained.config.layers,
                              "hidden": trained.config.hidden_dim, "vocab": trained.tokenizer.size}
    for sampler in samplers.values():
        sampler.sample(8, SETTINGS, seed=0)  # first calls pay for allocation
    in_turns = compare(samplers, args.baseline, args.rounds)
    if args.model:  # the model with this code against the reference with the baseline's: the yardstick
        for rows in in_turns.values():
            mine, theirs = rows["model, this code"], rows[f"reference, {args.baseline}"]
            rows["model, this code, over reference, baseline"] = {
                key: round(mine[f"{key} median"] / theirs[f"{key} median"], 2) for key in ("wall", "cpu")}
    return {"machine": machine(), "date": today(), "numpy": np.__version__, "baseline": args.baseline,
            "blas threads": os.environ.get("OPENBLAS_NUM_THREADS", "OpenBLAS's default"), "models": described,
            "rounds": args.rounds, "in turns": in_turns}


if __name__ == "__main__":
    main()
