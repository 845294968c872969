"""The novelty index: tells whether a generated text copies the training corpus (markovify's rule).

A candidate of n words is rejected when, after normalising case and whitespace, it equals a corpus document,
or when it shares more than ``overlap_limit(n) = min(15, round(0.7 * n))`` consecutive words with one corpus
document. Words are casefolded and punctuation is ignored ("Don't" matches "don't"; "Hello, world" shares
2 words with "hello world").

How it answers in well under a millisecond on a 20-million-word corpus, without a Python object per word:

* Build, once per corpus. Words become integer codes through a dict vocabulary; all documents are
  concatenated into one array ``tokens`` of big-endian uint32 codes, with SEPARATOR after each document (no
  word has that code, so no shared run can cross a document boundary) and SEARCH_DEPTH separators of padding
  at the end. Big-endian, so comparing the bytes of two windows orders them like their code tuples.
  ``suffixes`` lists every position before the padding (separators too: numpy's sorter must cover the whole
  searched array), sorted by the SEARCH_DEPTH tokens that start there. The sort is prefix doubling in numpy:
  one argsort of the first few codes packed into an int64, then rounds ordering by (rank[i], rank[i + w])
  that re-sort only the positions still tied, which after a few words are few. Each document's normalised
  text is hashed (64-bit blake2b) into a sorted uint64 array for the equality rule.
* Check, per candidate. The window of SEARCH_DEPTH words from every start of the candidate (padded with
  QUERY_PAD, below every code) is binary-searched among the corpus windows in one ``np.searchsorted`` call:
  the corpus windows are a zero-copy, overlapping bytes view of ``tokens`` and ``suffixes`` is the sorter, so
  the search runs in C, about log2(corpus words) byte comparisons per start. In a sorted list the entry
  sharing the longest prefix with a query sits next to the query's insertion point, so comparing with those
  two neighbours gives the longest shared run from each start; the longest over all starts is the answer.
  It is exact up to SEARCH_DEPTH words, more than MAX_OVERLAP_WORDS, so every decision is exact.

Memory: 12 bytes per corpus word once built (4 for tokens, 8 for suffixes: numpy's sorter must be intp, or it
is copied on every search), plus the vocabulary; the build peaks at about 60 bytes per word (int64 ranks and
sort keys). ``save`` writes an .npz file and ``load`` reads it back, so a big corpus's index is built once.
"""

import hashlib
import os
import re
import zipfile
from array import array
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from bot.errors import BotError

MAX_OVERLAP_WORDS = 15  # words a candidate may share in a row with the corpus, at most (markovify's cap)
MAX_OVERLAP_RATIO = 0.7  # of the candidate's own words: the limit for short candidates (markovify's ratio)
SEARCH_DEPTH = 16  # words compared per position: above MAX_OVERLAP_WORDS, so every decision is exact

# Token codes. Codes, not ids, so that the specials sort below every word and a query's padding is zero bytes.
QUERY_PAD = 0  # fills query windows that run past the candidate's end; numpy pads short bytes with zeros too
UNKNOWN = 1  # a candidate word the corpus never uses: it occurs nowhere, so it matches nothing
SEPARATOR = 2  # after each document and in the end padding: no word has it, so runs stop at document ends
FIRST_WORD = 3  # code of the first vocabulary word; later words count up from it in first-seen order

TOKEN_DTYPE = np.dtype(">u4")  # big-endian: a window's bytes then sort like its codes
WINDOW_DTYPE = np.dtype(f"S{SEARCH_DEPTH * TOKEN_DTYPE.itemsize}")  # a window as bytes, compared like memcmp

WORD_PATTERN = re.compile(r"\w+(?:['’]\w+)*")  # a word, with inner apostrophes ("don't", "l’eau")
HASH_BYTES = 8  # of a document's equality hash: 64 bits, collisions negligible for millions of documents
FORMAT_VERSION = 1  # of the saved file; bump when its arrays change


def normalize(text: str) -> str:
    """The text as the equality rule compares it: casefolded, whitespace runs made one space, ends trimmed."""
    return " ".join(text.casefold().split())


def split_words(text: str) -> list[str]:
    """The text's words, casefolded, punctuation dropped: what overlap runs and word counts are made of."""
    return WORD_PATTERN.findall(text.casefold())


def overlap_limit(n_words: int) -> int:
    """Most consecutive words a candidate of `n_words` words may share with the corpus (Python's `round`)."""
    return min(MAX_OVERLAP_WORDS, round(MAX_OVERLAP_RATIO * n_words))


def _text_hash(normalized: str) -> int:
    """A stable 64-bit hash of a normalised text (Python's `hash` changes per process: it can't be saved)."""
    return int.from_bytes(hashlib.blake2b(normalized.encode(), digest_size=HASH_BYTES).digest(), "little")


class _Vocabulary(dict[str, int]):
    """Word -> code, where looking up an unseen word gives it the next code (no Python call per known one)."""

    def __missing__(self, word: str) -> int:
        code = self[word] = FIRST_WORD + len(self)
        return code


