"""Drawing the next token from rows of logits: temperature, top-k, top-p and one uniform draw per row.

A pass over the (B, V) logits costs a few percent of the step's output matrix product, a sort of every row several
times that product, so the draw makes few passes and sorts no row: the row maximum, the exponential, block sums;
top-k and top-p find each row's cut from a histogram of the weights (16 buckets an octave) and sort only the tokens
of the one bucket the cut falls in; the draw itself is an inverse CDF in two levels, first over blocks of SUM_BLOCK
tokens, then inside one block.
The result is the distribution the plain algorithm gives (full softmax, full sort, cumulative sum, binary search),
token for token the same for a given draw up to float rounding at a boundary, with one stated exception: tokens
whose weight ties the top-p cut exactly are all kept (top-k always kept its ties; a full sort kept an arbitrary few).
"""

from __future__ import annotations

import numpy as np

SUM_BLOCK = 128  # tokens a block: a draw finds its block among V/128 sums, then its token among 128
BUCKET_SHIFT = 19  # a float32 weight's bits >> 19 keep its exponent and 4 mantissa bits: 16 buckets an octave
BUCKETS = int(np.float32(1).view(np.int32) >> BUCKET_SHIFT) + 1  # weights are in [0, 1]: buckets 0 … bucket(1)
CACHE_ROWS = 8  # rows weighed at a time: their logits and weights (1.5 MB at V = 24,000) stay cached between passes


