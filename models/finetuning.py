"""Fine-tuning from a base model: the base's network shape, and its weights grown to a vocabulary that extends its own.

The fine-tuned vocabulary is the base's, id for id, followed by the new corpus's new pieces (`Tokenizer.build` with
`base=`). Every weight the base learned is kept; a new piece starts as the average known piece (ULMFiT: its embedding
row, output bias and, untied, output column are the means over the base's pieces, special tokens left out), so the
model's first guesses for it are neither silly nor favoured.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from models.config import START_STATE, ModelConfig, weight_shapes
from models.errors import ModelError
from models.tokenizer import SPECIALS

if TYPE_CHECKING:
    from models.artifact import ModelArtifact

SHAPE_FIELDS = ("embedding_dim", "hidden_dim", "layers", "tied")  # what a base's weights fix about the network
NEW_PIECES = 5_000  # pieces a fine-tuned vocabulary may add to its base's (the corpus's new words, by frequency)


def describe_shape(config: ModelConfig) -> str:
    """The network's shape in words, e.g. "2 × 200 (embedding 200)"."""
    untied = ", untied" if not config.tied else ""
    return f"{config.layers} × {config.hidden_dim} (embedding {config.embedding_dim}{untied})"


def same_shape(a: ModelConfig, b: ModelConfig) -> bool:
    return all(getattr(a, name) == getattr(b, name) for name in SHAPE_FIELDS)


def with_base_shape(config: ModelConfig, base: ModelArtifact) -> ModelConfig:
    """`config`'s training settings with the base's network shape and its tokenizer's vocabulary options (those of
    models made before the options existed included)."""
    shape: dict[str, Any] = {name: getattr(base.config, name) for name in SHAPE_FIELDS}
    return config.replace(**shape, case_markers=base.tokenizer.cased, rare_classes=base.tokenizer.rare is not None,
                          max_vocab=max(config.max_vocab, base.tokenizer.size + NEW_PIECES))


def base_record(base: ModelArtifact) -> dict[str, Any]:
    """What a fine-tuned model's config.json says about its base."""
    return {"name": base.name, "path": str(base.path.resolve()), "vocab_size": base.tokenizer.size,
            "corpus": base.info.get("corpus"), "created_at": base.info.get("created_at")}


def merge_weights(base_weights: dict[str, np.ndarray], base_vocab_size: int, new_vocab_size: int,
                  config: ModelConfig) -> dict[str, np.ndarray]:
    """The base's weights for a vocabulary of `new_vocab_size` pieces whose first `base_vocab_size` are the base's:
    base rows (and columns) unchanged, new ones at the mean over the base's non-special pieces."""
    expected = weight_shapes(config, base_vocab_size)
    found = {key: tuple(array.shape) for key, array in base_weights.items() if not key.startswith(START_STATE)}
    if found != expected:
        raise ModelError(f"The base model's weights do not fit its settings ({found} instead of {expected}); "
                         "retrain the base model.")
    if new_vocab_size < base_vocab_size:
        raise ModelError(f"A fine-tuned vocabulary ({new_vocab_size} pieces) cannot be smaller than its base's "
                         f"({base_vocab_size}).")
    added = new_vocab_size - base_vocab_size
    known = slice(len(SPECIALS), base_vocab_size)  # the base's pieces, special tokens left out
    merged = dict(base_weights)
    embedding = base_weights["embedding"]  # (V_base, E)
    merged["embedding"] = np.concatenate([embedding, np.repeat(embedding[known].mean(0, keepdims=True), added, 0)])
    bias = base_weights["output/bias"]  # (V_base,)
    merged["output/bias"] = np.concatenate([bias, np.full(added, bias[known].mean(), dtype=bias.dtype)])
    if "output/kernel" in base_weights:  # untied: (H, V_base)
        kernel = base_weights["output/kernel"]
        merged["output/kernel"] = np.concatenate(
            [kernel, np.repeat(kernel[:, known].mean(1, keepdims=True), added, 1)], axis=1)
    return merged
