"""Visual features of a GIF: the only input of GifLab's size-prediction models.

``extract_features(path)`` decodes the GIF once, samples frames by fixed rules
(``giflab.features.sampling``) and returns the 79 values of ``FEATURE_NAMES`` in a fixed order:
9 spatial, 7 temporal, 57 compressibility (the last 55, ``run_length``, ``lzw_size_ratio``, the
three ``lzw_lossy_ratio_<L>``, the twelve ``lzw_colors_ratio_<C>_<L>``, nine
``ffmpeg_colors_ratio_<C>_<L>`` (lossy 0, 60, 120), the four ``imagemagick_fuzz_ratio_<L>``, the
four ``gifski_quality_ratio_<L>``, the twelve ``imagemagick_colors_ratio_<C>_<L>`` and six more
``ffmpeg_colors_ratio_<C>_<L>`` (lossy 80, 100) and three more ``gifski_quality_ratio_<L>`` (40, 80,
100), are GifLab's own) and 6 CLIP scores. Definitions, ranges and evidence: docs/features.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from giflab.features.clip import CLIP_FEATURES, ClipScorer, ClipUnavailable
from giflab.features.compressibility import (
    COMPRESSIBILITY_FEATURES,
    LZW_RATIO_BOUND,
    compressibility_features,
)
from giflab.features.sampling import sample_gif
from giflab.features.spatial import SPATIAL_FEATURES, spatial_features
from giflab.features.temporal import TEMPORAL_FEATURES, temporal_features
from giflab.frames import DEFAULT_LIMITS, DecodeLimits

CLASSICAL_FEATURES = SPATIAL_FEATURES + TEMPORAL_FEATURES + COMPRESSIBILITY_FEATURES
FEATURE_NAMES = CLASSICAL_FEATURES + CLIP_FEATURES
# Stored with every features row. Raise it when a classical feature's values change for the same
# GIF: ``giflab run`` recomputes the features of rows stored by an older version (NULL: 1).
# 2: lzw_size_ratio counts LZW exactly, with gifsicle's code sizes (giflab.features.lzw).
# 3: lzw_lossy_ratio_20/60/120, gifsicle's lossy LZW counted (giflab.features.lossy_lzw).
# 4: lzw_colors_ratio_<C>_<L>, gifsicle's --colors emulated (giflab.features.quantize).
# 5: ffmpeg_colors_ratio_<C>_<L>, GifLab's ffmpeg engine emulated (giflab.features.ffmpeg_probe).
# 6: imagemagick_fuzz_ratio_<L>, the ImageMagick engine's -fuzz (giflab.features.fuzz_probe).
# 7: gifski_quality_ratio_<L>, the gifski engine's --quality (giflab.features.gifski_probe).
# 8: imagemagick_colors_ratio_<C>_<L>, the ImageMagick engine's -colors
#    (giflab.features.imagemagick_colors).
# 9: imagemagick_fuzz_ratio_<L> and imagemagick_colors_ratio_<C>_<L> count the comments and
#    profiles ImageMagick copies onto every frame (giflab.features.fuzz_probe).
# 10: the same, with -layers Optimize's crop against the previous frame and its "previous"
#     disposal emulated, each level's stored images budgeted on their own.
# 11: ffmpeg_colors_ratio_<C>_<L> counts repeated frames exactly and outside the budget's stride
#     (giflab.features.ffmpeg_probe).
# 12: gifski_quality_ratio_<L> stores every image at the frame's full width (no left trim), and
#     is probed at lossy 40, 80 and 100 too.
# 13: lzw_size_ratio and lzw_colors_ratio_<C>_<L> count what gifsicle writes besides the pixels
#     (loop extension, comments, other extensions, the first image's control block only when
#     needed, 2-entry tables) and its layout rules (repeated frames without delays kept as 1x1
#     images, the first image within its own box) (giflab.features.lzw.kept_metadata);
#     imagemagick_fuzz_ratio_<L> and imagemagick_colors_ratio_<C>_<L> ImageMagick's: its loop
#     extension only when the source has one, its gamma extension before an all-grey first
#     frame, the first image cut to its pixels that are not transparent, 2-entry tables;
#     gifski_quality_ratio_<L> gifski's 2-entry global table, its loop extension only when the
#     source has one, 2-entry local tables.
# 14: lzw_size_ratio, lzw_lossy_ratio_<L> and lzw_colors_ratio_<C>_<L> store a later frame's
#     crop the three ways gifsicle -O3 tries (colours only ever unchanged made transparent, then
#     its runs heuristics) instead of "every unchanged pixel transparent or none".
# 15: gifski_quality_ratio_<L> runs gifski 1.7's denoiser (five-frame look-ahead, median of a
#     stay, the threshold alternating between two colour cohorts, importance) and stores what it
#     marks important, repeated frames included (giflab.features.gifski_probe).
# 16: gifski_quality_ratio_<L> builds each palette from what libimagequant 4.0 counts: pixels
#     weighed by their importance, no weight for the transparent ones (the C release's 2000
#     per transparent pixel thinned a mostly cleared crop's palette); no target-quality fudge.
# 17: gifski_quality_ratio_<L> lets a frame with something new redraw a stay's second-chance
#     pixels in every row (not only the changed rows), and counts 8 M changed pixels per stride
#     (2 M skipped too many of the frames that redraw).
FEATURES_VERSION = 17

# Closed bounds every value lies in (documented per feature in docs/features.md).
FEATURE_RANGES: dict[str, tuple[float, float]] = {
    **dict.fromkeys(FEATURE_NAMES, (0.0, 1.0)),
    "entropy": (0.0, 8.0),
    "frame_similarity": (-1.0, 1.0),
    "inter_frame_mse_std": (0.0, 0.5),
    "lzw_size_ratio": (-LZW_RATIO_BOUND, LZW_RATIO_BOUND),
    **{
        name: (-LZW_RATIO_BOUND, LZW_RATIO_BOUND)
        for name in COMPRESSIBILITY_FEATURES
        if name.startswith(
            (
                "lzw_lossy_ratio_",
                "lzw_colors_ratio_",
                "ffmpeg_colors_ratio_",
                "imagemagick_fuzz_ratio_",
                "gifski_quality_ratio_",
                "imagemagick_colors_ratio_",
            )
        )
    },
}

__all__ = [
    "CLASSICAL_FEATURES",
    "CLIP_FEATURES",
    "COMPRESSIBILITY_FEATURES",
    "FEATURE_NAMES",
    "FEATURES_VERSION",
    "FEATURE_RANGES",
    "SPATIAL_FEATURES",
    "TEMPORAL_FEATURES",
    "ClipScorer",
    "ClipUnavailable",
    "FeatureResult",
    "extract_features",
]


@dataclass(frozen=True)
class FeatureResult(Mapping):
    """Feature values by name (``FEATURE_NAMES`` order); CLIP values are None when unavailable.

    ``clip_missing_reason`` says why CLIP values are None. ``frames`` records which frame
    indices each family used, for provenance.
    """

    values: dict[str, float | None]
    clip_missing_reason: str | None = None
    n_frames: int = 0
    frames: dict[str, tuple[int, ...]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> float | None:
        return self.values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(FEATURE_NAMES)

    def __len__(self) -> int:
        return len(FEATURE_NAMES)

    def as_dict(self) -> dict[str, float | None]:
        """All values plus ``clip_missing_reason``, ready for a table row."""
        return {
            **{n: self.values[n] for n in FEATURE_NAMES},
            "clip_missing_reason": self.clip_missing_reason,
        }


def extract_features(
    path: Path | str, clip: ClipScorer | None = None, *, limits: DecodeLimits = DEFAULT_LIMITS
) -> FeatureResult:
    """All ``FEATURE_NAMES`` of the GIF at ``path``, from one decode.

    Raises ``BadGifError`` for an unreadable file. CLIP values are None with a reason when
    ``clip`` is None or its weights are unavailable.
    """
    sample = sample_gif(path, limits, with_clip=clip is not None)
    values: dict[str, float | None] = {}
    values.update(spatial_features(sample))
    values.update(temporal_features(sample))
    values.update(compressibility_features(sample))
    reason = None
    if clip is None:
        reason = "no CLIP scorer configured"
    else:
        try:
            values.update(clip.score(sample.clip_images()))
        except ClipUnavailable as e:
            reason = e.reason
    if reason is not None:
        values.update(dict.fromkeys(CLIP_FEATURES))
    return FeatureResult(
        values=values,
        clip_missing_reason=reason,
        n_frames=sample.n_frames,
        frames={
            "spatial": tuple(sample.spatial),
            "temporal_pairs": tuple(sample.pairs),
            "clip": tuple(sample.clip),
        },
    )
