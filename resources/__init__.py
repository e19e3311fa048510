"""Dagster resources for GifLab: typed configuration handed to assets and sensors."""

from resources.engines_resource import EnginesResource
from resources.giflab_resource import GifLabResource

__all__ = ["EnginesResource", "GifLabResource"]
