"""The novelty indexes: tell whether a generated text copies the training corpus or the base corpus (markovify's rule).

A candidate of n words is rejected when, after normalising case and whitespace, it equals a corpus document,
or when it shares more than ``overlap_limit(n) = min(15, round(0.7 * n))`` consecutive words with one corpus
document. Words are casefolded and punctuation is ignored ("Don't" matches "don't"; "Hello, world" shares
2 words with "hello world").

How `NoveltyIndex` answers exactly, in well under a millisecond on a 20-million-word corpus, with no Python
object per word:

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

The base corpus (the 2.15 M Reddit titles the shipped base model learned from, 22.5 M words) would cost ~270 MB
that way, too much to ship or to load in every process, so `BaseCorpusIndex` answers the same rule approximately
from a Bloom filter of each title's words and of every GRAM_WORDS-word run inside a title. It only ever rejects
more than the exact rule, never less, except for candidates of 2 to 4 words (its docstring says exactly which).
Memory budget: -ln(FALSE_POSITIVE_RATE) / ln(2)**2 = 10.3 bits per distinct key (title or 5-gram); the real corpus
has 15.4 M keys, so 19.9 MB on disk (.npz, uncompressed: a half-full bit array does not compress) and the same in
memory (the bit array is the whole index; a check adds arrays of a few hundred bytes). Building it from the real
corpus (``bench/base_model.py build-novelty``) took 48-248 s after 72-160 s of reading the titles, on two cores
busy training, and peaked at 1.5 GB resident, the titles themselves included (bench/results/base_novelty.json).
"""

import hashlib
import math
import os
import re
import zipfile
from array import array
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

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

# The base corpus's approximate index (BaseCorpusIndex)
BASE_CORPUS_FILE = "base-corpus.npz"  # in a base model's directory: the BaseCorpusIndex of what it learned from
GRAM_WORDS = 5  # words per indexed run; a candidate needs this many words before overlaps are seen at all
# Of the Bloom filter, per key not in it; sizes the bit array (10.3 bits a key). On the real corpus: 19.9 MB, and
# 0.74 % of unseen titles falsely rejected (0.43 % of them at 0.002 and 24.9 MB; chains alone make ~0.3 %).
FALSE_POSITIVE_RATE = 0.007
GRAM_MULTIPLIER = np.uint64(0x9E3779B97F4A7C15)  # odd (2**64 / golden ratio): combines word hashes into a gram's
LOW_32 = np.uint64(0xFFFFFFFF)  # the low half of a key: the first bit position; the high half is the step
BUILD_CHUNK = 1 << 20  # keys whose bit positions are made at once: (chunk, hashes) uint64, 8 MB per hash
BASE_FORMAT_VERSION = 1  # of the base-corpus file; bump when its arrays or its hashing change


def normalize(text: str) -> str:
    """The text as the equality rule compares it: casefolded, whitespace runs made one space, ends trimmed."""
    return " ".join(text.casefold().split())


def split_words(text: str) -> list[str]:
    """The text's words, casefolded, punctuation dropped: what overlap runs and word counts are made of."""
    return WORD_PATTERN.findall(text.casefold())


def overlap_limit(n_words: int) -> int:
    """Most consecutive words a candidate of `n_words` words may share with the corpus (Python's `round`)."""
    return min(MAX_OVERLAP_WORDS, round(MAX_OVERLAP_RATIO * n_words))


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    """Write `arrays` to `path` (an .npz file) atomically: a crash never leaves half a file under its name."""
    path = Path(path)
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as file:
        np.savez(file, **arrays)
    os.replace(partial, path)


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
        vocabulary = "\n".join(self._vocabulary).encode()  # words hold no whitespace; dict order: code order
        _save_npz(
            path,
            format_version=np.int64(FORMAT_VERSION),
            documents=np.int64(self.documents),
            vocabulary=np.frombuffer(vocabulary, dtype=np.uint8),
            tokens=self._tokens,
            suffixes=self._suffixes.astype(np.uint32),  # half the disk; corpora stay under 4 G words
            document_hashes=self._document_hashes,
        )

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


# ---- the base corpus: an approximate index small enough to ship


class NoveltyCheck(Protocol):
    """What the novelty filter asks of an index."""

    def check(self, text: str) -> str | None: ...


