"""Hyperparameters of the language model and its training, as one typed record with named presets."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from models.errors import ArtifactError, ModelError

OPTIMIZERS = ("adam", "sgd")
# What `bot generate`, bots and the demo sample with unless told otherwise: chosen by a blind reader (bench/blind.py,
# bench/RESULTS.md "A blind reader on the base"), not by the n-gram classifier. Fine-tuned from the base on three
# subreddits it never saw, temperature 0.7 with top-p 0.9 read as plausible as 1.0 / 0.95 on one and clearly more on
# two (mean plausibility 2.27 against 1.47, 2.00 against 1.50), though a classifier tells it from real titles more
# easily (it is less varied). Without a base model, 1.0 / 0.95 had written lengths closest to the corpus's.
DEFAULT_TEMPERATURE = 0.7
DEFAULT_TOP_P = 0.9
# Whether rare-word classes that write a word are drawn (models.sampler.SamplingSettings.rare_words).
DEFAULT_RARE_WORDS = True

# Device nodes of an NVIDIA GPU (Linux; /dev/dxg: WSL). Without one, TensorFlow's only C++ ERROR line at start-up
# is "failed call to cuInit", printed at every training; with one, its CUDA errors are real and stay visible.
GPU_DEVICES = ("/dev/nvidia[0-9]*", "/dev/nvidiactl", "/dev/dxg")


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild and retrain a model; saved in the model directory as `config.json`."""

    # vocabulary
    max_vocab: int = 20_000  # pieces kept, special tokens included
    min_count: int = 2  # pieces seen fewer times than this in the training documents become <unk>
    case_markers: bool = True  # "Google" is <maj> + "google": one embedding however a word is cased
    rare_classes: bool = True  # rare pieces become an <unk> of their shape, filled with a rare word when sampled
    # network: Embedding -> `layers` x LSTM(hidden_dim) -> softmax over the vocabulary
    embedding_dim: int = 256
    hidden_dim: int = 256  # units per LSTM layer
    layers: int = 2
    tied: bool = True  # the softmax reuses the embedding matrix (Press & Wolf 2017): fewer weights, less overfitting
    dropout: float = 0.3  # between LSTM layers and before the softmax; one mask per window (variational)
    embedding_dropout: float = 0.1  # on embedding channels, one mask per window
    init_scale: float = 0.0  # > 0: every weight uniform in ±init_scale (Zaremba et al.); 0: Keras's initialisers
    # training
    window: int = 35  # tokens per training window (truncated backpropagation length); state carries across windows
    batch_size: int = 32  # parallel streams of text per step
    optimizer: str = "adam"  # "adam" or "sgd"
    learning_rate: float = 2e-3  # per-token mean loss
    lr_decay: float = 0.5  # factor applied to the learning rate when it decays
    lr_decay_after: int = 0  # > 0: decay every epoch after this one (Zaremba's schedule); 0: decay on a plateau
    clip_norm: float = 5.0  # global gradient-norm clip
    # ULMFiT's fine-tuning levers (Howard & Ruder 2018). Layer groups, top first: the softmax, each LSTM layer from
    # the last, the embedding. `lr_layer_decay`: each group learns at this share of the rate of the group above
    # (ULMFiT: 1 / 2.6); 1 = one rate for all. `unfreeze_epochs`: only the top group trains at first, and one more
    # joins every this many epochs (gradual unfreezing); 0 = all train from the start.
    lr_layer_decay: float = 1.0
    unfreeze_epochs: int = 0
    epochs: int = 30  # at most
    patience: int = 3  # epochs without a better validation loss before early stopping; 0 = never stop early
    valid_fraction: float = 0.1  # documents held out for validation
    shuffle_documents: bool = True  # reorder documents every epoch (False for running text such as Penn Treebank)
    # with a time limit (`--max-minutes`): the learning rate falls linearly to zero at the limit (or at the epoch
    # limit, if that comes first; held and then decayed where many epochs fit) and dropout is scaled to the epochs
    # the limit allows (models.budget)
    budget_schedule: bool = True
    sampled_softmax: int = 0  # > 0: train against this many sampled words per step (evaluation stays exact)
    # under a time limit, the share of it trained with the sampled softmax, from the epoch nearest to which the full
    # softmax takes over (1: sampled throughout)
    sampled_share: float = 1.0
    seed: int = 0
    sample_every: int = 5  # epochs between sample printouts during training; 0 = never

    def __post_init__(self) -> None:
        problems = self._problems()
        if problems:
            raise ModelError(f"Invalid model settings: {'; '.join(problems)}.")

    def _problems(self) -> list[str]:
        p = []
        positive = ("max_vocab", "embedding_dim", "hidden_dim", "layers", "window", "batch_size", "epochs")
        p += [f"{name} must be at least 1" for name in positive if getattr(self, name) < 1]
        p += [f"{name} must be in [0, 1)" for name in ("dropout", "embedding_dropout")
              if not 0 <= getattr(self, name) < 1]
        if not 0 < self.valid_fraction < 1:
            p.append("valid_fraction must be between 0 and 1")
        if self.optimizer not in OPTIMIZERS:
            p.append(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if self.learning_rate <= 0 or self.clip_norm <= 0:
            p.append("learning_rate and clip_norm must be positive")
        if not 0 < self.lr_layer_decay <= 1:
            p.append("lr_layer_decay must be in (0, 1]")
        if self.unfreeze_epochs < 0:
            p.append("unfreeze_epochs must be 0 (no unfreezing) or more")
        if not 0 < self.sampled_share <= 1:
            p.append("sampled_share must be in (0, 1]")
        if self.sampled_softmax < 0:
            p.append("sampled_softmax must be 0 (the full softmax) or a number of sampled words")
        if self.max_vocab <= 4:
            p.append("max_vocab must leave room beyond the 4 special tokens")
        return p

    def replace(self, **changes: object) -> ModelConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, object]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> ModelConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ArtifactError(
                f"The model's config.json has settings this nnbot does not know ({', '.join(unknown)}); "
                "upgrade nnbot or retrain the model."
            )
        return cls(**data)  # type: ignore[arg-type]


