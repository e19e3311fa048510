"""Which frames a frame-keep ratio keeps, and their delays: one rule shared by every engine."""

from __future__ import annotations

from collections.abc import Sequence

from giflab.frames import browser_delay_ms


def frame_keep_indices(n_frames: int, ratio: float) -> list[int]:
    """Evenly spaced source indices to keep: ``round(n * ratio)`` frames (at least 1), first kept.

    Index ``j`` of ``k`` kept frames is ``floor(j * n / k)``: deterministic, strictly increasing.
    """
    if n_frames < 1:
        raise ValueError("a GIF has at least one frame")
    if not 0 < ratio <= 1:
        raise ValueError(f"frame-keep ratio must be in (0, 1], got {ratio}")
    k = max(1, min(n_frames, round(n_frames * ratio)))
    return [j * n_frames // k for j in range(k)]


def kept_delays(delays_ms: Sequence[int], kept: Sequence[int]) -> list[int]:
    """Delay of each kept frame: its own plus those of the dropped frames after it.

    Delays are taken as browsers show them (0 and 10 ms count as 100 ms), so the animation
    keeps its on-screen duration; GIF stores centiseconds, so values are rounded to 10 ms.
    """
    shown = [browser_delay_ms(d) for d in delays_ms]
    ends = list(kept[1:]) + [len(shown)]
    return [int(round(sum(shown[k:end]) / 10.0)) * 10 for k, end in zip(kept, ends, strict=True)]
