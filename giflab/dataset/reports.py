"""Data-quality reports on the training table: outliers with a reason, and feature correlations.

Outliers are judged against peers — the renders of the same engine and variant (lossy, colours,
frame-keep) of other GIFs — with the robust z-score of Iglewicz & Hoaglin (1993):
``z = 0.6745 (x - median) / MAD``, flagged when ``|z| > 3.5``. Medians and MADs ignore the few
extreme values they are meant to find, unlike a mean and standard deviation.
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from giflab.dataset.columns import GIF_FEATURES
from giflab.features import FEATURE_NAMES, FEATURE_RANGES

PEER_COLUMNS = ["engine", "lossy", "colors", "frame_keep"]
Z_THRESHOLD = 3.5
MIN_PEERS = 5  # fewer renders than this in a group: no median to compare with
HIGH_LOSSY = 60  # at or above this lossy level, a render bigger than its source is suspect
SIZE_MIN_FACTOR = 1.5  # a size outlier must also be this many times off its peers' median
SSIM_MIN_GAP = 0.15  # an SSIM outlier must also be this far below its peers' median
BOUND_SHARE = 0.2  # a feature at a range bound is noted when fewer GIFs than this share it

OUTLIER_COLUMNS = [
    "level",
    "check",
    "gif_sha",
    "orig_filename",
    "split",
    "engine",
    "lossy",
    "colors",
    "frame_keep",
    "value",
    "peer_median",
    "score",
    "reason",
]


def _variant(row: pd.Series) -> str:
    return f"{row.engine} lossy={row.lossy} colors={row.colors} frame_keep={row.frame_keep:g}"


def _robust_z(table: pd.DataFrame, values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """Robust z-score of each value within its peer group, and the group median (NaN if few).

    When more than half the peers share one value the MAD is 0; the mean absolute deviation
    (times 1.253314, its ratio to the standard deviation) stands in, as Iglewicz & Hoaglin advise.
    """
    groups = [table[c] for c in PEER_COLUMNS]
    median = values.groupby(groups).transform("median")
    deviation = (values - median).abs()
    mad = deviation.groupby(groups).transform("median")
    mean_ad = deviation.groupby(groups).transform("mean")
    scale = (mad / 0.6745).where(mad > 0, 1.253314 * mean_ad)
    count = values.groupby(groups).transform("count")
    usable = (count >= MIN_PEERS) & (scale > 0)
    z = ((values - median) / scale).where(usable)
    return z, median.where(count >= MIN_PEERS)


def _findings(table, mask, check, value, median, score, reason) -> pd.DataFrame:
    """The renders of ``table`` where ``mask`` holds, as report rows; ``reason(row, v, m, z)``."""
    hits = table[mask.fillna(False).to_numpy(dtype=bool)]
    if median is None:
        median = pd.Series(np.nan, index=table.index)
    out = hits[["gif_sha", "orig_filename", "split", *PEER_COLUMNS]].copy()
    out.insert(0, "check", check)
    out.insert(0, "level", "render")
    out["value"], out["peer_median"], out["score"] = (
        value[hits.index],
        median[hits.index],
        score[hits.index],
    )
    out["reason"] = [
        reason(row, v, m, z)
        for row, v, m, z in zip(
            hits.itertuples(index=False),
            out["value"],
            out["peer_median"],
            out["score"],
            strict=True,
        )
    ]
    return out


def _feature_bound_rows(table: pd.DataFrame) -> pd.DataFrame:
    gifs = table.drop_duplicates("gif_sha").set_index("gif_sha")
    rows = []
    for name in FEATURE_NAMES:
        values = gifs[name].astype("float64")
        lo, hi = FEATURE_RANGES[name]
        for side, bound, at in (("lower", lo, values <= lo), ("upper", hi, values >= hi)):
            share = at.sum() / max(values.notna().sum(), 1)
            if not at.any() or share >= BOUND_SHARE:
                continue
            for sha in at[at].index:
                rows.append(
                    {
                        "level": "gif",
                        "check": "feature_at_bound",
                        "gif_sha": sha,
                        "orig_filename": gifs.at[sha, "orig_filename"],
                        "split": gifs.at[sha, "split"],
                        "value": float(values[sha]),
                        "score": float(share),
                        "reason": f"{name} = {values[sha]:g} sits at the {side} bound {bound:g} of"
                        f" its range [{lo:g}, {hi:g}] (only {at.sum()} of {values.notna().sum()}"
                        " GIFs do): a degenerate input, or a feature that saturates",
                    }
                )
    return pd.DataFrame(rows)


def outlier_report(table: pd.DataFrame) -> pd.DataFrame:
    """Renders and GIFs that look wrong, one row per finding, with a human-readable ``reason``.

    Checks: ``size_ratio`` (kilobytes/orig_kilobytes with a robust |z| > 3.5 among its peers and
    1.5x off their median), ``larger_than_original`` (lossy >= 60 yet bigger than the source),
    ``ssim_low`` (robust z < -3.5 and 0.15 below the peers' median), ``feature_at_bound`` (a
    feature at the edge of its range that fewer than 20 % of GIFs share).
    Columns: ``OUTLIER_COLUMNS``; rows sorted by GIF, check and variant.
    """
    table = table.reset_index(drop=True)
    ratio = (table["kilobytes"] / table["orig_kilobytes"]).astype("float64")
    log_ratio = np.log(ratio)
    z_size, med_size = _robust_z(table, log_ratio)
    z_ssim, med_ssim = _robust_z(table, table["ssim_mean"].astype("float64"))
    found = [
        _findings(
            table,
            (z_size.abs() > Z_THRESHOLD) & ((log_ratio - med_size).abs() > np.log(SIZE_MIN_FACTOR)),
            "size_ratio",
            ratio,
            np.exp(med_size),
            z_size,
            lambda r, v, m, z: (
                f"{_variant(r)}: {v:.3g}x the original size where peers give"
                f" {m:.3g}x (robust z {z:+.1f}, beyond ±{Z_THRESHOLD})"
            ),
        ),
        _findings(
            table,
            (table["lossy"] >= HIGH_LOSSY) & (ratio > 1),
            "larger_than_original",
            ratio,
            None,
            ratio,
            lambda r, v, m, z: (
                f"{_variant(r)}: the render is {v:.2f}x the original's"
                f" {r.orig_kilobytes:g} KB despite lossy >= {HIGH_LOSSY}"
            ),
        ),
        _findings(
            table,
            (z_ssim < -Z_THRESHOLD) & (table["ssim_mean"] < med_ssim - SSIM_MIN_GAP),
            "ssim_low",
            table["ssim_mean"].astype("float64"),
            med_ssim,
            z_ssim,
            lambda r, v, m, z: (
                f"{_variant(r)}: ssim_mean {v:.3f} far below the peers' median"
                f" {m:.3f} (robust z {z:+.1f}): far more visible loss than other GIFs here"
            ),
        ),
        _feature_bound_rows(table),
    ]
    found = [f for f in found if len(f)]
    if not found:
        return pd.DataFrame(columns=OUTLIER_COLUMNS)
    report = pd.concat(found, ignore_index=True).reindex(columns=OUTLIER_COLUMNS)
    return report.sort_values(
        ["gif_sha", "check", "engine", "frame_keep", "colors", "lossy"],
        kind="mergesort",
        na_position="first",
        ignore_index=True,
    )


def correlation_inputs(table: pd.DataFrame) -> pd.DataFrame:
    """One row per GIF: ``GIF_FEATURES`` and, per engine, ``size_ratio_<engine>``.

    The size ratio of a GIF for an engine is the median over its renders by that engine of
    kilobytes / orig_kilobytes (the variant matrix is the same for every GIF, so medians compare).
    """
    ratio = (table["kilobytes"] / table["orig_kilobytes"]).astype("float64")
    targets = ratio.groupby([table["gif_sha"], table["engine"]]).median().unstack("engine")
    targets.columns = [f"size_ratio_{e}" for e in targets.columns]
    gifs = table.drop_duplicates("gif_sha").set_index("gif_sha")[list(GIF_FEATURES)]
    joined = gifs.astype("float64").join(targets[sorted(targets.columns)])
    return joined.sort_index()


def correlation_report(table: pd.DataFrame, method: str = "spearman") -> tuple[pd.DataFrame, bytes]:
    """Correlation matrix of features and size-ratio targets over GIFs, and its heatmap (PNG).

    Columns without two distinct values (e.g. CLIP scores stored as NULL) are left out and
    listed in ``matrix.attrs["dropped"]``. Spearman (rank) correlation by default: size ratios
    are skewed, and monotone relations are what a tree model uses.
    """
    data = correlation_inputs(table)
    varying = [c for c in data.columns if data[c].nunique(dropna=True) >= 2]
    matrix = data[varying].corr(method=method, min_periods=3)
    matrix.attrs["dropped"] = [c for c in data.columns if c not in varying]
    matrix.attrs["gifs"] = len(data)
    return matrix, _heatmap_png(matrix, f"{method} correlation over {len(data)} GIFs")


def _heatmap_png(matrix: pd.DataFrame, title: str) -> bytes:
    """The matrix drawn as a heatmap, PNG bytes (Agg; no timestamp or version in the file)."""
    n = max(len(matrix.columns), 1)
    size = 2.5 + 0.28 * n
    fig = Figure(figsize=(size + 1.5, size), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    image = ax.imshow(matrix.to_numpy(dtype="float64"), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(len(matrix.columns)), matrix.columns, rotation=90, fontsize=7)
    ax.set_yticks(range(len(matrix.index)), matrix.index, fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def outlier_summary(report: pd.DataFrame) -> pd.DataFrame:
    """The outlier report per GIF and check: how many renders were flagged, and the first reason."""
    if report.empty:
        return pd.DataFrame(columns=["gif_sha", "orig_filename", "check", "findings", "reason"])
    grouped = report.groupby(["gif_sha", "check"], sort=True)
    return grouped.agg(
        orig_filename=("orig_filename", "first"),
        findings=("reason", "size"),
        reason=("reason", "first"),
    ).reset_index()[["gif_sha", "orig_filename", "check", "findings", "reason"]]
