"""Dagster resources for GifLab: typed configuration handed to assets and sensors."""

from resources.clip_resource import ClipResource
from resources.engines_resource import EnginesResource
from resources.giflab_resource import GifLabResource
from resources.mlflow_resource import MlflowResource

__all__ = ["ClipResource", "EnginesResource", "GifLabResource", "MlflowResource"]