class NoveltyIndex:
    """An index of a corpus that answers whether a candidate text copies it; build once, check many times."""

    def __init__(
        self,
        *,
        vocabulary: dict[str, int],
        tokens: np.ndarray,
        suffixes: np.ndarray,
        document_hashes: np.ndarray,
        documents: int,
    ) -> None:
        self._vocabulary = vocabulary  # word -> code, FIRST_WORD upwards in first-seen order
        self._tokens = tokens  # (words + documents + SEARCH_DEPTH,) TOKEN_DTYPE codes
        self._suffixes = suffixes  # (words + documents,) intp: positions sorted by the window from each
        self._document_hashes = document_hashes  # (non-empty documents,) uint64, sorted
        # (words + documents,) the window from each position before the padding, as bytes: a view, no copy
        self._windows = np.ndarray(
            shape=(tokens.size - SEARCH_DEPTH,),
            dtype=WINDOW_DTYPE,
            buffer=tokens,
            strides=(TOKEN_DTYPE.itemsize,),
        )
        self.documents = documents
        self.words = int(suffixes.size) - documents

    @classmethod
    def build(cls, texts: Iterable[str]) -> "NoveltyIndex":
        """Index the corpus `texts`, one document each."""
        vocabulary = _Vocabulary()
        tokens = array("I")  # 4 bytes per word; a list would cost about 36
        hashes = array("Q")
        documents = 0
        for text in texts:
            documents += 1
            normalized = normalize(text)
            if normalized:  # an empty document can't be copied: the length filter rejects empty candidates
                hashes.append(_text_hash(normalized))
            # `normalized` is casefolded already, and spaces only separate words: these are split_words(text)
            tokens.extend(map(vocabulary.__getitem__, WORD_PATTERN.findall(normalized)))
            tokens.append(SEPARATOR)
        tokens.extend([SEPARATOR] * SEARCH_DEPTH)  # so every window read stays inside the array
        codes = np.frombuffer(tokens, dtype=np.uintc).astype(TOKEN_DTYPE)
        del tokens
        return cls(
            vocabulary=dict(vocabulary),  # a plain dict: checks must not add words
            tokens=codes,
            suffixes=_sorted_positions(codes),
            document_hashes=np.unique(np.frombuffer(hashes, dtype=np.uint64)),
            documents=documents,
        )

    def longest_shared_run(self, text: str) -> int:
        """Longest run of consecutive words `text` shares with one corpus document, capped at SEARCH_DEPTH."""
        return self._longest_run(self._codes(text))

    def check(self, text: str) -> str | None:
        """None when `text` is novel, else why it is not, in one line."""
        normalized = normalize(text)
        if normalized and self._is_document(normalized):
            return "copies a corpus document"
        codes = self._codes(normalized)
        limit = overlap_limit(codes.size)
        run = self._longest_run(codes)
        if run <= limit:
            return None
        shared = f"at least {run}" if run == SEARCH_DEPTH and codes.size > SEARCH_DEPTH else str(run)
        return f"shares {shared} consecutive words with the corpus (limit {limit})"

    def save(self, path: Path) -> None:
        """Write the index to `path` (an .npz file), atomically, so a crash never leaves half a cache."""
        path = Path(path)
        partial = path.with_name(path.name + ".partial")
        vocabulary = "\n".join(self._vocabulary).encode()  # words hold no whitespace; dict order: code order
        with open(partial, "wb") as file:
            np.savez(
                file,
                format_version=np.int64(FORMAT_VERSION),
                documents=np.int64(self.documents),
                vocabulary=np.frombuffer(vocabulary, dtype=np.uint8),
                tokens=self._tokens,
                suffixes=self._suffixes.astype(np.uint32),  # half the disk; corpora stay under 4 G words
                document_hashes=self._document_hashes,
            )
        os.replace(partial, path)

    @classmethod
    def load(cls, path: Path) -> "NoveltyIndex":
        """Read an index written by `save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as saved:
                if int(saved["format_version"]) != FORMAT_VERSION:
                    raise ValueError(f"format {int(saved['format_version'])}, expected {FORMAT_VERSION}")
                joined = saved["vocabulary"].tobytes().decode()
                words = joined.split("\n") if joined else []
                vocabulary = {word: FIRST_WORD + i for i, word in enumerate(words)}
                return cls(
                    vocabulary=vocabulary,
                    tokens=saved["tokens"].astype(TOKEN_DTYPE, copy=False),
                    suffixes=saved["suffixes"].astype(np.intp),
                    document_hashes=saved["document_hashes"].astype(np.uint64, copy=False),
                    documents=int(saved["documents"]),
                )
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as error:
            raise BotError(
                f"The novelty index {path} cannot be read ({error}); delete it so it is built again."
            ) from error

    def _is_document(self, normalized: str) -> bool:
        """Whether a normalised text equals a corpus document's."""
        key = np.uint64(_text_hash(normalized))
        at = int(np.searchsorted(self._document_hashes, key))
        return at < self._document_hashes.size and self._document_hashes[at] == key

    def _codes(self, text: str) -> np.ndarray:
        """(n,) TOKEN_DTYPE codes of the text's words; UNKNOWN for words the corpus never uses."""
        get = self._vocabulary.get
        return np.array([get(word, UNKNOWN) for word in split_words(text)], dtype=TOKEN_DTYPE)

    def _longest_run(self, codes: np.ndarray) -> int:
        """Longest run of `codes`, from any start, that the corpus holds, capped at SEARCH_DEPTH."""
        n, width = codes.size, SEARCH_DEPTH + 1  # one more word than compared: padding, which never matches
        if n == 0 or self._suffixes.size == 0:
            return 0
        padded = np.full(n + SEARCH_DEPTH, QUERY_PAD, dtype=TOKEN_DTYPE)  # (n + SEARCH_DEPTH,) big-endian
        padded[:n] = codes
        query_bytes = np.ndarray(shape=(n,), dtype=WINDOW_DTYPE, buffer=padded, strides=(padded.itemsize,))
        insertion = np.searchsorted(self._windows, query_bytes, sorter=self._suffixes)  # (n,)
        # The longest match from each start sits next to its insertion point. Clipping at the ends is
        # harmless: any corpus window's shared prefix is a true shared run.
        neighbours = np.clip(np.concatenate([insertion - 1, insertion]), 0, self._suffixes.size - 1)  # (2n,)
        # Equality needs no byte order, so both sides are read as native uint32 without a swap.
        starts = self._suffixes[neighbours]  # (2n,) corpus positions
        corpus_words = self._tokens.view(np.uint32)[starts[:, None] + np.arange(width)].reshape(2, n, width)
        queries = np.ndarray(shape=(n, width), dtype=np.uint32, buffer=padded, strides=(padded.itemsize,) * 2)
        return int((corpus_words != queries).argmax(axis=2).max())  # first mismatch = words shared


