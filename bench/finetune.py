"""Does a small corpus borrow fluency from a big one? A model trained from scratch on a few hundred titles against
the same corpus fine-tuned (`bot train --init-from`) from a base model, at equal training time, on issue 10's
quality measures (bench/quality.py).

1. The target corpus file is split as bench/quality.py splits it (20 % held out, seed 0). TARGET_DOCUMENTS of its
   training documents (numpy default_rng(TARGET_SEED)) are the small corpus; the rest of its training documents
   and every document of the --base-extra files make the base corpus. No held-out document reaches either model.
2. The base trains for --base-minutes (preset auto); then the small corpus trains for --minutes twice: from
   scratch, and from the base. Both through `bot.training.train`, the code `bot train` runs.
3. Each model: held-out perplexity and the sampled text's measures, as bench/quality.py reports them.

    python bench/finetune.py ../shared/data/titles/reddit_apple_android_2000.txt \
        --base-extra bot/data/hacker_news_2000.txt --json bench/results/finetune.json
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import quality
from bench.common import machine, peak_mb, today, write_result

TARGET_DOCUMENTS = 300  # the small corpus: this many of the target file's training documents
TARGET_SEED = 1  # numpy default_rng seed choosing them
DEFAULT_BASE_MINUTES = 6.0
DEFAULT_MINUTES = 2.0  # training time of each small-corpus model
BASE, SMALL = "base", "small"  # corpus names


def _import(store, corpus: str, texts: list[str]) -> None:
    from bot.corpus import add_documents
    from scrapers.documents import Document
    from scrapers.files import FILE_SOURCE

    with store.session() as session:
        add_documents(session, corpus, (Document(source=FILE_SOURCE, external_id=f"line:{i}", text=t)
                                        for i, t in enumerate(texts)))


def _measure(store, settings, name: str, summary, seconds: float, held_out: list[str], index, n: int,
             sampling) -> dict[str, object]:
    from models.artifact import load_model

    artifact = load_model(settings.model_dir(name))
    return {"model": name, "train_seconds": round(seconds, 1), "epochs": len(summary.epochs),
            "stop_reason": summary.stop_reason, "vocab_size": summary.vocab_size, "parameters": summary.parameters,
            "held_out": quality.held_out_perplexity(artifact, held_out),
            "rows": [quality.lstm_row(store, settings, held_out, index, n=n, sampling=s, model=name)
                     for s in sampling]}


def run(args: argparse.Namespace) -> dict[str, object]:
    from bot.config import load_settings
    from bot.novelty import NoveltyIndex
    from bot.store import open_store
    from bot.training import train

    texts = quality.read_corpus(args.target, args.format)
    train_texts, held_out = quality.split(texts)
    chosen = set(np.random.default_rng(TARGET_SEED).permutation(len(train_texts))[:TARGET_DOCUMENTS].tolist())
    small = [t for i, t in enumerate(train_texts) if i in chosen]
    base = [t for i, t in enumerate(train_texts) if i not in chosen]
    for extra in args.base_extra:
        base += quality.read_corpus(extra, args.format)
    n = args.n or max(quality.MIN_SAMPLES, min(len(held_out), quality.MAX_SAMPLES))
    index = NoveltyIndex.build(texts + base)  # copies of anything either model saw, or of the held-out text
    home = Path(tempfile.mkdtemp(prefix="nnbot-finetune-"))
    os.environ["BOT_HOME"] = str(home)
    models: dict[str, object] = {}
    try:
        store, settings = open_store(f"sqlite:///{home / 'bot.db'}"), load_settings()
        _import(store, BASE, base)
        _import(store, SMALL, small)
        runs = [("base", BASE, args.base_minutes, None), ("scratch", SMALL, args.minutes, None),
                ("fine-tuned", SMALL, args.minutes, "base")]
        for name, corpus, minutes, init_from in runs:
            began = time.perf_counter()
            summary = train(store, settings, corpus, name, args.preset, max_minutes=minutes, init_from=init_from)
            seconds = time.perf_counter() - began
            models[name] = _measure(store, settings, name, summary, seconds, held_out, index, n, args.sampling)
            print(table(name, models[name]), file=sys.stderr)
        store.close()
    finally:
        shutil.rmtree(home, ignore_errors=True)
    return {"target": str(args.target), "base_extra": [str(p) for p in args.base_extra],
            "small_documents": len(small), "base_documents": len(base), "held_out_documents": len(held_out),
            "minutes": args.minutes, "base_minutes": args.base_minutes, "models": models}


def table(name: str, result: dict[str, object]) -> str:
    h = result["held_out"]
    lines = [(f"{name}: {result['train_seconds']} s, {result['epochs']} epoch(s) ({result['stop_reason']}), "
              f"vocabulary {result['vocab_size']}; held-out perplexity {h['perplexity']} "
              f"({h['perplexity_classes_free']} without fills), outside the vocabulary {h['unk_share']:.1%}")]
    for row in result["rows"]:
        d = row["discriminator"]
        lines.append(f"  {row['generator']:<18} accept {row['acceptance']:.1%}, copies {row['copies']}, "
                     f"dist-2 {row['distinct_2']:.3f}, words {row['mean_words']}, caps {row['capital_share']:.0%}, "
                     f"disc {d.get('accuracy')}, flat {d.get('accuracy_flat')}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=Path, help="the corpus file the small corpus and the held-out set come from")
    parser.add_argument("--base-extra", type=Path, action="append", default=[],
                        help="more corpus files for the base model (repeat)")
    parser.add_argument("--format", default="auto")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES)
    parser.add_argument("--base-minutes", type=float, default=DEFAULT_BASE_MINUTES)
    parser.add_argument("--preset", default="auto")
    parser.add_argument("--n", type=int, default=None)
    parser.add_argument("--sampling", action="append", default=[], metavar="T[:TOP_P[:TOP_K]]")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from models.sampler import SamplingSettings

    args.sampling = [quality._sampling(s, SamplingSettings) for s in args.sampling or ["1.0:0.95"]]
    result = run(args)
    write_result({"benchmark": "finetune", "date": today(), "machine": machine(), "peak_mb": peak_mb(), **result},
                 args.json)


if __name__ == "__main__":
    main()
