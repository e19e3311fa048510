"""Outlier and correlation reports on a real training table, with injected faults."""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from giflab.dataset import build_training_table, correlation_report, load_tables, outlier_report
from giflab.dataset.columns import GIF_FEATURES
from giflab.dataset.reports import OUTLIER_COLUMNS, outlier_summary
from giflab.features import CLIP_FEATURES
from tests.dataset_db import dataset_db

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def table():
    return build_training_table(*load_tables(dataset_db()))


def _render(table: pd.DataFrame, lossy: int, colors: int, frame_keep: float) -> int:
    """Index of the median-sized render at a variant (a typical render to corrupt)."""
    peers = table.query("lossy == @lossy and colors == @colors and frame_keep == @frame_keep")
    ratio = peers["kilobytes"] / peers["orig_kilobytes"]
    return int((ratio - ratio.median()).abs().idxmin())


def _findings(report: pd.DataFrame, table: pd.DataFrame, i: int, check: str) -> pd.DataFrame:
    row = table.loc[i]
    return report[
        (report["check"] == check)
        & (report["gif_sha"] == row["gif_sha"])
        & (report["lossy"] == row["lossy"])
        & (report["colors"] == row["colors"])
        & (report["frame_keep"] == row["frame_keep"])
    ]


def test_an_oversized_render_is_flagged_with_its_reason(table):
    i = _render(table, 0, 16, 1.0)
    assert _findings(outlier_report(table), table, i, "size_ratio").empty
    bad = table.copy()
    bad.loc[i, "kilobytes"] *= 100  # e.g. frames written unoptimised
    hit = _findings(outlier_report(bad), bad, i, "size_ratio")
    assert len(hit) == 1
    reason = hit["reason"].iloc[0]
    assert "gifsicle lossy=0 colors=16 frame_keep=1" in reason
    assert "x the original size where peers give" in reason
    assert hit["score"].iloc[0] > 3.5
    assert hit["value"].iloc[0] == pytest.approx(
        bad.loc[i, "kilobytes"] / bad.loc[i, "orig_kilobytes"]
    )


def test_a_lossy_render_bigger_than_its_source_is_flagged(table):
    i = _render(table, 80, 16, 1.0)
    bad = table.copy()
    bad.loc[i, "kilobytes"] = bad.loc[i, "orig_kilobytes"] * 1.3
    hit = _findings(outlier_report(bad), bad, i, "larger_than_original")
    assert len(hit) == 1
    assert "1.30x the original's" in hit["reason"].iloc[0]
    assert "lossy >= 60" in hit["reason"].iloc[0]


def test_an_ssim_far_below_peers_is_flagged(table):
    i = _render(table, 0, 256, 1.0)
    bad = table.copy()
    bad.loc[i, "ssim_mean"] = 0.2
    hit = _findings(outlier_report(bad), bad, i, "ssim_low")
    assert len(hit) == 1
    assert "ssim_mean 0.200 far below the peers' median" in hit["reason"].iloc[0]
    assert hit["peer_median"].iloc[0] > 0.5


def test_a_feature_at_its_range_bound_is_flagged(table):
    bad = table.copy()
    sha = bad.loc[0, "gif_sha"]
    bad.loc[bad["gif_sha"] == sha, "text_density"] = 1.0
    hit = outlier_report(bad).query("check == 'feature_at_bound' and gif_sha == @sha")
    assert hit["reason"].str.startswith("text_density = 1 sits at the upper bound 1").any()
    assert (hit["level"] == "gif").all()


def test_outlier_report_is_deterministic_and_shaped(table):
    report = outlier_report(table)
    assert list(report.columns) == OUTLIER_COLUMNS
    assert report["reason"].str.len().min() > 20
    again = outlier_report(table.sample(frac=1, random_state=5))
    pd.testing.assert_frame_equal(report, again)
    summary = outlier_summary(report)
    assert summary["findings"].sum() == len(report)


def test_correlation_matrix_and_heatmap(table):
    matrix, png = correlation_report(table)
    assert "size_ratio_gifsicle" in matrix.columns
    assert set(CLIP_FEATURES) <= set(matrix.attrs["dropped"])  # NULL without CLIP weights
    assert set(matrix.columns) <= set(GIF_FEATURES) | {"size_ratio_gifsicle"}
    values = matrix.to_numpy()
    np.testing.assert_allclose(values, values.T, equal_nan=True)
    np.testing.assert_allclose(np.diag(values), 1.0)
    assert np.nanmax(np.abs(values)) <= 1.0 + 1e-12
    assert png.startswith(PNG_SIGNATURE)
    with Image.open(io.BytesIO(png)) as image:
        image.verify()
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.width > 300 and image.height > 300
        assert len(set(image.convert("RGB").getdata())) > 10  # a drawn heatmap, not a blank page
    assert correlation_report(table.sample(frac=1, random_state=2))[1] == png
