"""Predict a GIF's compressed size per engine over a grid of variants, and pick one for a budget.

The GIF is measured by the same domain code that built the training table (``read_metadata``,
``extract_features``), so the models see exactly the inputs they were trained on. A curve covers
lossy × colors × frame_keep; within each (colors, frame_keep) it never grows with lossy.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from giflab.dataset.columns import GIF_FEATURES, ORIG_COLUMNS
from giflab.errors import BadGifError
from giflab.features import CLIP_FEATURES, FEATURES_VERSION, ClipScorer, extract_features
from giflab.frames import DEFAULT_LIMITS, DecodeLimits
from giflab.meta import read_metadata, validate_gif
from giflab.prediction.load import LoadedModels

DEFAULT_LOSSY = (0, 20, 40, 60, 80, 100, 120)
DEFAULT_COLORS = (256, 128, 64, 32, 16)
DEFAULT_FRAME_KEEP = (1.0, 0.8)


@dataclass(frozen=True)
class CurvePoint:
    """One variant and its predicted size."""

    lossy: int
    colors: int
    frame_keep: float
    kilobytes: float

    def to_json(self) -> dict[str, Any]:
        """``{"lossy", "colors", "frame_keep", "kilobytes"}`` as plain numbers."""
        return {
            "lossy": self.lossy,
            "colors": self.colors,
            "frame_keep": self.frame_keep,
            "kilobytes": self.kilobytes,
        }


@dataclass(frozen=True)
class Prediction:
    """One engine's predicted curve for one GIF and, given a target, the variant picked."""

    engine: str
    curve: tuple[CurvePoint, ...]
    pick: CurvePoint | None
    target_kb: float | None = None
    # Why the inputs differ from what the models were trained on (e.g. CLIP scores missing
    # here but present in training); not part of ``to_json``.
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        """``{"engine", "curve": [point, ...], "pick": point or None}``."""
        return {
            "engine": self.engine,
            "curve": [p.to_json() for p in self.curve],
            "pick": None if self.pick is None else self.pick.to_json(),
        }


def gif_inputs(
    path: Path | str, *, clip: ClipScorer | None = None, limits: DecodeLimits = DEFAULT_LIMITS
) -> dict[str, float]:
    """The ``GIF_FEATURES`` of the GIF at ``path`` (metadata as ``orig_*``; missing CLIP → NaN).

    Raises ``BadGifError`` naming the file when it is missing or not a usable GIF.
    """
    path = Path(path)
    if not path.is_file():  # validate_gif would let FileNotFoundError out for a missing path
        raise BadGifError(path, "not_a_file", "no such file")
    validate_gif(path, limits)  # the ingest check: a truncated or bomb file is named as such
    meta = read_metadata(path, limits)
    values: dict[str, Any] = {ORIG_COLUMNS[k]: v for k, v in meta.items() if k in ORIG_COLUMNS}
    values.update(extract_features(path, clip, limits=limits).values)
    return {n: np.nan if values[n] is None else float(values[n]) for n in GIF_FEATURES}


def variant_grid(
    lossy: Iterable[int] = DEFAULT_LOSSY,
    colors: Iterable[int] = DEFAULT_COLORS,
    frame_keep: Iterable[float] = DEFAULT_FRAME_KEEP,
) -> list[tuple[int, int, float]]:
    """Every (lossy, colors, frame_keep), frame_keep and colors descending, lossy ascending."""
    return [
        (int(lv), int(c), float(f))
        for f in sorted(set(frame_keep), reverse=True)
        for c in sorted(set(colors), reverse=True)
        for lv in sorted(set(lossy))
    ]


def monotone_in_lossy(points: Sequence[CurvePoint]) -> list[CurvePoint]:
    """``points`` with each size capped by the sizes at lower lossy of the same colors/frame_keep.

    The models are built monotone (constraints or a running minimum over levels); this makes
    the promise hold for any bundle, and is a no-op for those.
    """
    best: dict[tuple[int, float], float] = {}
    capped: dict[int, CurvePoint] = {}
    for i in sorted(range(len(points)), key=lambda i: points[i].lossy):
        p = points[i]
        key = (p.colors, p.frame_keep)
        kb = min(p.kilobytes, best.get(key, np.inf))
        best[key] = kb
        capped[i] = CurvePoint(p.lossy, p.colors, p.frame_keep, kb)
    return [capped[i] for i in range(len(points))]


