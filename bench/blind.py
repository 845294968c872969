"""A blind reader's verdict: real and generated texts shuffled into one numbered sheet, the key kept apart (issue 28).

    python bench/blind.py make CORPUS_FILE --system nnbot=samples.txt [--system other=more.txt] --out DIR
    # give DIR/sheet.txt, and nothing else, to a reader; they write DIR/answers.txt, a line per item:
    #     12 machine 2        (the item's number, person or machine, plausibility 1-5)
    python bench/blind.py score DIR [--json RESULT]

`make` always mixes in real texts (held-out documents of CORPUS_FILE, the split bench/quality.py uses, never trained
on) and markovify (state size 2, on the training split: /r/SubredditSimulator's method), so every sheet carries its
own floor and ceiling. Each system gives --n texts (default 30), drawn with --seed from its file; the sheet is
shuffled with the same seed. Nothing on the sheet says where a line came from: the key (`key.json`) and the
instructions for whoever runs the test stay beside it, and only `sheet.txt` goes to the reader.

`score` reports per system: how many lines the reader labelled machine (flagged), the mean plausibility, and for
the generated systems how that compares with the real texts on the same sheet.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import quality
from bench.common import today, write_result

DEFAULT_N = 30  # texts per system on a sheet
REAL, MARKOV = "real", "markovify"
SHEET, KEY, ANSWERS = "sheet.txt", "key.json", "answers.txt"
INSTRUCTIONS = ("Each numbered line below is a post title (or a post). Some were written by people, some by "
                "programs. For every line write, on a line of its own: its number, 'person' or 'machine', and how "
                "plausible it is as a real post from 1 (nonsense) to 5 (indistinguishable from a real one), e.g. "
                "'12 machine 2'.")
_ANSWER = re.compile(r"^\s*(\d+)[\s.:,)-]+(person|machine|human|bot)\b[\s,;:-]*([1-5])\b", re.IGNORECASE)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def make(args: argparse.Namespace) -> None:
    texts = quality.read_corpus(args.corpus, args.format)
    train, held_out = quality.split(texts)
    rng = random.Random(args.seed)
    systems: dict[str, list[str]] = {REAL: held_out}
    if not args.no_markovify:
        systems[MARKOV] = _markov(train, args.n)
    for given in args.system:
        name, _, path = given.partition("=")
        if not path or name in systems:
            raise SystemExit(f"--system wants NAME=FILE with a new name, not {given!r}.")
        systems[name] = [line for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    items = []
    for name, pool in systems.items():
        pool = list(dict.fromkeys(_one_line(t) for t in pool if t.strip()))  # distinct lines only
        if len(pool) < args.n:
            raise SystemExit(f"{name} has {len(pool)} distinct texts; the sheet needs {args.n} of each.")
        items += [(name, text) for text in rng.sample(pool, args.n)]
    rng.shuffle(items)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    (out / SHEET).write_text(INSTRUCTIONS + "\n\n" + "".join(f"{i}. {t}\n" for i, (_, t) in enumerate(items, 1)),
                             encoding="utf-8")
    (out / KEY).write_text(json.dumps({"corpus": str(args.corpus), "seed": args.seed, "n": args.n, "made": today(),
                                       "systems": list(systems), "items": [s for s, _ in items]}, indent=1),
                           encoding="utf-8")
    print(f"{len(items)} lines from {', '.join(systems)} in {out / SHEET}; the key is {out / KEY}. Give the reader "
          f"the sheet alone; their answers go in {out / ANSWERS}.")


def _markov(train: list[str], n: int) -> list[str]:
    import markovify

    chain = markovify.NewlineText("\n".join(train), state_size=quality.MARKOV_STATE_SIZE)
    made: list[str] = []
    for _ in range(n * quality.MARKOV_MAX_CALLS_PER_SENTENCE):
        sentence = chain.make_sentence(tries=quality.MARKOV_TRIES)
        if sentence and sentence not in made:
            made.append(sentence)
        if len(made) >= 2 * n:  # more than needed, so the draw on the sheet is a draw
            break
    return made


def read_answers(path: Path, count: int) -> dict[int, tuple[bool, int]]:
    """{item number: (labelled machine, plausibility)}; every item must be answered once."""
    answers: dict[int, tuple[bool, int]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        match = _ANSWER.match(line)
        if not match:
            if line.strip():
                raise SystemExit(f"{path}:{number}: {line!r} is not 'NUMBER person|machine 1-5'.")
            continue
        item = int(match[1])
        if not 1 <= item <= count or item in answers:
            raise SystemExit(f"{path}:{number}: item {item} is not on the sheet or is answered twice.")
        answers[item] = (match[2].lower() in ("machine", "bot"), int(match[3]))
    missing = sorted(set(range(1, count + 1)) - set(answers))
    if missing:
        raise SystemExit(f"{path} leaves {len(missing)} items unanswered (first: {missing[:5]}).")
    return answers


def score(args: argparse.Namespace) -> None:
    key = json.loads((args.dir / KEY).read_text(encoding="utf-8"))
    items: list[str] = key["items"]
    answers = read_answers(args.dir / ANSWERS, len(items))
    result: dict[str, object] = {"corpus": key["corpus"], "made": key["made"], "scored": today(), "systems": {}}
    for system in key["systems"]:
        mine = [answers[i] for i, s in enumerate(items, 1) if s == system]
        result["systems"][system] = {  # type: ignore[index]
            "n": len(mine), "flagged_machine": round(sum(m for m, _ in mine) / len(mine), 3),
            "plausibility": round(sum(p for _, p in mine) / len(mine), 2)}
    write_result(result, args.json)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    m = sub.add_parser("make", help="write a shuffled sheet and its key")
    m.add_argument("corpus", type=Path, help="the corpus file: its held-out split gives the real texts")
    m.add_argument("--format", default="auto")
    m.add_argument("--system", action="append", default=[], help="NAME=FILE of generated texts, a line each")
    m.add_argument("--n", type=int, default=DEFAULT_N)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--no-markovify", action="store_true", help="leave the markovify reference out (not advised)")
    m.add_argument("--out", type=Path, required=True)
    s = sub.add_parser("score", help="score a reader's answers against the key")
    s.add_argument("dir", type=Path)
    s.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    if args.command == "make":
        make(args)
    else:
        score(args)


if __name__ == "__main__":
    main()