class BaseCorpusIndex:
    """A Bloom filter of a big corpus of short documents (the base model's titles) that applies markovify's rule
    approximately: build once (``bench/base_model.py build-novelty``), ship the file, check many times.

    The filter holds two kinds of 64-bit key: each title's word sequence (`split_words`, joined by spaces,
    blake2b-hashed) and every run of GRAM_WORDS consecutive words inside a title (never across two titles), hashed
    from its words' hashes. A candidate of n words is rejected when

    * its word sequence is a key, and so are all its n - 4 five-grams (a real copy has them all; this stops a
      false positive of the title key alone from rejecting a longer text): "copies a title of the base corpus";
    * else, with r the longest run of consecutive candidate 5-grams that are keys, when r > 0 and the shared words
      it implies, r + 4, exceed overlap_limit(n): "shares about r + 4 consecutive words with a base-corpus title".

    What that catches, against the exact rule (`NoveltyIndex`):

    * Every copy of a title, with any case, punctuation or spacing (the exact rule's equality heeds punctuation).
    * For n >= 5, every candidate sharing s > overlap_limit(n) consecutive words with one title: the limit is at
      least 4 (n = 5: round(3.5) = 4; n = 6: round(4.2) = 4), so s >= 5, and those s words hold s - 4 consecutive
      5-grams of that title, all of them keys, so r >= s - 4 and r + 4 >= s > limit.
    * Not caught: a candidate of 2 to 4 words that the exact rule rejects for appearing inside a longer title
      without being a whole one (2 words: limit 1; 3: limit 2; 4: limit 3; so the exact rule rejects any of them
      found in a title). Such texts are common phrases, not recitals. A 1-word candidate can only be an equal.
    * Titles without words are not indexed; the length filter rejects a text without words anyway.

    Errors go one way only: a key that was added is always found, so a Bloom false positive (a key that was not
    added reported present, FALSE_POSITIVE_RATE each) or a chain of 5-grams taken from different titles can
    only lengthen r and cause an extra rejection; neither can hide a copy.
    """

    def __init__(self, *, bits: np.ndarray, hashes: int, titles: int, keys: int) -> None:
        self._bits = bits  # (bytes,) uint8: the filter, bit i of byte b being position 8b + i
        self._size = np.uint64(bits.size * 8)  # positions in the filter
        self.hashes = hashes  # bit positions per key
        self.titles = titles  # titles with words, indexed
        self.keys = keys  # distinct keys added: titles and 5-grams

    @property
    def nbytes(self) -> int:
        """Bytes the filter holds in memory (and, give or take the .npz header, on disk)."""
        return int(self._bits.nbytes)

    @classmethod
    def build(cls, titles: Iterable[str], *, false_positive_rate: float = FALSE_POSITIVE_RATE) -> "BaseCorpusIndex":
        """Index `titles`, one document each, with a filter sized for `false_positive_rate` per absent key."""
        vocabulary = _Vocabulary()
        codes = array("I")  # every word of every title, as its vocabulary code: 4 bytes a word
        lengths = array("I")  # words per indexed title
        title_keys = array("Q")
        for title in titles:
            words = split_words(title)
            if words:
                title_keys.append(_text_hash(" ".join(words)))
                codes.extend(map(vocabulary.__getitem__, words))
                lengths.append(len(words))
        word_hashes = np.zeros(FIRST_WORD + len(vocabulary), dtype=np.uint64)  # by code; dict order is code order
        word_hashes[FIRST_WORD:] = _word_hashes(vocabulary)
        words = word_hashes[np.frombuffer(codes, dtype=np.uint32)]  # (corpus words,) uint64
        del codes, vocabulary, word_hashes
        counts = np.frombuffer(lengths, dtype=np.uint32).astype(np.int64)  # (titles,)
        grams = _gram_hashes(words, _gram_starts(counts))  # (5-grams,) uint64
        del words
        keys = np.unique(np.concatenate([np.frombuffer(title_keys, dtype=np.uint64), grams]))
        del grams
        size, hashes = _bloom_shape(keys.size, false_positive_rate)
        flags = np.zeros(size, dtype=bool)  # a byte per position while building: setting repeats is then safe
        for start in range(0, keys.size, BUILD_CHUNK):
            flags[_positions(keys[start : start + BUILD_CHUNK], hashes, np.uint64(size))] = True
        return cls(bits=np.packbits(flags, bitorder="little"), hashes=hashes, titles=len(lengths), keys=keys.size)

    def check(self, text: str) -> str | None:
        """None when `text` is novel as far as the filter can tell, else why it is not, in one line."""
        words = split_words(text)
        n = len(words)
        if n == 0:
            return None
        title = np.array([_text_hash(" ".join(words))], dtype=np.uint64)
        starts = np.arange(max(n - GRAM_WORDS + 1, 0))  # (5-grams,) none below 5 words
        found = self._contains(np.concatenate([title, _gram_hashes(_word_hashes(words), starts)]))  # (1 + 5-grams,)
        run = _longest_run(found[1:])
        if found[0] and run == starts.size:  # a copy has every 5-gram too
            return "copies a title of the base corpus"
        shared = run + GRAM_WORDS - 1 if run else 0
        limit = overlap_limit(n)
        if shared <= limit:
            return None
        return f"shares about {shared} consecutive words with a base-corpus title (limit {limit})"

    def save(self, path: Path) -> None:
        """Write the index to `path` (an .npz file), atomically, so a crash never leaves half a file."""
        _save_npz(
            path,
            format_version=np.int64(BASE_FORMAT_VERSION),
            gram_words=np.int64(GRAM_WORDS),
            hashes=np.int64(self.hashes),
            titles=np.int64(self.titles),
            keys=np.int64(self.keys),
            bits=self._bits,
        )

    @classmethod
    def load(cls, path: Path) -> "BaseCorpusIndex":
        """Read an index written by `save`."""
        try:
            with np.load(Path(path), allow_pickle=False) as saved:
                version, gram_words = int(saved["format_version"]), int(saved["gram_words"])
                if (version, gram_words) != (BASE_FORMAT_VERSION, GRAM_WORDS):
                    raise ValueError(f"format {version} of {gram_words}-grams, expected {BASE_FORMAT_VERSION} of "
                                     f"{GRAM_WORDS}-grams")
                bits, hashes = saved["bits"], int(saved["hashes"])
                if bits.dtype != np.uint8 or bits.ndim != 1 or bits.size == 0 or not 1 <= hashes <= 64:
                    raise ValueError(f"a filter of {bits.dtype} {bits.shape} with {hashes} hashes")
                return cls(bits=bits, hashes=hashes, titles=int(saved["titles"]), keys=int(saved["keys"]))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
            raise BotError(
                f"The base-corpus novelty index {path} cannot be read ({error}); rebuild it with `python "
                "bench/base_model.py build-novelty --out DIR`, or delete it to go without the base-corpus check."
            ) from error

    def _contains(self, keys: np.ndarray) -> np.ndarray:
        """(keys,) bool: whether each uint64 key is in the filter (always, where it was added)."""
        positions = _positions(keys, self.hashes, self._size)  # (keys, hashes)
        found = (self._bits[positions >> np.uint64(3)] >> (positions & np.uint64(7)).astype(np.uint8)) & 1
        return found.all(axis=1)


