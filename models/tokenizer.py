"""Word-level, reversible tokenizer: `detokenize(tokenize(text)) == text`, case and spacing included.

A piece is a word, a number, a URL, a #hashtag or @mention, or one punctuation mark or symbol, and it carries the
single space in front of it (" world", "!"). Runs of other whitespace are pieces of their own. As SentencePiece
does, a space is put in front of every document before splitting and taken off after joining, so the first word
of a title is the same piece (" The") as the same word anywhere else. Joining the pieces gives back the text
exactly; no lowercasing, no spaced-out punctuation to fix by hand before posting.

Two options, both on for the models `bot train` makes (and recorded in tokenizer.json, so a model decodes as it
was built):

- **Case markers** (fastai's `xxmaj`/`xxup`): " Google" encodes as `<maj>` " google" and " NASA" as `<up>` " nasa",
  so a word shares one embedding and one count however it is cased. Only a piece that decodes back to exactly
  itself gets a marker; mixed case (" iPhone") stays one piece.
- **Rare-word classes**: a piece outside the vocabulary encodes as the `<unk>` of its shape (word, number, word
  with digits, link or tag, anything else; each with or without its leading space) rather than one `<unk>`. The
  tokenizer keeps the training text's rare pieces of each class with their counts, and the sampler fills a class
  it draws with one of them, by frequency: where the model wants a name it writes a name, not some frequent word.

Ids: 0..3 are the special tokens, then the markers and classes when used, then pieces by falling frequency (ties:
first seen). The sampler never emits `<pad>`, `<unk>` or `<bos>`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np

from models.errors import ArtifactError

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIALS = (PAD, UNK, BOS, EOS)
PAD_ID, UNK_ID, BOS_ID, EOS_ID = range(len(SPECIALS))

DUMMY_PREFIX = " "  # put before each document so a first word is the same piece as a later one

_URL = r"https?://[^\s]+?(?=[.,;:!?)\]}'\"]*(?:\s|$))"
_TAG = r"[#@]\w+"
_WORD = r"\w+(?:['’]\w+)*"
_MARK = r"[^\w\s]"
# One optional leading space per piece; whitespace that is not a single space before a piece stands alone
# (GPT-2's rule: "\s+(?!\S)" leaves the last space of a run to the piece that follows it).
PIECE_PATTERN = re.compile(rf" ?(?:{_URL}|{_TAG}|{_WORD}|{_MARK})|\s+(?!\S)|\s+")

DEFAULT_MAX_VOCAB = 20_000  # pieces, specials included
DEFAULT_MIN_COUNT = 2  # pieces seen once in a small corpus teach little; they become <unk>


def split(text: str) -> list[str]:
    """The pieces of one document, dummy prefix included; `join(split(t)) == t` for every string."""
    return PIECE_PATTERN.findall(DUMMY_PREFIX + text)


def join(pieces: Iterable[str]) -> str:
    """Undo `split`."""
    text = "".join(pieces)
    return text[len(DUMMY_PREFIX):] if text.startswith(DUMMY_PREFIX) else text


def piece_count(text: str) -> int:
    """The pieces a reader sees in `text`: its words, numbers, links, tags and marks. Not the whitespace between
    them, and not the case markers a cased tokenizer encodes before a capitalised word (`<maj>`, `<up>`), which
    count as tokens of a sample but are no part of its text."""
    return sum(1 for piece in split(text) if not piece.isspace())


MAJ, UP = "<maj>", "<up>"  # the next piece's first letter is upper case / all of its letters are
MARKERS = (MAJ, UP)
# Shapes of rare pieces, each with and without the leading space; "<unk:word>" is a word after a space.
RARE_SHAPES = ("word", "number", "alnum", "link", "other")
RARE_CLASSES = tuple(f"<unk:{space}{shape}>" for shape in RARE_SHAPES for space in ("", "^"))  # "^": no space
WORD_CLASSES = tuple(f"<unk:{space}{shape}>" for shape in ("word", "alnum") for space in ("", "^"))  # write words
MAX_RARE_KEPT = 50_000  # rare pieces kept for filling classes, the most frequent first
_NUMBER = re.compile(r"\d+")
_ALNUM = re.compile(r"\w+(?:['’]\w+)*")
_LINK = re.compile(r"https?://|[#@]\w")


def rare_class(piece: str) -> str:
    """The `<unk:…>` class of a piece outside the vocabulary."""
    core = piece.removeprefix(" ")
    if _LINK.match(core):
        shape = "link"
    elif _NUMBER.fullmatch(core):
        shape = "number"
    elif _ALNUM.fullmatch(core):
        shape = "alnum" if any(ch.isdigit() for ch in core) else "word"
    else:
        shape = "other"
    return f"<unk:{'' if piece.startswith(' ') else '^'}{shape}>"


def _capitalize(piece: str) -> str:
    """First non-space character upper-cased, the rest as it is."""
    core = piece.lstrip(" ")
    at = len(piece) - len(core)
    return piece[:at] + core[:1].upper() + core[1:] if core else piece


def fold_case(piece: str) -> tuple[str | None, str]:
    """(marker or None, piece lowercased), only when applying the marker gives back exactly `piece`."""
    lower = piece.lower()
    if lower == piece:
        return None, piece
    if _capitalize(lower) == piece:
        return MAJ, lower
    if lower.upper() == piece:
        return UP, lower
    return None, piece  # mixed case ("iPhone"), or a letter whose case does not round-trip


# Which casings of a word the training text used, as bits of a mask (`Tokenizer.forms`).
LOWER, CAPITAL, UPPER = 1, 2, 4  # "ceo", "Ceo", "CEO" (a piece with no marker counts as LOWER)
USUAL = LOWER | CAPITAL  # what `forms` leaves out: a word seen lower case and capitalised, never shouted
FORM_BITS = {None: LOWER, MAJ: CAPITAL, UP: UPPER}
FIRST_UPPER_SHARE = 0.9  # a corpus whose documents start with a capital this often gets samples that do too


def true_marker(marker: str | None, mask: int) -> str | None:
    """The marker to write a word with, given the marker drawn and the casings seen (`mask`): the one drawn if the
    text used it; else the casing the text did use, nearest to it (a word never shouted is capitalised, an acronym
    stays an acronym, a name keeps its capital)."""
    if not mask or mask & FORM_BITS[marker]:
        return marker
    preference = {None: (CAPITAL, UPPER), MAJ: (UPPER, LOWER), UP: (CAPITAL, LOWER)}[marker]
    chosen = next(bit for bit in preference if mask & bit)
    return {LOWER: None, CAPITAL: MAJ, UPPER: UP}[chosen]


def apply_case(marker: str | None, piece: str) -> str:
    if marker == MAJ:
        return _capitalize(piece)
    if marker == UP:
        return piece.upper()
    return piece


@dataclass(frozen=True)
class Tokenizer:
    """A fixed vocabulary of pieces; encodes documents to ids and decodes ids to text."""

    pieces: tuple[str, ...]  # index = id; starts with SPECIALS (then MARKERS if cased, then RARE_CLASSES if used)
    cased: bool = False  # case markers: pieces are stored lowercased where a marker gives back the text
    rare: dict[str, tuple[tuple[str, int], ...]] | None = None  # class -> (piece, count) of rare training pieces
    # stored piece -> the casings the training text used (LOWER | CAPITAL | UPPER), for pieces seen otherwise than
    # USUAL; a piece left out was seen USUAL-ly (or never). None: not recorded (tokenizers made before it)
    forms: dict[str, int] | None = None
    first_upper: float | None = None  # share of training documents that start with an upper-case letter
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)
    _marker_ids: dict[int, str] = field(init=False, repr=False, compare=False)
    _rare_ids: dict[int, str] = field(init=False, repr=False, compare=False)
    _rare_cumulative: dict[int, np.ndarray] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        head = SPECIALS + (MARKERS if self.cased else ()) + (RARE_CLASSES if self.rare is not None else ())
        if self.pieces[: len(head)] != head:
            raise ArtifactError("The tokenizer's vocabulary does not start with the special tokens; rebuild the model.")
        ids = {p: i for i, p in enumerate(self.pieces)}
        object.__setattr__(self, "_ids", ids)
        object.__setattr__(self, "_marker_ids", {ids[m]: m for m in MARKERS} if self.cased else {})
        object.__setattr__(self, "_rare_ids", {ids[c]: c for c in RARE_CLASSES} if self.rare is not None else {})
        object.__setattr__(self, "_rare_cumulative", {  # running sums of counts, to draw a filler by binary search
            token: np.cumsum([c for _, c in (self.rare or {}).get(name, ())], dtype=np.float64)
            for token, name in self._rare_ids.items()})

    @classmethod
    def build(
        cls,
        documents: Iterable[str],
        *,
        max_vocab: int = DEFAULT_MAX_VOCAB,
        min_count: int = DEFAULT_MIN_COUNT,
        case_markers: bool = False,
        rare_classes: bool = False,
        base: Tokenizer | None = None,
    ) -> Tokenizer:
        """Count the pieces of the documents and keep the most frequent seen `min_count` times, up to `max_vocab`
        ids in all. With `base`, the vocabulary starts with the base's, id for id (its options win), and the
        documents' new pieces follow: a model fine-tuned from the base keeps every row it learned."""
        if base is not None:
            case_markers, rare_classes = base.cased, base.rare is not None
        head = SPECIALS + (MARKERS if case_markers else ()) + (RARE_CLASSES if rare_classes else ())
        counts: Counter[str] = Counter()
        masks: dict[str, int] = {}
        documents_seen = upper_first = 0
        for doc in documents:
            documents_seen += 1
            upper_first += doc[:1].isupper()
            for piece in split(doc):
                marker, folded = fold_case(piece) if case_markers else (None, piece)
                counts[folded] += 1
                masks[folded] = masks.get(folded, 0) | FORM_BITS[marker]
        # Counter.most_common keeps first-seen order among equal counts, so the vocabulary is deterministic.
        known = set(base.pieces) if base is not None else set(head)
        fresh = [(p, c) for p, c in counts.most_common() if p not in known]
        room = max(0, max_vocab - (len(base.pieces) if base is not None else len(head)))
        kept = [p for p, c in fresh[:room] if c >= min_count]
        pieces = (base.pieces if base is not None else head) + tuple(kept)
        rare = None
        if rare_classes:
            by_class: dict[str, list[tuple[str, int]]] = {c: [] for c in RARE_CLASSES}
            kept_set = set(kept)
            for piece, count in [(p, c) for p, c in fresh if p not in kept_set][:MAX_RARE_KEPT]:
                by_class[rare_class(piece)].append((piece, count))
            if base is not None and base.rare is not None:  # the base's rare words stay fillers unless now kept
                for name, entries in base.rare.items():
                    seen = {p for p, _ in by_class[name]}
                    by_class[name] += [(p, c) for p, c in entries if p not in kept_set and p not in seen]
            rare = {name: tuple(entries) for name, entries in by_class.items()}
        forms = None
        if case_markers:
            if base is not None and base.forms is not None:  # the casings either text used
                known = set(base.pieces) | {p for entries in (base.rare or {}).values() for p, _ in entries}
                for piece in known:
                    masks[piece] = masks.get(piece, 0) | base.forms.get(piece, USUAL)
            forms = {p: m for p, m in masks.items() if m != USUAL and m != LOWER}
        first = round(upper_first / documents_seen, 4) if documents_seen else None
        return cls(pieces, cased=case_markers, rare=rare, forms=forms, first_upper=first)

    @property
    def size(self) -> int:
        return len(self.pieces)

    def piece_id(self, piece: str) -> int:
        """The id of one stored piece (lowercased, if cased), or the id that stands for it when it is not stored."""
        found = self._ids.get(piece)
        if found is not None and found >= len(SPECIALS):
            return found
        return self._ids[rare_class(piece)] if self.rare is not None else UNK_ID

    def _piece_ids(self, piece: str) -> list[int]:
        if self.cased:
            marker, piece = fold_case(piece)
            if marker is not None:
                return [self._ids[marker], self.piece_id(piece)]
        return [self.piece_id(piece)]

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = [i for p in split(text) for i in self._piece_ids(p)]
        return ([BOS_ID] if bos else []) + ids + ([EOS_ID] if eos else [])

    def is_rare_class(self, token: int) -> bool:
        return token in self._rare_ids

    def fill_count(self, token: int) -> int:
        """How many rare pieces can fill the class `token`."""
        return len(self._rare_cumulative.get(token, ()))

    def fill(self, token: int, rng: np.random.Generator) -> str:
        """A rare training piece of the class `token` stands for, drawn by frequency ("" if the class is empty)."""
        cumulative = self._rare_cumulative.get(token)
        if cumulative is None or not len(cumulative):
            return ""
        at = int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
        return self.rare[self._rare_ids[token]][min(at, len(cumulative) - 1)][0]  # type: ignore[index]

    def decode_pieces(self, ids: Iterable[int], rng: np.random.Generator | None = None, *,
                      true_case: bool = False) -> str:
        """The ids' text, leading space kept: markers applied, rare classes filled from `rng` (left out without),
        special tokens left out. With `true_case` (what the sampler wrote, not text that was encoded), each word is
        written in a casing the training text used for it (`true_marker`), where the tokenizer recorded them."""
        out: list[str] = []
        marker: str | None = None
        for i in ids:
            if i in self._marker_ids:
                marker = self._marker_ids[i]
                continue
            if i in self._rare_ids:
                piece = self.fill(i, rng) if rng is not None else ""
            elif i >= len(SPECIALS):
                piece = self.pieces[i]
            else:
                piece = ""
            if true_case and self.forms is not None and piece.strip():
                marker = true_marker(marker, self.forms.get(piece, USUAL))
            out.append(apply_case(marker, piece))
            marker = None
        return "".join(out)

    def decode(self, ids: Iterable[int], rng: np.random.Generator | None = None) -> str:
        """Text of the ids, special tokens left out; rare classes filled from `rng`, or left out without one."""
        return join([self.decode_pieces(ids, rng)])

    def encode_corpus(self, documents: Iterable[str]) -> np.ndarray:
        """All documents as one int32 stream `<bos> d1 <eos> <bos> d2 <eos> …`, without per-word Python lists kept."""
        chunks: list[np.ndarray] = []
        ids = self._ids
        for doc in documents:
            if self.cased or self.rare is not None:
                encoded = self.encode(doc)
            else:
                encoded = [ids.get(p, UNK_ID) for p in split(doc)]
            arr = np.empty(len(encoded) + 2, dtype=np.int32)
            arr[0], arr[-1] = BOS_ID, EOS_ID
            arr[1:-1] = encoded
            chunks.append(arr)
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)

    def unknown_pieces(self, text: str) -> list[str]:
        """The pieces of `text` outside the vocabulary (as the text has them, case included)."""
        stored = [(p, self.piece_id(fold_case(p)[1] if self.cased else p)) for p in split(text)]
        return [p for p, i in stored if i == UNK_ID or self.is_rare_class(i)]

    def to_json(self) -> str:
        data: dict[str, object] = {"pieces": list(self.pieces)}
        if self.cased:
            data["cased"] = True
        if self.rare is not None:
            data["rare"] = {name: [list(e) for e in entries] for name, entries in self.rare.items()}
        if self.forms is not None:
            data["forms"] = self.forms
        if self.first_upper is not None:
            data["first_upper"] = self.first_upper
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        try:
            data = json.loads(text)
            pieces = tuple(data["pieces"])
            rare = data.get("rare")
            if rare is not None:
                rare = {str(name): tuple((str(p), int(c)) for p, c in entries) for name, entries in rare.items()}
            forms = data.get("forms")
            if forms is not None:
                forms = {str(p): int(m) for p, m in forms.items()}
            first = data.get("first_upper")
            first = None if first is None else float(first)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ArtifactError(f"The tokenizer file is damaged ({exc}); retrain the model.") from exc
        return cls(pieces, cased=bool(data.get("cased", False)), rare=rare, forms=forms, first_upper=first)
