"""Evaluating curve models on held-out corpus GIFs: errors, the baseline, the hit rate, plots."""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from giflab.dataset import fit_scaler
from giflab.prediction.config import TrainConfig
from giflab.prediction.evaluate import (
    ERROR_COLUMNS,
    PREDICTION_COLUMNS,
    baseline_kilobytes,
    baseline_ratios,
    evaluate,
    pick_hits,
)
from giflab.prediction.plots import curves_png, error_by_level_png, gain_shares, importance_png
from giflab.prediction.train import train_all
from tests.training_db import LOSSY, training_table

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
LEVELS = np.array([0.0, 40.0, 80.0, 120.0])
STEEP = np.array([100.0, 80.0, 60.0, 50.0])


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return training_table()


@pytest.fixture(scope="module")
def scaler(table):
    return fit_scaler(table)


@pytest.fixture(scope="module")
def models(table, scaler):
    """The default training run on the corpus table (read-only in the tests)."""
    return train_all(table, scaler, TrainConfig())


@pytest.fixture(scope="module")
def reports(table, scaler, models):
    return {split: evaluate(table, scaler, models, split) for split in ("val", "test")}


@pytest.mark.parametrize(
    ("predicted", "hits"),
    [
        (STEEP, [True] * 4),  # perfect
        (STEEP * 1.10, [True] * 4),  # 10 % high: one level too lossy at most, still in tolerance
        (STEEP * 0.70, [True, False, False, False]),  # 30 % low: picks too big a file
        (STEEP * 1.60, [False, False, True, True]),  # 60 % high: far too lossy for big targets
    ],
)
def test_pick_hits_on_a_steep_curve(predicted, hits):
    assert pick_hits(LEVELS, STEEP, predicted).tolist() == hits
    order = [2, 0, 3, 1]  # the order of the rows does not matter
    assert pick_hits(LEVELS[order], STEEP[order], predicted[order]).tolist() == hits


def test_pick_hits_on_a_flat_curve_accepts_any_level():
    # A GIF lossy cannot shrink: every level is as good, so a slight overestimate is no miss.
    flat = np.full(4, 10.0)
    assert pick_hits(LEVELS, flat, np.array([10.2, 10.1, 10.0, 9.9])).tolist() == [True] * 4
    # Nothing predicted small enough: the picker falls back to the most lossy level.
    assert pick_hits(LEVELS, flat, np.full(4, 12.0)).tolist() == [True] * 4
    assert pick_hits(LEVELS, STEEP, np.full(4, 200.0)).tolist() == [False, False, True, True]


def test_baseline_is_the_train_median_ratio_per_variant(table):
    ratios = baseline_ratios(table)
    train = table[table["split"] == "train"]
    for (engine, lossy, colors, keep), value in ratios.items():
        rows = train[
            (train["engine"] == engine)
            & (train["lossy"] == lossy)
            & (train["colors"] == colors)
            & (train["frame_keep"] == keep)
        ]
        assert value == pytest.approx(float(np.median(rows["kilobytes"] / rows["orig_kilobytes"])))
    assert len(ratios) == len(LOSSY) * 2
    test = table[table["split"] == "test"]
    expected = (
        test["orig_kilobytes"].to_numpy()
        * ratios.loc[
            list(test[["engine", "lossy", "colors", "frame_keep"]].itertuples(index=False))
        ].to_numpy()
    )
    np.testing.assert_allclose(baseline_kilobytes(test, ratios), expected)


def test_baseline_falls_back_for_variants_never_rendered_in_train(table):
    ratios = baseline_ratios(table)
    rows = table[table["split"] == "test"].head(3).assign(colors=7, lossy=40)
    level = ratios.xs(40, level="lossy").median()  # median over the engine's variants at 40
    np.testing.assert_allclose(baseline_kilobytes(rows, ratios), rows["orig_kilobytes"] * level)
    rows = rows.assign(lossy=55)  # no train render at this level at all
    np.testing.assert_allclose(
        baseline_kilobytes(rows, ratios), rows["orig_kilobytes"] * ratios.median()
    )
    assert np.isnan(baseline_kilobytes(rows.assign(engine="ghost"), ratios)).all()