class CombinedNovelty:
    """Several indexes as one novelty filter: a text is novel when every index finds it so; the first reason wins."""

    def __init__(self, *indexes: NoveltyCheck) -> None:
        self._indexes = indexes

    def check(self, text: str) -> str | None:
        """None when no index rejects `text`, else the first index's reason."""
        for index in self._indexes:
            reason = index.check(text)
            if reason is not None:
                return reason
        return None


def _longest_run(found: np.ndarray) -> int:
    """Length of the longest run of True in the (n,) bool array `found` (n: a candidate's 5-grams, a few dozen)."""
    best = run = 0
    for present in found.tolist():
        run = run + 1 if present else 0
        best = max(best, run)
    return best


def _word_hashes(words: Iterable[str]) -> np.ndarray:
    """(words,) uint64: each word's stable 64-bit hash (blake2b), the same in every process."""
    return np.fromiter(map(_text_hash, words), dtype=np.uint64)


def _gram_starts(lengths: np.ndarray) -> np.ndarray:
    """(5-grams,) int64 positions, in the concatenated words of titles of `lengths` words, where a 5-gram starts
    that ends inside the same title."""
    grams = np.maximum(lengths - GRAM_WORDS + 1, 0)  # (titles,) 5-grams per title
    first_word = np.cumsum(lengths) - lengths  # (titles,) where each title's words start
    first_gram = np.cumsum(grams) - grams  # (titles,) the index of each title's first 5-gram
    return np.repeat(first_word - first_gram, grams) + np.arange(int(grams.sum()))


def _gram_hashes(word_hashes: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """(starts,) uint64 hashes of the 5 words from each start: a polynomial in GRAM_MULTIPLIER over their hashes
    (uint64 arithmetic wraps), then splitmix64's finaliser, so that both 32-bit halves are well mixed."""
    key = word_hashes[starts]
    for offset in range(1, GRAM_WORDS):
        key *= GRAM_MULTIPLIER
        key += word_hashes[starts + offset]
    key ^= key >> np.uint64(30)
    key *= np.uint64(0xBF58476D1CE4E5B9)
    key ^= key >> np.uint64(27)
    key *= np.uint64(0x94D049BB133111EB)
    key ^= key >> np.uint64(31)
    return key


def _bloom_shape(keys: int, rate: float) -> tuple[int, int]:
    """(positions, hashes) of a Bloom filter of `keys` keys whose false-positive rate is `rate`: the textbook
    m = -n ln p / ln(2)**2 bits, rounded up to whole bytes, and k = m / n ln 2 hashes."""
    size = max(8, math.ceil(-max(keys, 1) * math.log(rate) / math.log(2) ** 2 / 8) * 8)
    return size, max(1, round(size / max(keys, 1) * math.log(2)))


def _positions(keys: np.ndarray, hashes: int, size: np.uint64) -> np.ndarray:
    """(keys, hashes) uint64 filter positions of each key by double hashing (Kirsch and Mitzenmacher): low half
    + i * high half, modulo `size`; below 2**37 before the modulo, so nothing wraps."""
    steps = np.arange(hashes, dtype=np.uint64)  # (hashes,)
    return ((keys & LOW_32)[:, None] + steps * (keys >> np.uint64(32))[:, None]) % size
