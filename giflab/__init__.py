"""GifLab: a reproducible GIF compression dataset and size-prediction models."""

__version__ = "0.1.0"