def padded_width(columns: int) -> int:
    """Row length of a weights array for `columns` logits: a whole number of blocks."""
    return -(-columns // SUM_BLOCK) * SUM_BLOCK


def draw_tokens(logits: np.ndarray, draws: np.ndarray, *, temperature: float = 1.0, top_k: int = 0,
                top_p: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(columns (B,), log-probabilities (B,)): one draw from each row of `logits` (B, V), which is overwritten."""
    weights = np.empty((len(logits), padded_width(logits.shape[1])), np.float32)
    blocks, log_normalizer = weigh(logits, weights, temperature=temperature, top_k=top_k, top_p=top_p)
    rows = np.arange(len(logits))
    columns = pick(weights, blocks, rows, draws)
    return columns, logits[rows, columns] - log_normalizer


def weigh(logits: np.ndarray, weights: np.ndarray, *, temperature: float, top_k: int,
          top_p: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row of `logits` (G, V) as a distribution to draw from: `weights` (G, padded_width(V)) is filled with
    the tempered weights, top-k and top-p applied (the padding weighs nothing), and `logits` is shifted so that each
    row's maximum is 0. Returns (block sums (G, padded / SUM_BLOCK), the log of the normalizer (G,) of the model's
    own distribution, temperature 1 and nothing cut), so a token's log-probability is its logit minus that.

    The rows go CACHE_ROWS at a time, so that the passes after the first find them in the cache."""
    blocks = np.empty((len(logits), weights.shape[1] // SUM_BLOCK), np.float32)
    log_normalizer = np.empty(len(logits), np.float64)
    for a in range(0, len(logits), CACHE_ROWS):
        b = a + CACHE_ROWS
        blocks[a:b], log_normalizer[a:b] = _weigh_rows(logits[a:b], weights[a:b], temperature, top_k, top_p)
    return blocks, log_normalizer


def _weigh_rows(logits: np.ndarray, weights: np.ndarray, temperature: float, top_k: int,
                top_p: float) -> tuple[np.ndarray, np.ndarray]:
    columns = logits.shape[1]
    weights[:, columns:] = 0
    inside = weights[:, :columns]
    np.subtract(logits, logits.max(axis=1, keepdims=True), out=logits)  # each row's maximum is now 0: no overflow
    np.exp(logits, out=inside)
    blocks = _block_sums(weights)  # (G, blocks)
    log_normalizer = np.log(blocks.sum(axis=1, dtype=np.float64))
    changed = False
    if temperature != 1:
        np.multiply(logits, np.float32(1 / temperature), out=inside)
        np.exp(inside, out=inside)
        changed = True
    if top_k and top_k < columns:
        _drop_below(weights, _cut(weights, top_k, by_weight=False))
        changed = True
    if top_p < 1:
        _drop_below(weights, _cut(weights, top_p, by_weight=True))
        changed = True
    return (_block_sums(weights) if changed else blocks), log_normalizer


def pick(weights: np.ndarray, blocks: np.ndarray, which: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """For each draw (D,) in [0, 1), a column of distribution `which` (D,): the first whose running sum of
    `weights` (G, padded) exceeds draw * the distribution's total, found among the block sums (G, blocks) first."""
    at = np.arange(len(which))
    running = np.cumsum(blocks, axis=1, dtype=np.float64)[which]  # (D, blocks)
    targets = draws * running[:, -1]
    block = np.minimum((running <= targets[:, None]).sum(axis=1), blocks.shape[1] - 1)
    before = np.where(block > 0, running[at, block - 1], 0.0)
    inside = np.cumsum(weights.reshape(len(weights), -1, SUM_BLOCK)[which, block], axis=1, dtype=np.float64)
    columns = block * SUM_BLOCK + np.minimum((inside <= (targets - before)[:, None]).sum(axis=1), SUM_BLOCK - 1)
    stray = weights[which, columns] == 0  # rounding walked past the last token with weight: the likeliest instead
    if stray.any():
        columns[stray] = weights[which[stray]].argmax(axis=1)
    return columns


def _block_sums(weights: np.ndarray) -> np.ndarray:
    """(G, padded) -> (G, padded / SUM_BLOCK) float32."""
    return weights.reshape(len(weights), -1, SUM_BLOCK).sum(axis=2)


def _drop_below(weights: np.ndarray, threshold: np.ndarray) -> None:
    """Zero each row's weights under its threshold (B,), in place."""
    cut = np.flatnonzero(threshold > 0)
    if len(cut) == len(weights):
        np.multiply(weights, weights >= threshold[:, None], out=weights)
    elif len(cut):
        weights[cut] *= weights[cut] >= threshold[cut, None]


def _cut(weights: np.ndarray, amount: float, *, by_weight: bool) -> np.ndarray:
    """Each row's smallest kept weight (B,) when tokens are kept from the likeliest down for as long as what the
    tokens before them add up to is below a limit: `amount` tokens (top-k), or the share `amount` of the row's
    weight (top-p). All tokens that tie the smallest kept weight are kept. 0 where everything is kept.

    Weights in [0, 1] as float32 order as their bit patterns do, so the top bits name a bucket of weights; a
    histogram of the buckets finds the one bucket where the limit is crossed, and only its tokens are sorted.
    """
    rows, width = weights.shape
    keys = np.right_shift(weights.view(np.int32), BUCKET_SHIFT)  # (B, V') the bucket of each weight
    keys += (np.arange(rows, dtype=np.int32) * BUCKETS)[:, None]  # a row's buckets apart from the next row's
    per_bucket = np.bincount(keys.ravel(), weights=weights.ravel() if by_weight else None,
                             minlength=rows * BUCKETS).reshape(rows, BUCKETS)
    limit = amount * per_bucket.sum(axis=1) if by_weight else np.full(rows, amount, np.float64)
    above = np.cumsum(per_bucket[:, ::-1], axis=1)[:, ::-1] - per_bucket  # what the buckets above each add up to
    # Every token of a bucket with `above` at the limit is cut; every bucket above the lowest one under it is kept
    # whole, so the cut falls inside that lowest one, `edge`. Bucket 0 holds zero and subnormal weights: kept.
    edge = (above >= limit[:, None]).sum(axis=1)
    threshold = np.zeros(rows, np.float32)
    if not edge.any():
        return threshold
    own = np.where(edge > 0, np.arange(rows) * BUCKETS + edge, -1).astype(np.int32)
    at = np.flatnonzero(keys == own[:, None])  # the tokens in each row's edge bucket, row by row
    row, values = at // width, weights.ravel()[at]
    order = np.lexsort((-values, row))  # by row, then the likeliest first
    row, values = row[order], values[order]
    counted = values.astype(np.float64) if by_weight else np.ones(len(values))
    running = np.cumsum(counted)
    starts = np.searchsorted(row, np.arange(rows))  # where each row's tokens begin (rows with none: unused)
    before = running - counted - (running - counted)[starts[row]]  # within the row's edge bucket, before each
    kept = above[row, edge[row]] + before < limit[row]  # the first of each row's tokens always is
    count = np.bincount(row[kept], minlength=rows)
    cut_rows = np.flatnonzero(edge > 0)
    threshold[cut_rows] = values[starts[cut_rows] + count[cut_rows] - 1]
    return threshold
