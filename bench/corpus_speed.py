"""A 20-million-word corpus: tokenizing speed, peak memory through training, and the novelty check's latency.

The corpus is synthetic and seeded: 1,000,000 documents of 10 to 30 words drawn from a 200,000-word vocabulary
with Zipf's law (exponent 1.1, as word frequencies in text roughly follow), each starting with a capital and
ending with a mark. Stages, in one process so peak memory counts everything held at once:

  tokenize   Tokenizer.build (count pieces, keep the vocabulary) and encode_corpus (ids as one int32 array);
             words/s counts whitespace-separated words over the time of both passes
  train      models.trainer.train_model on the whole corpus (preset "small"), stopped by --train-minutes;
             peak memory (ru_maxrss) after it: the documents as strings, the id stream, the windows, the network
  novelty    bot.novelty.NoveltyIndex.build on the corpus, then `check` on 1,000 texts (half new, half corpus
             documents with words added) one by one: mean, median and 99th percentile

    python bench/corpus_speed.py                    # 20 M words
    python bench/corpus_speed.py --documents 100000 # a quick look at 2 M
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import machine, peak_mb, today, write_result  # noqa: E402

VOCABULARY = 200_000  # distinct words in the synthetic corpus
ZIPF_EXPONENT = 1.1
WORDS_PER_DOCUMENT = (10, 30)  # inclusive range
MARKS = (".", "?", "!", ":")
CHECKS = 1000  # novelty checks timed


def synthetic_corpus(documents: int, seed: int = 0) -> tuple[list[str], int]:
    """`documents` texts and their word count."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i:x}" for i in range(VOCABULARY)])
    p = 1 / np.arange(1, VOCABULARY + 1) ** ZIPF_EXPONENT
    lengths = rng.integers(WORDS_PER_DOCUMENT[0], WORDS_PER_DOCUMENT[1] + 1, size=documents)
    ids = rng.choice(VOCABULARY, size=int(lengths.sum()), p=p / p.sum())
    marks = rng.integers(0, len(MARKS), size=documents)
    texts, start = [], 0
    for length, mark in zip(lengths.tolist(), marks.tolist()):
        chunk = words[ids[start:start + length]]
        start += length
        texts.append(chunk[0].capitalize() + " " + " ".join(chunk[1:]) + MARKS[mark])
    return texts, int(lengths.sum())


def tokenize(texts: list[str], words: int) -> dict[str, float]:
    from models.tokenizer import Tokenizer

    start = time.perf_counter()
    tokenizer = Tokenizer.build(texts)
    built = time.perf_counter()
    stream = tokenizer.encode_corpus(texts)
    done = time.perf_counter()
    return {"build_seconds": round(built - start, 1), "encode_seconds": round(done - built, 1),
            "words_per_second": round(words / (done - start)), "tokens": int(len(stream)),
            "vocabulary": tokenizer.size, "peak_mb": peak_mb()}


def train(texts: list[str], minutes: float) -> dict[str, float]:
    from models.config import preset
    from models.trainer import train_model

    with tempfile.TemporaryDirectory() as directory:
        start = time.perf_counter()
        config = preset("small").replace(valid_fraction=0.01, sample_every=0)  # 1% held out: 200,000 words
        summary = train_model(texts, Path(directory) / "m", config, max_minutes=minutes)
        return {"seconds": round(time.perf_counter() - start, 1), "train_tokens": summary.train_tokens,
                "tokens_per_second": round(summary.epochs[-1].tokens_per_second), "peak_mb": peak_mb()}


def novelty(texts: list[str]) -> dict[str, float]:
    from bot.novelty import NoveltyIndex

    start = time.perf_counter()
    index = NoveltyIndex.build(texts)
    built = time.perf_counter() - start
    rng = np.random.default_rng(1)
    new, _ = synthetic_corpus(CHECKS // 2, seed=2)
    copies = [texts[i] + " and then some" for i in rng.integers(0, len(texts), CHECKS // 2)]
    times, rejected = [], 0
    for text in new + copies:
        t = time.perf_counter()
        rejected += index.check(text) is not None
        times.append(time.perf_counter() - t)
    ms = np.array(times) * 1000
    return {"build_seconds": round(built, 1), "checks": len(times), "rejected": rejected,
            "check_ms_mean": round(float(ms.mean()), 3), "check_ms_median": round(float(np.median(ms)), 3),
            "check_ms_p99": round(float(np.percentile(ms, 99)), 3), "peak_mb": peak_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--documents", type=int, default=1_000_000, help="1,000,000 documents are 20 M words")
    parser.add_argument("--train-minutes", type=float, default=2.0, help="training time before stopping")
    parser.add_argument("--json", type=Path, help="also write the result here")
    args = parser.parse_args()
    start = time.perf_counter()
    texts, words = synthetic_corpus(args.documents)
    result: dict[str, object] = {"machine": machine(), "date": today(), "documents": len(texts),
                                 "words": words, "generate_seconds": round(time.perf_counter() - start, 1),
                                 "corpus_peak_mb": peak_mb()}
    result["tokenize"] = tokenize(texts, words)
    result["train"] = train(texts, args.train_minutes)
    result["novelty"] = novelty(texts)
    write_result(result, args.json)


if __name__ == "__main__":
    main()
