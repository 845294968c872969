"""nnbot: the service around the language model — CLI, settings, store, filters, queue, publishers, scheduler."""

__version__ = "0.1.0"
