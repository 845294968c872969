"""Penn Treebank: validation and test perplexity, wall time and peak memory of a preset, trained by nnbot's trainer.

The standard word-level setup (Mikolov's split, as in Zaremba et al.'s code): ptb.train/valid/test.txt, the
10,000-word vocabulary of the training file (its own `<unk>`), `<eos>` after every line, one running text (no
shuffling, the LSTM state carried from window to window). Perplexity is over every word and `<eos>` of the text.
nnbot's vocabulary adds two special tokens (`<pad>`, `<bos>`) that never occur; their share of probability is
what the model leaves them, counted against it.

    python bench/ptb.py --data ../shared/data/ptb --preset zaremba-small
    python bench/ptb.py --data ../shared/data/ptb --preset medium --max-minutes 60
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from bench.common import machine, peak_mb, today  # noqa: E402
from models.config import PRESETS, parameter_count  # noqa: E402
from models.tokenizer import EOS_ID, SPECIALS, UNK_ID, Tokenizer  # noqa: E402
from models.trainer import EpochResult, Trainer  # noqa: E402

PUBLISHED = {"zaremba-small": {"valid": 120.7, "test": 114.5}}  # Zaremba, Sutskever & Vinyals (2014), table 1
FILES = ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt")


def read_words(path: Path) -> list[list[str]]:
    return [line.split() for line in path.read_text(encoding="utf-8").splitlines()]


def ptb_tokenizer(train: list[list[str]]) -> Tokenizer:
    """The training file's words by frequency; its `<unk>` and the line ends map to nnbot's specials."""
    counts = Counter(w for line in train for w in line)
    words = [w for w, _ in counts.most_common() if w != "<unk>"]
    return Tokenizer(SPECIALS + tuple(" " + w for w in words))  # a leading space: decoded text reads as words


def encode(tokenizer: Tokenizer, lines: list[list[str]]) -> np.ndarray:
    ids: list[int] = []
    for line in lines:
        ids += [UNK_ID if w == "<unk>" else tokenizer.piece_id(" " + w) for w in line]
        ids.append(EOS_ID)
    return np.array(ids, dtype=np.int32)


class Printer:
    def on_start(self, **info: int) -> None:
        print(f"start: {info}", flush=True)

    def on_batch(self, **_: object) -> None:
        pass

    def on_epoch(self, r: EpochResult, *, best: bool) -> None:
        print(f"epoch {r.epoch:2d}: train ppl {r.train_perplexity:7.1f}  valid ppl {r.valid_perplexity:7.2f}  "
              f"lr {r.learning_rate:.4g}  {r.seconds:6.0f}s  {r.tokens_per_second:6.0f} tok/s"
              f"{'  best' if best else ''}{'  (partial)' if r.partial else ''}", flush=True)

    def on_samples(self, epoch: int, samples: dict[float, list[str]]) -> None:
        for t, texts in samples.items():
            print(f"  T={t}: {texts[0]}", flush=True)

    def on_stop(self, reason: str) -> None:
        print(f"stopped: {reason}", flush=True)


def _setting(item: str) -> tuple[str, object]:
    """'dropout=0.5' -> ('dropout', 0.5), typed like the ModelConfig field."""
    key, _, text = item.partition("=")
    default = getattr(PRESETS["small"], key)  # raises AttributeError for an unknown setting
    value: object = text.lower() in ("1", "true", "yes") if isinstance(default, bool) else type(default)(text)
    return key, value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True,
                        help="folder with ptb.train.txt, ptb.valid.txt, ptb.test.txt")
    parser.add_argument("--preset", default="zaremba-small", choices=sorted(PRESETS))
    parser.add_argument("--epochs", type=int, help="override the preset's epoch limit")
    parser.add_argument("--max-minutes", type=float, help="training time limit")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="change one setting of the preset, e.g. --set dropout=0.5 (repeatable)")
    parser.add_argument("--name", help="name of this run's outputs (default: the preset's)")
    parser.add_argument("--out", type=Path, default=Path("bench/out"), help="model directory and result JSON go here")
    args = parser.parse_args()
    missing = [f for f in FILES if not (args.data / f).is_file()]
    if missing:
        sys.exit(f"{args.data} lacks {', '.join(missing)}; pass --data with the Penn Treebank folder.")

    started = time.monotonic()
    train, valid, test = (read_words(args.data / f) for f in FILES)
    tokenizer = ptb_tokenizer(train)
    streams = [encode(tokenizer, lines) for lines in (train, valid, test)]
    changes = dict(_setting(item) for item in args.set)
    if args.epochs:
        changes["epochs"] = args.epochs
    config = PRESETS[args.preset].replace(shuffle_documents=False, sample_every=0, **changes)
    name = args.name or args.preset
    directory = args.out / f"ptb-{name}"
    if directory.exists():
        sys.exit(f"{directory} exists; remove it or pass another --name.")
    trainer = Trainer(config, tokenizer, streams[0], streams[1], directory, reporter=Printer())
    summary = trainer.run(max_minutes=args.max_minutes)
    trainer.restore_best()
    test_loss = trainer.evaluate(streams[2])
    best = summary.best
    result = {
        "preset": args.preset, "changes": changes, "machine": machine(), "date": today(),
        "backend": os.environ.get("KERAS_BACKEND", "tensorflow"),
        "vocabulary": tokenizer.size, "parameters": parameter_count(config, tokenizer.size),
        "tokens": {"train": int(len(streams[0])), "valid": int(len(streams[1])), "test": int(len(streams[2]))},
        "epochs": len(summary.epochs), "best_epoch": summary.best_epoch, "stop_reason": summary.stop_reason,
        "budget": summary.budget,
        "valid_perplexity": round(best.valid_perplexity, 2), "test_perplexity": round(math.exp(test_loss), 2),
        "published": None if set(changes) - {"epochs"} else PUBLISHED.get(args.preset),
        "training_minutes": round(summary.seconds / 60, 1),
        "wall_minutes": round((time.monotonic() - started) / 60, 1),
        "peak_memory_mb": peak_mb(),
        "history": [{"epoch": e.epoch, "train_ppl": round(e.train_perplexity, 2),
                     "valid_ppl": round(e.valid_perplexity, 2), "lr": e.learning_rate,
                     "seconds": round(e.seconds), "tokens_per_second": round(e.tokens_per_second)}
                    for e in summary.epochs],
        "config": config.to_dict(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"ptb-{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: v for k, v in result.items() if k not in ("history", "config")}, indent=2))


if __name__ == "__main__":
    main()
