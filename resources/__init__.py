"""Dagster resources for GifLab: typed configuration handed to assets and sensors."""

from resources.giflab_resource import GifLabResource

__all__ = ["GifLabResource"]