@pytest.mark.parametrize("split", ["val", "test"])
def test_errors_are_medians_and_p90s_of_the_row_errors(table, reports, split):
    report = reports[split]
    rows = table[table["split"] == split]
    predictions = report.predictions
    assert list(predictions.columns) == PREDICTION_COLUMNS and len(predictions) == len(rows)
    np.testing.assert_allclose(
        predictions["model_ape"],
        100 * (predictions["predicted_kilobytes"] / predictions["kilobytes"] - 1).abs(),
    )
    assert list(report.errors.columns) == ERROR_COLUMNS
    assert len(report.errors) == len(LOSSY) * 2
    for record in report.errors.itertuples():
        at_level = predictions[predictions["lossy"] == record.lossy]
        ape = at_level[f"{record.predictor}_ape"]
        assert record.median_ape == pytest.approx(float(np.median(ape)))
        assert record.p90_ape == pytest.approx(float(np.percentile(ape, 90)))
        assert (record.n_rows, record.n_gifs) == (len(at_level), at_level["gif_sha"].nunique())
    summary = report.summary
    assert summary["split"] == split
    assert summary["n_gifs"] == rows["gif_sha"].nunique() > 0
    assert summary["model_median_ape"] == pytest.approx(np.median(predictions["model_ape"]))
    assert summary["baseline_p90_ape"] == pytest.approx(
        np.percentile(predictions["baseline_ape"], 90)
    )
    model_rows = report.errors[report.errors["predictor"] == "model"]
    assert summary["worst_level_median_ape"] == model_rows["median_ape"].max()
    assert summary["improvement"] == pytest.approx(
        summary["baseline_median_ape"] / summary["model_median_ape"]
    )
    assert summary["n_targets"] == len(rows)  # every curve has all four levels: one per render
    assert summary["engines"]["gifsicle"] == {
        k: v for k, v in summary.items() if k not in ("split", "engines")
    }


def test_hit_rate_counts_every_target_of_every_curve(reports):
    predictions = reports["test"].predictions
    hits = [
        pick_hits(
            curve["lossy"].to_numpy(float),
            curve["kilobytes"].to_numpy(float),
            curve["predicted_kilobytes"].to_numpy(float),
        )
        for _, curve in predictions.groupby(["gif_sha", "colors", "frame_keep"])
    ]
    assert reports["test"].summary["hit_rate"] == pytest.approx(np.concatenate(hits).mean())


def test_trained_on_real_gifs_the_model_beats_the_baseline(reports):
    for split, report in reports.items():
        summary = report.summary
        assert summary["model_median_ape"] < summary["baseline_median_ape"], split
        assert summary["improvement"] > 1
    test = reports["test"].summary
    assert test["model_p90_ape"] < test["baseline_p90_ape"]
    # Hit rates over val and test together: one split has ~24 targets, where one target is 4 %.
    n = sum(r.summary["n_targets"] for r in reports.values())
    model = sum(r.summary["hit_rate"] * r.summary["n_targets"] for r in reports.values()) / n
    base = sum(r.summary["baseline_hit_rate"] * r.summary["n_targets"] for r in reports.values())
    assert model >= base / n, (model, base / n, n)


def test_an_empty_split_gives_nan_numbers_not_an_error(table, scaler, models):
    report = evaluate(table, scaler, models, split="holdout")
    assert report.predictions.empty and report.errors.empty
    summary = report.summary
    assert summary["n_gifs"] == summary["n_rows"] == summary["n_targets"] == 0
    for key in ("model_median_ape", "baseline_p90_ape", "hit_rate", "improvement"):
        assert math.isnan(summary[key])
    assert summary["engines"]["gifsicle"]["n_rows"] == 0
    assert evaluate(table, scaler, {}, split="test").summary["n_rows"] == 0


def _png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(PNG_MAGIC)
    with Image.open(io.BytesIO(data)) as im:
        return im.size


def test_plots_are_deterministic_pngs(reports, models):
    report = reports["test"]
    pictures = {
        "curves": lambda: curves_png(report.predictions),
        "errors": lambda: error_by_level_png(report.errors),
        "importance": lambda: importance_png(models),
    }
    for name, draw in pictures.items():
        first, second = draw(), draw()
        assert first == second, name
        width, height = _png_size(first)
        assert width >= 300 and height >= 200, name
        assert b"tEXt" not in first and b"tIME" not in first, name  # no software tag, no time


def test_plots_of_nothing_are_still_pngs(table, scaler, models):
    empty = evaluate(table, scaler, models, split="holdout")
    for data in (
        curves_png(empty.predictions),
        error_by_level_png(empty.errors),
        importance_png({}),
    ):
        assert _png_size(data) == (400, 200)


def test_gain_shares_sum_to_one_and_name_inputs(models):
    shares = gain_shares(models["gifsicle"].bundle)
    assert shares.sum() == pytest.approx(1.0)
    assert set(shares.index) == set(models["gifsicle"].bundle["feature_names"])
    assert (shares >= 0).all() and shares.iloc[0] > 0.05