def weight_shapes(config: ModelConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The name and shape of every weight array of a model: what `weights.npz` must hold."""
    e, h, gates = config.embedding_dim, config.hidden_dim, 4 * config.hidden_dim  # LSTM gates: i, f, c, o
    shapes: dict[str, tuple[int, ...]] = {"embedding": (vocab_size, e)}
    for layer in range(config.layers):
        shapes[f"lstm_{layer}/kernel"] = (e if layer == 0 else h, gates)
        shapes[f"lstm_{layer}/recurrent_kernel"] = (h, gates)
        shapes[f"lstm_{layer}/bias"] = (gates,)
    if config.tied and h != e:
        shapes["projection/kernel"] = (h, e)  # the last LSTM output is mapped to embedding size before the tied softmax
        shapes["projection/bias"] = (e,)
    if not config.tied:
        shapes["output/kernel"] = (h, vocab_size)
    shapes["output/bias"] = (vocab_size,)
    return shapes


START_STATE = "start/"  # weights named start/h_0, start/c_0, …: the state a document starts from (start_state_shapes)


def start_state_shapes(config: ModelConfig) -> dict[str, tuple[int, ...]]:
    """The optional arrays beside the weights that hold the LSTM state a document starts from: training carries the
    state across documents, so the network never saw a zero state at a document's <bos> after its first window, and
    sampling or scoring from zero is out of its distribution (models.start_state)."""
    return {f"{START_STATE}{part}_{layer}": (config.hidden_dim,)
            for layer in range(config.layers) for part in ("h", "c")}


def macs_per_token(config: ModelConfig, vocab: int) -> dict[str, int]:
    """Forward multiply-adds per token, by part: each LSTM layer 4H(I + H), the softmax over the vocabulary (or over
    the sampled words and the target, when training samples them), a projection before a tied softmax."""
    h, e = config.hidden_dim, config.embedding_dim
    lstm = sum(4 * h * ((e if layer == 0 else h) + h) for layer in range(config.layers))
    projection = h * e if config.tied and h != e else 0
    outputs = config.sampled_softmax + 1 if config.sampled_softmax else vocab
    return {"embedding": 0, "lstm": lstm, "projection": projection, "softmax": (e if config.tied else h) * outputs}


def flops_per_token(config: ModelConfig, vocab: int) -> int:
    """Training FLOPs per token: 2 per multiply-add, and the backward pass counted as twice the forward."""
    return 2 * 3 * sum(macs_per_token(config, vocab).values())


def parameter_count(config: ModelConfig, vocab_size: int) -> int:
    total = 0
    for shape in weight_shapes(config, vocab_size).values():
        size = 1
        for dim in shape:
            size *= dim
        total += size
    return total


PRESETS: dict[str, ModelConfig] = {
    # A few seconds on a CPU: for tests and trying the pipeline.
    "tiny": ModelConfig(embedding_dim=32, hidden_dim=32, layers=1, dropout=0.0, embedding_dropout=0.0,
                        window=16, batch_size=8, learning_rate=1e-2, epochs=5, patience=0,
                        sample_every=0),
    # Titles and tweets: corpora of a few thousand short documents. Small and regularised, because such a corpus
    # is a few tens of thousands of words and a larger network only memorises it.
    # Small batches and windows give such a corpus enough updates per epoch (batch 32 x window 35 gave 16).
    "small": ModelConfig(embedding_dim=200, hidden_dim=200, layers=2, dropout=0.4, embedding_dropout=0.1,
                         window=20, batch_size=8, learning_rate=3e-3, epochs=40, patience=4),
    # Corpora of 200,000 words and more (`--preset auto`), and the recipe of bench/ptb.py: tied 300-wide
    # embeddings and layers (4.45 M parameters at a 10,000-word vocabulary), variational dropout, SGD with steps
    # clipped to norm 0.25 x lr (lr 20 on the per-token mean loss), constant for 8 epochs and then x0.7 per epoch
    # (Zaremba et al.'s schedule, fitted to the ~20 epochs an hour gives on 2 CPU cores). Batch 20 beat 64 at equal
    # time (valid 215 vs 229 after ~3.5 minutes), because clipped SGD gains per update, not per token.
    # Under a time limit that fits under ten epochs, its softmax is sampled over 1,024 distinct words for the first
    # half of the limit, then exact (models.budget): 1.7-2x the tokens/s while it samples; on PTB at 10 minutes, valid
    # 104 against 109 sampled throughout.
    "medium": ModelConfig(embedding_dim=300, hidden_dim=300, layers=2, tied=True, dropout=0.4, embedding_dropout=0.1,
                          init_scale=0.1, window=35, batch_size=20, optimizer="sgd", learning_rate=20.0,
                          lr_decay=0.7, lr_decay_after=8, clip_norm=0.25, epochs=26, patience=4,
                          sampled_softmax=1024),
    # Zaremba, Sutskever & Vinyals (2014), "small": 2 x 200, no dropout, SGD lr 1 halved every epoch after the
    # 4th, 13 epochs, window 20, batch 20, uniform init ±0.1, gradient norm 5. Their loss is the sum over the
    # 20-step window of the batch-mean; ours is the mean over tokens, so lr x20 and clip /20 give the same updates.
    "zaremba-small": ModelConfig(embedding_dim=200, hidden_dim=200, layers=2, tied=False, dropout=0.0,
                                 embedding_dropout=0.0, init_scale=0.1, window=20, batch_size=20,
                                 optimizer="sgd", learning_rate=20.0, lr_decay=0.5, lr_decay_after=4,
                                 clip_norm=0.25, epochs=13, patience=0, shuffle_documents=False, min_count=1,
                                 max_vocab=10_004, budget_schedule=False),
}
DEFAULT_PRESET = "small"


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ModelError(f"There is no preset named {name!r}; choose one of {', '.join(PRESETS)}.") from None
