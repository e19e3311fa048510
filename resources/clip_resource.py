"""The CLIP resource: which open_clip model scores content, and where its weights are."""

import os
from typing import Any

from dagster import ConfigurableResource

from giflab.features.clip import DEFAULT_MODEL, DEFAULT_PRETRAINED


class ClipResource(ConfigurableResource):
    """open_clip model name, pretrained tag and local weights (never downloaded).

    Unset fields come from ``GIFLAB_CLIP_MODEL``, ``GIFLAB_CLIP_PRETRAINED``,
    ``GIFLAB_CLIP_WEIGHTS`` (a local checkpoint file), ``GIFLAB_CLIP_CACHE_DIR`` and
    ``GIFLAB_CLIP_MODEL_CONFIG`` (an open_clip model config JSON for a custom model); without a
    weights file the normal open_clip / Hugging Face cache is searched. ``num_threads`` torch
    threads per worker (1 keeps scores bit-identical whatever the worker count).
    """

    enabled: bool = True
    model_name: str | None = None
    pretrained: str | None = None
    weights_path: str | None = None
    cache_dir: str | None = None
    model_config_path: str | None = None
    num_threads: int = 1

    def scorer_config(self) -> dict[str, Any] | None:
        """``ClipScorer`` arguments, or None when CLIP is disabled."""
        if not self.enabled or os.environ.get("GIFLAB_CLIP", "1") == "0":
            return None
        return {
            "model_name": self.model_name or os.environ.get("GIFLAB_CLIP_MODEL") or DEFAULT_MODEL,
            "pretrained": self.pretrained
            or os.environ.get("GIFLAB_CLIP_PRETRAINED")
            or DEFAULT_PRETRAINED,
            "weights_path": self.weights_path or os.environ.get("GIFLAB_CLIP_WEIGHTS") or None,
            "cache_dir": self.cache_dir or os.environ.get("GIFLAB_CLIP_CACHE_DIR") or None,
            "model_config_path": self.model_config_path
            or os.environ.get("GIFLAB_CLIP_MODEL_CONFIG")
            or None,
            "num_threads": self.num_threads,
        }
