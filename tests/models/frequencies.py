"""Checking drawn frequencies against exact probabilities: the plain algorithm in float64, and Pearson's test."""

import numpy as np


def exact_probabilities(logits: np.ndarray, temperature: float = 1.0, top_k: int = 0,
                        top_p: float = 1.0) -> np.ndarray:
    """Softmax at the temperature, then the k likeliest (ties at the k-th kept), then the likeliest whose running
    probability before them is below top_p (ties at the last kept, kept), by a full sort."""
    weights = np.exp((logits.astype(np.float64) - logits.max()) / temperature)
    if top_k and top_k < len(weights):
        weights[weights < np.sort(weights)[-top_k]] = 0
    if top_p < 1:
        descending = np.sort(weights)[::-1]
        before = np.cumsum(descending) - descending
        weights[weights < descending[before < top_p * descending.sum()][-1]] = 0
    return weights / weights.sum()


def chi_square(counts: np.ndarray, probabilities: np.ndarray) -> tuple[float, int]:
    """Pearson's statistic and its degrees of freedom; categories expected fewer than 5 times are pooled."""
    expected = probabilities * counts.sum()
    big = expected >= 5
    observed = np.append(counts[big], counts[~big].sum())
    expected = np.append(expected[big], expected[~big].sum())
    used = expected > 0
    return float(((observed[used] - expected[used]) ** 2 / expected[used]).sum()), int(used.sum()) - 1


def far_too_large(statistic: float, df: int) -> bool:
    """Beyond mean + 6 standard deviations of a chi-square with df degrees of freedom (p far below 1e-6)."""
    return statistic > df + 6 * np.sqrt(2 * df)
