"""The one exception root of `models`: failures a user can fix, each a full sentence."""


class ModelError(Exception):
    """The language model cannot do what was asked; the message says why and what to do."""


class CorpusTooSmallError(ModelError):
    """There is too little text to train on."""


class ArtifactError(ModelError):
    """A model directory is missing, damaged, or does not match itself (weights vs vocabulary vs config)."""


class CorpusChangedError(ModelError):
    """A resume was asked on documents other than those the model was trained on (plus documents added since)."""
