"""How the base corpus's Bloom-filter novelty index agrees with the exact index, on the real corpus (issue 28).

    python bench/base_novelty.py --data ../shared/data/reddit-titles --json bench/results/base_novelty.json

Builds the index the base ships (``bench/base_model.py build-novelty``, in a child process so that its seconds and
peak memory are its own) into a scratch folder, builds the exact `NoveltyIndex` of the same training titles, and
asks both about the same probes:

* ``titles``: training titles as they are; each must be rejected.
* ``edited``: training titles of 5 words or more, lightly edited: words shuffled, one word replaced by another
  corpus word, one dropped, or two neighbours swapped.
* ``spanning``: the last 1-10 words of one training title and the first 1-10 of another: long shared runs that
  no single title holds, which a chain of 5-grams might mistake for one.
* ``substrings``: a run of a training title's words, with up to 3 random corpus words on either side.
* ``validation``: the VALID_DOCUMENTS titles the base never trained on: real, mostly novel text.

A false rejection is a probe the Bloom index rejects and the exact index accepts (false-positive 5-grams, or
chains of 5-grams from different titles). A false acceptance is one the exact index rejects and the Bloom index
accepts; it must never happen, except for the gap the index documents (2 to 4 words found inside a longer title),
counted apart as ``short_phrase_gap``, and texts without words (``wordless_gap``), which the length filter
rejects first.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.base_model import read_titles, split_titles
from bench.common import machine, peak_mb, today, write_result
from bot.novelty import BASE_CORPUS_FILE, GRAM_WORDS, BaseCorpusIndex, NoveltyIndex, split_words

SEED = 0
PROBES = 5_000  # per probe set
EXAMPLES = 5  # false rejections quoted per set, to read


def edited(rng: random.Random, words: list[str], vocabulary: list[str]) -> list[str]:
    """`words` lightly edited: shuffled, one replaced, one dropped, or two neighbours swapped."""
    words = list(words)
    kind, at = rng.randrange(4), rng.randrange(len(words))
    if kind == 0:
        rng.shuffle(words)
    elif kind == 1:
        words[at] = rng.choice(vocabulary)
    elif kind == 2:
        del words[at]
    else:
        at = min(at, len(words) - 2)
        words[at], words[at + 1] = words[at + 1], words[at]
    return words


def probe_sets(titles: list[str], valid: list[str], count: int, seed: int) -> dict[str, list[str]]:
    """The probes, by set (see the module's docstring)."""
    rng = random.Random(seed)
    tokenized = [split_words(t) for t in rng.sample(titles, 4 * count)]  # a sample: splitting all takes minutes
    usable = [w for w in tokenized if w]
    vocabulary = [word for words in usable for word in words]  # by frequency, as a sample draws them
    long = [w for w in usable if len(w) >= GRAM_WORDS]
    sets: dict[str, list[str]] = {"titles": [t for t in rng.sample(titles, 2 * count) if split_words(t)][:count]}
    sets["edited"] = [" ".join(edited(rng, rng.choice(long), vocabulary)) for _ in range(count)]
    sets["spanning"] = [" ".join(rng.choice(usable)[-rng.randint(1, 10):] + rng.choice(usable)[: rng.randint(1, 10)])
                        for _ in range(count)]
    substrings = []
    for _ in range(count):
        words = rng.choice(usable)
        start = rng.randrange(len(words))
        piece = words[start : start + rng.randint(1, len(words))]
        substrings.append(" ".join(rng.choices(vocabulary, k=rng.randint(0, 3)) + piece
                                   + rng.choices(vocabulary, k=rng.randint(0, 3))))
    sets["substrings"] = substrings
    sets["validation"] = [t for t in rng.sample(valid, min(len(valid), count))]
    return sets


def timed(check: Callable[[str], str | None], texts: list[str]) -> tuple[list[str | None], float]:
    """Each text's verdict, and microseconds per check."""
    started = time.perf_counter()
    verdicts = [check(t) for t in texts]
    return verdicts, (time.perf_counter() - started) / max(len(texts), 1) * 1e6


def compare(texts: list[str], exact: NoveltyIndex, bloom: BaseCorpusIndex) -> dict[str, Any]:
    exact_says, exact_us = timed(exact.check, texts)
    bloom_says, bloom_us = timed(bloom.check, texts)
    false_rejections, false_acceptances, gap, wordless = [], [], 0, 0
    for text, e, b in zip(texts, exact_says, bloom_says):
        if e is None and b is not None:
            false_rejections.append({"text": text, "bloom": b})
        elif e is not None and b is None:
            words = len(split_words(text))
            if words == 0:
                wordless += 1  # documented: the length filter rejects it first
            elif words < GRAM_WORDS and not e.startswith("copies"):
                gap += 1  # documented: a short phrase inside a longer title
            else:
                false_acceptances.append({"text": text, "exact": e})
    accepted = sum(e is None for e in exact_says)
    return {
        "probes": len(texts), "exact_rejects": len(texts) - accepted,
        "bloom_rejects": sum(b is not None for b in bloom_says),
        "false_rejections": len(false_rejections),
        "false_rejection_rate": round(len(false_rejections) / accepted, 5) if accepted else None,  # of exact accepts
        "false_acceptances": len(false_acceptances), "short_phrase_gap": gap, "wordless_gap": wordless,
        "exact_us_per_check": round(exact_us, 1), "bloom_us_per_check": round(bloom_us, 1),
        "false_rejection_examples": false_rejections[:EXAMPLES],
        "false_acceptance_examples": false_acceptances[:EXAMPLES],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data/reddit-titles"))
    parser.add_argument("--scratch", type=Path, default=None, help="where the index is built (default: a temp dir)")
    parser.add_argument("--probes", type=int, default=PROBES, help="per probe set")
    parser.add_argument("--also-rates", type=float, nargs="*", default=[0.002],
                        help="false-positive rates of further indexes, built here, to compare the trade-off")
    parser.add_argument("--note", default=None, help="what else the machine was doing, say")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "base_novelty.json")
    args = parser.parse_args()
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="base-novelty-"))
    result: dict[str, Any] = {"machine": machine(), "date": today(), "probes_per_set": args.probes}
    if args.note:
        result["note"] = args.note

    started = time.monotonic()
    subprocess.run([sys.executable, str(Path(__file__).parent / "base_model.py"), "build-novelty", "--data",
                    str(args.data), "--out", str(scratch), "--json", str(scratch / "build.json")],
                   check=True, stdout=subprocess.DEVNULL)
    build = json.loads((scratch / "build.json").read_text())
    result["bloom"] = {key: build[key] for key in ("titles", "keys", "hashes", "file_bytes", "memory_bytes",
                                                   "read_seconds", "build_seconds", "peak_mb")}
    result["bloom"]["command_seconds"] = round(time.monotonic() - started, 1)
    result["bloom"]["child_peak_mb"] = round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)
    bloom = BaseCorpusIndex.load(scratch / BASE_CORPUS_FILE)
    print(f"bloom: {result['bloom']}", file=sys.stderr, flush=True)

    started = time.monotonic()
    train, valid = split_titles(read_titles(args.data)[0])
    read_seconds = time.monotonic() - started
    exact = NoveltyIndex.build(train)
    result["exact"] = {"words": exact.words, "memory_bytes_arrays": exact.words * 12,
                       "read_seconds": round(read_seconds, 1),
                       "build_seconds": round(time.monotonic() - started - read_seconds, 1)}
    print(f"exact: {result['exact']}", file=sys.stderr, flush=True)

    others = {}
    for rate in args.also_rates:
        started = time.monotonic()
        others[rate] = BaseCorpusIndex.build(train, false_positive_rate=rate)
        result.setdefault("other_rates", {})[str(rate)] = {
            "file_bytes_about": others[rate].nbytes, "hashes": others[rate].hashes,
            "build_seconds": round(time.monotonic() - started, 1), "sets": {}}

    result["sets"] = {}
    for name, texts in probe_sets(train, valid, args.probes, SEED).items():
        result["sets"][name] = compare(texts, exact, bloom)
        print(f"{name}: { {k: v for k, v in result['sets'][name].items() if 'examples' not in k} }", file=sys.stderr,
              flush=True)
        for rate, other in others.items():
            figures = compare(texts, exact, other)
            result["other_rates"][str(rate)]["sets"][name] = {
                k: figures[k] for k in ("false_rejections", "false_rejection_rate", "false_acceptances")}
    result["peak_mb"] = peak_mb()  # this process: the titles and the exact index
    args.json.parent.mkdir(parents=True, exist_ok=True)
    write_result(result, args.json)


if __name__ == "__main__":
    main()
