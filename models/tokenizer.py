"""Word-level, reversible tokenizer: `detokenize(tokenize(text)) == text`, case and spacing included.

A piece is a word, a number, a URL, a #hashtag or @mention, or one punctuation mark or symbol, and it carries the
single space in front of it (" world", "!"). Runs of other whitespace are pieces of their own. As SentencePiece
does, a space is put in front of every document before splitting and taken off after joining, so the first word
of a title is the same piece (" The") as the same word anywhere else. Joining the pieces gives back the text
exactly; no lowercasing, no spaced-out punctuation to fix by hand before posting.

Ids: 0..3 are the special tokens, then pieces by falling frequency (ties: first seen). Pieces outside the
vocabulary encode as `<unk>`, which the sampler never emits.
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


@dataclass(frozen=True)
class Tokenizer:
    """A fixed vocabulary of pieces; encodes documents to ids and decodes ids to text."""

    pieces: tuple[str, ...]  # index = id; starts with SPECIALS
    _ids: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.pieces[: len(SPECIALS)] != SPECIALS:
            raise ArtifactError("The tokenizer's vocabulary does not start with the special tokens; rebuild the model.")
        object.__setattr__(self, "_ids", {p: i for i, p in enumerate(self.pieces)})

    @classmethod
    def build(
        cls,
        documents: Iterable[str],
        *,
        max_vocab: int = DEFAULT_MAX_VOCAB,
        min_count: int = DEFAULT_MIN_COUNT,
    ) -> Tokenizer:
        """Count the pieces of the documents and keep the `max_vocab - 4` most frequent seen `min_count` times."""
        counts: Counter[str] = Counter()
        for doc in documents:
            counts.update(split(doc))
        # Counter.most_common keeps first-seen order among equal counts, so the vocabulary is deterministic.
        kept = [p for p, c in counts.most_common(max_vocab - len(SPECIALS)) if c >= min_count]
        return cls(SPECIALS + tuple(kept))

    @property
    def size(self) -> int:
        return len(self.pieces)

    def piece_id(self, piece: str) -> int:
        return self._ids.get(piece, UNK_ID)

    def encode(self, text: str, *, bos: bool = False, eos: bool = False) -> list[int]:
        ids = [self.piece_id(p) for p in split(text)]
        return ([BOS_ID] if bos else []) + ids + ([EOS_ID] if eos else [])

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids, special tokens left out."""
        return join(self.pieces[i] for i in ids if i >= len(SPECIALS))

    def encode_corpus(self, documents: Iterable[str]) -> np.ndarray:
        """All documents as one int32 stream `<bos> d1 <eos> <bos> d2 <eos> …`, without per-word Python lists kept."""
        chunks: list[np.ndarray] = []
        ids = self._ids
        for doc in documents:
            pieces = split(doc)
            arr = np.empty(len(pieces) + 2, dtype=np.int32)
            arr[0], arr[-1] = BOS_ID, EOS_ID
            arr[1:-1] = [ids.get(p, UNK_ID) for p in pieces]
            chunks.append(arr)
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int32)

    def unknown_pieces(self, text: str) -> list[str]:
        return [p for p in split(text) if p not in self._ids]

    def to_json(self) -> str:
        return json.dumps({"pieces": list(self.pieces)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> Tokenizer:
        try:
            pieces = json.loads(text)["pieces"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ArtifactError(f"The tokenizer file is damaged ({exc}); retrain the model.") from exc
        return cls(tuple(pieces))

