"""Features of one GIF as a stored row, with the CLIP model loaded once per worker process.

``init_worker(clip_config)`` runs once in each worker (``giflab.parallel.map_tasks``'s
initializer): it loads the model, or remembers why it cannot. ``features_task`` then scores
GIFs without reloading. When CLIP is unavailable the six scores are NULL and the row says why;
the classical features are computed all the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from giflab.features import (
    CLIP_FEATURES,
    FEATURES_VERSION,
    ClipScorer,
    ClipUnavailable,
    extract_features,
)
from giflab.frames import DEFAULT_LIMITS, DecodeLimits
from giflab.schemas import GifFeaturesV1

CLIP_DISABLED = "CLIP disabled in configuration"

_scorer: ClipScorer | None = None
_reason: str | None = CLIP_DISABLED


@dataclass(frozen=True)
class FeaturesTask:
    """One GIF to describe."""

    sha256: str
    path: str
    limits: DecodeLimits = DEFAULT_LIMITS


def clip_plan(clip_config: dict[str, Any] | None) -> tuple[dict[str, Any] | None, str | None]:
    """``(config, None)`` when the weights file is there, else ``(None, why not)``.

    Checked once by the caller, so workers never import torch (~5 s) only to find no weights.
    """
    if clip_config is None:
        return None, CLIP_DISABLED
    try:
        ClipScorer(**clip_config).resolve_weights()
    except ClipUnavailable as e:
        return None, e.reason
    return clip_config, None


def init_worker(clip_config: dict[str, Any] | None, reason: str | None = None) -> None:
    """Load the CLIP scorer of ``clip_config`` (``ClipScorer`` arguments) once per process.

    None disables CLIP; ``reason`` (from ``clip_plan``) is then stored with every row.
    """
    global _scorer, _reason
    _scorer, _reason = None, reason or CLIP_DISABLED
    if clip_config is None:
        return
    scorer = ClipScorer(**clip_config)
    try:
        scorer.load()
    except ClipUnavailable as e:
        _reason = e.reason
        return
    _scorer, _reason = scorer, None


def clip_model_name(scorer: ClipScorer) -> str:
    """What produced the scores: model name and pretrained tag or weights file name."""
    source = scorer.weights_path.name if scorer.weights_path else scorer.pretrained
    return f"{scorer.model_name}/{source}"


def features_task(task: FeaturesTask) -> GifFeaturesV1:
    """The ``GifFeaturesV1`` row of ``task``'s GIF (``BadGifError`` if it cannot be decoded)."""
    result = extract_features(task.path, _scorer, limits=task.limits)
    reason = _reason if _scorer is None else result.clip_missing_reason
    values = result.values
    if reason is not None:
        values = {**values, **dict.fromkeys(CLIP_FEATURES)}
    return GifFeaturesV1(
        gif_sha=task.sha256,
        **values,
        clip_model=None if reason is not None or _scorer is None else clip_model_name(_scorer),
        clip_missing_reason=reason,
        features_version=FEATURES_VERSION,
    )