def pick_variant(curve: Iterable[CurvePoint], target_kb: float) -> CurvePoint | None:
    """The variant expected to look best among those predicted at or under ``target_kb``.

    Keeping every frame comes first (dropping frames changes the motion, not just the
    pixels); then the largest predicted size, since within a budget the variant that throws
    away the least data looks best; ties go to lower lossy, then more colors. None if no
    variant fits.
    """
    fits = [p for p in curve if p.kilobytes <= target_kb]
    if not fits:
        return None
    return min(fits, key=lambda p: (-p.frame_keep, -p.kilobytes, p.lossy, -p.colors))


def predict_gif(
    path: Path | str,
    models: LoadedModels,
    *,
    engines: Iterable[str] | None = None,
    target_kb: float | None = None,
    variants: Iterable[tuple[int, int, float]] | None = None,
    clip: ClipScorer | None = None,
    limits: DecodeLimits = DEFAULT_LIMITS,
) -> list[Prediction]:
    """Predicted size curves of the GIF at ``path``, one ``Prediction`` per engine (sorted).

    ``variants`` are (lossy, colors, frame_keep) triples; by default each engine's trained
    lossy levels × ``DEFAULT_COLORS`` × ``DEFAULT_FRAME_KEEP``. With ``target_kb`` each
    prediction carries a ``pick`` (see ``pick_variant``). Raises ``BadGifError`` for a bad file.
    """
    chosen = models.engines if engines is None else tuple(dict.fromkeys(engines))
    missing = [e for e in chosen if e not in models.bundles]
    if missing:
        raise ValueError(f"no model loaded for {missing}; loaded: {list(models.engines)}")
    if tuple(models.card.gif_features) != GIF_FEATURES:
        raise ValueError("the models' GIF inputs differ from this code's GIF_FEATURES")
    trained_clip = models.card.facts.get("clip_models")  # None: a card older than the fact
    if trained_clip == []:  # the models never saw a CLIP score: computing one is wasted time
        clip = None
    inputs = gif_inputs(path, clip=clip, limits=limits)
    notes = version_notes(models.card.facts.get("features_version")) + clip_notes(
        trained_clip, inputs
    )
    row = np.array([[inputs[n] for n in GIF_FEATURES]], dtype=np.float64)
    fixed = None if variants is None else [(int(a), int(b), float(c)) for a, b, c in variants]
    if fixed is not None and not fixed:
        raise ValueError("variants is empty")

    predictions = []
    for engine in sorted(chosen):
        grid = (
            fixed
            if fixed is not None
            else variant_grid(lossy=models.card.engines[engine]["lossy_levels"])
        )
        x_variants = np.array(grid, dtype=np.float64)
        kb = models.predict_kilobytes(engine, np.repeat(row, len(grid), axis=0), x_variants)
        points = monotone_in_lossy(
            [CurvePoint(lv, c, f, float(k)) for (lv, c, f), k in zip(grid, kb, strict=True)]
        )
        pick = None if target_kb is None else pick_variant(points, target_kb)
        predictions.append(Prediction(engine, tuple(points), pick, target_kb, notes))
    return predictions


def version_notes(trained_version: int | None) -> tuple[str, ...]:
    """A warning when the models were trained on features of another ``FEATURES_VERSION``
    (``trained_version``: the card's ``facts["features_version"]``, None before it was kept:
    version 1): this code computes some inputs differently from the ones they learnt."""
    if (trained_version or 1) == FEATURES_VERSION:
        return ()
    return (
        f"the models were trained on features version {trained_version or 1}, this code computes "
        f"version {FEATURES_VERSION} (docs/features.md): run `python -m giflab run` and "
        "`python -m giflab train` again for predictions from matching inputs",
    )


def clip_notes(trained_clip: Sequence[str] | None, inputs: dict[str, float]) -> tuple[str, ...]:
    """A warning when the models were trained with CLIP scores (``trained_clip``: the card's
    ``facts["clip_models"]``) but this GIF has none: the trees then take their missing-value
    branches, which were learnt only from the training GIFs that lacked scores."""
    if not trained_clip or not all(np.isnan(inputs[n]) for n in CLIP_FEATURES):
        return ()
    return (
        f"the models were trained with CLIP scores ({', '.join(trained_clip)}) but none were "
        "computed here (CLIP off or its weights missing: `python -m giflab doctor`); "
        "predictions use the models' missing-value branches and are less accurate",
    )
