"""Pictures of a training run, as PNG bytes: curves, error by lossy level, feature importance.

Drawn with matplotlib's Agg canvas on a fresh ``Figure`` (no pyplot state, safe in threads) and
saved without a timestamp or software tag, so the same inputs give the same bytes.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from giflab.prediction.evaluate import CURVE_KEY, PREDICTORS

TOP_FEATURES = 15


def _png(fig: Figure) -> bytes:
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def _empty(title: str) -> bytes:
    fig = Figure(figsize=(4, 2), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.text(0.5, 0.5, "no data", ha="center", va="center")
    ax.set_axis_off()
    ax.set_title(title, fontsize=9)
    return _png(fig)


def example_gifs(predictions: pd.DataFrame, engine: str, n: int) -> list[str]:
    """Up to ``n`` GIFs of ``engine`` spread over source size (smallest, largest, between)."""
    gifs = predictions[predictions["engine"] == engine].drop_duplicates("gif_sha")
    gifs = gifs.sort_values(["orig_kilobytes", "gif_sha"], kind="mergesort")["gif_sha"].tolist()
    if len(gifs) <= n:
        return gifs
    picks = np.unique(np.round(np.linspace(0, len(gifs) - 1, n)).astype(int))
    return [gifs[i] for i in picks]


def curves_png(predictions: pd.DataFrame, gifs_per_engine: int = 4) -> bytes:
    """Actual (solid) vs predicted (dashed) kilobytes over lossy, a few GIFs per engine.

    ``predictions`` is ``Evaluation.predictions``; one panel per GIF, one line pair per
    (colours, frame_keep) curve.
    """
    engines = sorted(predictions["engine"].dropna().unique())
    if not engines:
        return _empty("predicted vs actual curves")
    cols = max(len(example_gifs(predictions, e, gifs_per_engine)) for e in engines)
    fig = Figure(figsize=(3.2 * cols, 2.8 * len(engines)), dpi=100)
    FigureCanvasAgg(fig)
    for row, engine in enumerate(engines):
        for col, sha in enumerate(example_gifs(predictions, engine, gifs_per_engine)):
            ax = fig.add_subplot(len(engines), cols, row * cols + col + 1)
            rows = predictions[(predictions["engine"] == engine) & (predictions["gif_sha"] == sha)]
            for i, (key, curve) in enumerate(rows.groupby(CURVE_KEY[2:], sort=True)):
                curve = curve.sort_values("lossy")
                color = f"C{i % 10}"
                label = f"c{key[0]:g} f{key[1]:g}"
                ax.plot(curve["lossy"], curve["kilobytes"], "o-", color=color, ms=3, label=label)
                ax.plot(curve["lossy"], curve["predicted_kilobytes"], "--", color=color)
            name = str(rows["orig_filename"].iloc[0])
            ax.set_title(f"{engine}: {name[:28]}", fontsize=7)
            ax.set_xlabel("lossy", fontsize=7)
            ax.set_ylabel("KB", fontsize=7)
            ax.tick_params(labelsize=6)
            ax.legend(fontsize=5, ncol=2)
    fig.suptitle("actual (solid) vs predicted (dashed)", fontsize=8)
    return _png(fig)


def error_by_level_png(errors: pd.DataFrame) -> bytes:
    """Median (solid) and p90 (dotted) absolute % error by lossy level, model vs baseline.

    ``errors`` is ``Evaluation.errors``; one panel per engine.
    """
    engines = sorted(errors["engine"].dropna().unique())
    if not engines:
        return _empty("error by lossy level")
    fig = Figure(figsize=(4.5 * len(engines), 3.2), dpi=100)
    FigureCanvasAgg(fig)
    for i, engine in enumerate(engines):
        ax = fig.add_subplot(1, len(engines), i + 1)
        for j, predictor in enumerate(PREDICTORS):
            rows = errors[(errors["engine"] == engine) & (errors["predictor"] == predictor)]
            rows = rows.sort_values("lossy")
            color = f"C{j}"
            ax.plot(
                rows["lossy"], rows["median_ape"], "o-", color=color, label=f"{predictor} median"
            )
            ax.plot(rows["lossy"], rows["p90_ape"], "s:", color=color, label=f"{predictor} p90")
        n_gifs = int(errors.loc[errors["engine"] == engine, "n_gifs"].max())
        ax.set_title(f"{engine} ({n_gifs} GIFs)", fontsize=9)
        ax.set_xlabel("lossy", fontsize=8)
        ax.set_ylabel("absolute error, %", fontsize=8)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=6)
    return _png(fig)


def gain_shares(bundle: Mapping[str, Any]) -> pd.Series:
    """Each input's share of the total split gain (averaged over a per-level bundle's models)."""
    names = list(bundle["feature_names"])
    shares = []
    for regressor in bundle["regressors"].values():
        # Trained on arrays, the booster names inputs f0, f1, ... in feature_names order.
        score = regressor.get_booster().get_score(importance_type="total_gain")
        gains = np.array([score.get(f"f{i}", score.get(name, 0.0)) for i, name in enumerate(names)])
        total = gains.sum()
        shares.append(gains / total if total > 0 else gains)
    return pd.Series(np.mean(shares, axis=0), index=names).sort_values(ascending=False)


def importance_png(bundles: Mapping[str, Any], top: int = TOP_FEATURES) -> bytes:
    """Share of total gain of the ``top`` inputs, one panel per engine.

    ``bundles`` maps engine → bundle (or anything with ``.bundle``, e.g. ``TrainedEngine``).
    """
    engines = sorted(bundles)
    if not engines:
        return _empty("feature importance")
    fig = Figure(figsize=(4.2 * len(engines), 0.22 * top + 1.2), dpi=100)
    FigureCanvasAgg(fig)
    for i, engine in enumerate(engines):
        bundle = getattr(bundles[engine], "bundle", bundles[engine])
        shares = gain_shares(bundle).head(top)[::-1]
        ax = fig.add_subplot(1, len(engines), i + 1)
        ax.barh(range(len(shares)), shares.to_numpy(), color="C0")
        ax.set_yticks(range(len(shares)), shares.index, fontsize=7)
        ax.set_xlabel("share of total gain", fontsize=8)
        ax.set_title(f"{engine} ({bundle['formulation']})", fontsize=9)
    return _png(fig)