def _sorted_positions(tokens: np.ndarray) -> np.ndarray:
    """(words + documents,) intp positions before the padding of `tokens`, sorted by the window from each.

    Prefix doubling: sort by the first few tokens packed into one int64, then repeatedly by
    (rank[i], rank[i + width]), re-sorting only the positions still tied with a neighbour (Larsson and
    Sadakane), which after a few words are few. A rank is the slot in `order` where the position's group
    starts, so ranks stay comparable while only some change. Past the end of `tokens` counts as more
    separators, whose block always ranks 0 (the smallest).
    """
    width, key = _packed_prefix(tokens)
    order = np.argsort(key)  # (tokens,) positions sorted by their first `width` tokens
    rank = np.empty(tokens.size, dtype=np.int64)
    first_rank, tied = _groups(key[order], np.arange(tokens.size))
    rank[order] = first_rank
    del key, first_rank
    while width < SEARCH_DEPTH and tied.size:
        positions = order[tied]  # (tied,) positions whose first `width` tokens equal a neighbour's
        following = rank[np.minimum(positions + width, tokens.size - 1)]  # the last is all separators
        key = rank[positions] * tokens.size + following  # order by 2 * width tokens; fits int64
        by_key = np.argsort(key)
        order[tied] = positions[by_key]  # groups are runs of slots: sorting within the tied slots suffices
        new_rank, still_tied = _groups(key[by_key], tied)
        rank[positions[by_key]] = new_rank
        tied = still_tied
        width *= 2
    return order[order < tokens.size - SEARCH_DEPTH]


def _packed_prefix(tokens: np.ndarray) -> tuple[int, np.ndarray]:
    """How many leading tokens fit in an int64, and (tokens,) those keys, past the end read as separators."""
    codes = tokens.astype(np.int64)
    bits = int(codes.max()).bit_length()  # per code
    width = min(63 // bits, SEARCH_DEPTH)  # tokens per key, sign bit left alone
    key = np.zeros(tokens.size, dtype=np.int64)
    for offset in range(width):
        shifted = np.full(tokens.size, SEPARATOR, dtype=np.int64)
        shifted[: tokens.size - offset] = codes[offset:]
        key = (key << bits) | shifted
    return width, key


def _groups(sorted_keys: np.ndarray, slots: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For keys sorted into ascending `slots`: each key's rank (the slot its run of equal keys starts at), and
    the slots of keys in runs longer than one, which the next round must still separate."""
    starts = np.empty(sorted_keys.size, dtype=bool)  # a run of equal keys starts here
    starts[:1] = True
    starts[1:] = sorted_keys[1:] != sorted_keys[:-1]
    run_start = np.maximum.accumulate(np.where(starts, np.arange(sorted_keys.size), 0))
    alone = starts & np.append(starts[1:], True)
    return slots[run_start], slots[~alone]
