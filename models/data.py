"""Token streams cut into training windows: every position predicts the next token, and state carries across.

A corpus is one int32 stream `<bos> d1 <eos> <bos> d2 <eos> …`. It is laid out as `batch` parallel rows
(B, L), cut into windows of `window` tokens, and the windows are ordered so that row j of batch k+1 continues
row j of batch k: a stateful LSTM then reads each row as one long text (truncated backpropagation through time).
The target at every position is the next token. For evaluation a position whose target is `<bos>` weighs 0, since
that token always follows `<eos>` and predicting it would flatter the perplexity; training leaves it in (it costs
nothing once learned, and a loss without weights trains about 8% faster).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.tokenizer import BOS_ID, PAD_ID


@dataclass(frozen=True)
class Windows:
    """Inputs, targets and weights, each (batches * batch, window), in the order a stateful model reads them."""

    inputs: np.ndarray  # int32
    targets: np.ndarray  # int32
    weights: np.ndarray  # float32: 1 where the target counts, 0 for <bos> targets and padding
    batch: int

    @property
    def batches(self) -> int:
        return len(self.inputs) // self.batch

    @property
    def tokens(self) -> int:
        """Target positions that count (the denominator of the perplexity)."""
        return int(self.weights.sum())


def make_windows(stream: np.ndarray, *, batch: int, window: int, pad: bool = True) -> Windows:
    """Lay `stream` out as `batch` rows and cut it into windows.

    With `pad`, the tail is padded with weight 0 and every target counts once (evaluation); without, each row's
    last partial window is dropped (training: under `window` tokens a row, and no padding to compute).
    """
    usable = len(stream) - 1  # the last token has no target
    if pad:
        row = -(-usable // batch)  # tokens per row, rounded up
        batches = -(-row // window)
    else:
        batches = usable // batch // window
        row = batches * window
    padded = batches * window * batch
    inputs = np.full(padded, PAD_ID, dtype=np.int32)
    targets = np.full(padded, PAD_ID, dtype=np.int32)
    weights = np.zeros(padded, dtype=np.float32)
    # Rows are filled to length `row` from consecutive text; the rest of each row (< window tokens) is padding.
    for r in range(batch):
        start, stop = r * row, min((r + 1) * row, usable)
        if start >= stop:
            break
        dest = slice(r * batches * window, r * batches * window + (stop - start))
        inputs[dest] = stream[start:stop]
        targets[dest] = stream[start + 1 : stop + 1]
        weights[dest] = 1.0
    weights[targets == BOS_ID] = 0.0

    def order(a: np.ndarray) -> np.ndarray:  # (B, batches, T) -> (batches, B, T) -> (batches * B, T)
        return a.reshape(batch, batches, window).transpose(1, 0, 2).reshape(batches * batch, window)

    return Windows(order(inputs), order(targets), order(weights), batch)


def document_starts(stream: np.ndarray) -> np.ndarray:
    return np.flatnonzero(stream == BOS_ID)


def shuffle_documents(stream: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The same documents in a new order (each `<bos> … <eos>` segment kept whole)."""
    starts = document_starts(stream)
    if len(starts) < 2:
        return stream
    ends = np.append(starts[1:], len(stream))
    order = rng.permutation(len(starts))
    lengths = (ends - starts)[order]
    # Gather indices of the permuted segments without a Python loop over documents.
    offsets = np.repeat(starts[order] - np.concatenate(([0], np.cumsum(lengths)[:-1])), lengths)
    return stream[np.arange(len(stream)) + offsets]


def split_documents(count: int, *, valid_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices of training and validation documents: a seeded split by document, never inside one."""
    order = np.random.default_rng(seed).permutation(count)
    n_valid = max(1, round(count * valid_fraction))
    return np.sort(order[n_valid:]), np.sort(order[:n_valid])
