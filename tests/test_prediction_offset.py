"""The LZW offset of the gifsicle model: GifLab's own estimate of gifsicle's output at every
lossy level and colour count from 16 up, plus a correction model; the formulation capped by it
below 16 colours; rebuilt from the native files."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import xgboost

from giflab.dataset import fit_scaler
from giflab.dataset.columns import GIF_FEATURES, MODEL_INPUTS
from giflab.features import FEATURE_NAMES
from giflab.features.sampling import (
    COLOR_PROBE_COLORS,
    FFMPEG_PROBE_COLORS,
    FFMPEG_PROBE_LEVELS,
    FUZZ_PROBE_COLORS,
    FUZZ_PROBE_LEVELS,
    GIFSKI_PROBE_LEVELS,
    LOSSY_PROBE_LEVELS,
)
from giflab.prediction import bundle as bundle_mod
from giflab.prediction.bundle import (
    OFFSET_COLORS,
    OFFSET_FEATURES,
    OFFSET_LEVELS,
    OFFSET_PROBES,
    lzw_offset,
    make_offset,
    offset_features,
)
from giflab.prediction.config import TrainConfig
from giflab.prediction.export import export_models
from giflab.prediction.load import load_models
from giflab.prediction.train import (
    _drop_correction_unless_it_helps,
    log_size_ratio,
    model_matrix,
    train_engine,
)
from tests.training_db import training_table

EARLY = {"min_val_gifs": 2}


@pytest.fixture(scope="module")
def corpus() -> tuple[pd.DataFrame, object, object]:
    """The corpus training table, its scaler, and gifsicle trained with the default offset."""
    table = training_table()
    scaler = fit_scaler(table)
    return table, scaler, train_engine(table, scaler, "gifsicle", TrainConfig(**EARLY))


class Unscaled:
    """A scaler that leaves every input as it is, so test rows hold raw values."""

    mean_ = np.zeros(len(GIF_FEATURES))
    scale_ = np.ones(len(GIF_FEATURES))


# The probes' log2 ratios, colour counts (256, 64, 16) by lossy levels (0, 20, 60, 120).
GRID = np.array(
    [
        [0.0, -0.2, -0.5, -0.9],
        [-0.4, -0.8, -1.0, -1.3],
        [-1.0, -1.1, -1.5, -1.6],
    ]
)


def rows(lossy, colors=256, size_ratio=-1.0, grid=GRID) -> np.ndarray:
    """Input rows at the given lossy levels (and colours), with these raw OFFSET_FEATURES."""
    x = np.zeros((len(lossy), len(MODEL_INPUTS)))
    values = [size_ratio, *np.asarray(grid, dtype=np.float64).ravel()]
    for name, value in zip(OFFSET_FEATURES, values, strict=True):
        x[:, MODEL_INPUTS.index(name)] = value
    x[:, -3] = lossy
    x[:, -2] = colors
    x[:, -1] = 1.0
    return x


def test_offset_reads_the_features_the_probes_write():
    assert OFFSET_LEVELS == (0, *LOSSY_PROBE_LEVELS)
    assert OFFSET_COLORS == COLOR_PROBE_COLORS
    assert set(OFFSET_FEATURES) <= set(FEATURE_NAMES)
    assert OFFSET_PROBES["ffmpeg"][1:] == (FFMPEG_PROBE_COLORS, FFMPEG_PROBE_LEVELS)
    assert set(offset_features("ffmpeg")) <= set(FEATURE_NAMES)
    assert OFFSET_PROBES["imagemagick"][1:] == (FUZZ_PROBE_COLORS, FUZZ_PROBE_LEVELS)
    assert set(offset_features("imagemagick")) <= set(FEATURE_NAMES)
    assert OFFSET_PROBES["gifski"][1:] == ((), GIFSKI_PROBE_LEVELS)
    assert offset_features("gifski") == (
        "lzw_size_ratio",
        *(f"gifski_quality_ratio_{lv}" for lv in GIFSKI_PROBE_LEVELS),
    )
    assert set(offset_features("gifski")) <= set(FEATURE_NAMES)
    assert "gifski" in TrainConfig().lzw_offset_engines
    assert "imagemagick" in TrainConfig().lzw_offset_engines


def colourless_rows(
    lossy, colors=256, size_ratio=-1.0, probes=(0.1, -0.2, -0.4, -0.6, -2.2 / 3, -2.6 / 3, -1.0)
) -> np.ndarray:
    """Model inputs whose gifski probes (lossy 0, 20, 40, 60, 80, 100, 120) are ``probes``."""
    x = np.zeros((len(lossy), len(MODEL_INPUTS)))
    names = offset_features("gifski")
    for name, value in zip(names, [size_ratio, *probes], strict=True):
        x[:, MODEL_INPUTS.index(name)] = value
    x[:, -3], x[:, -2], x[:, -1] = lossy, colors, 1.0
    return x


def test_an_offset_without_colour_counts_is_one_row_for_every_count():
    offset = make_offset(MODEL_INPUTS, Unscaled(), engine="gifski")
    assert offset["levels"] == list(GIFSKI_PROBE_LEVELS) and offset["colors"] == []
    assert offset["min_colors"] == 1  # every colour count is predicted through the offset
    got = lzw_offset(offset, colourless_rows([0, 10, 20, 40, 60, 90, 120, 200]))
    log2 = -1.0 + np.array([0.1, -0.05, -0.2, -0.4, -0.6, -0.8, -1.0, -1.0])
    np.testing.assert_allclose(got, np.log(2) * log2)
    # The same at every colour count; a probe that rises with loss is capped by the ones below.
    same = lzw_offset(
        offset,
        colourless_rows([0, 60, 120], colors=16, probes=(0.1, 0.3, 0.3, -0.6, -0.4, -0.2, -0.2)),
    )
    np.testing.assert_allclose(same, np.log(2) * (-1.0 + np.array([0.1, -0.6, -0.6])))


def test_offset_is_the_lossless_estimate_times_the_drop_interpolated_in_lossy():
    offset = make_offset(MODEL_INPUTS, Unscaled())
    got = lzw_offset(offset, rows([0, 20, 40, 60, 90, 120, 200]))
    log2 = -1.0 + np.array([0.0, -0.2, -0.35, -0.5, -0.7, -0.9, -0.9])  # 40: halfway 20..60
    np.testing.assert_allclose(got, np.log(2) * log2)


def test_offset_interpolates_colour_counts_in_log2_and_holds_outside_them():
    offset = make_offset(MODEL_INPUTS, Unscaled())
    colors = np.array([512, 256, 128, 64, 32, 16, 8, 2])
    got = lzw_offset(offset, rows(np.full(len(colors), 60), colors=colors))
    # 128 is halfway (in log2) between 256 and 64, 32 between 64 and 16.
    log2 = -1.0 + np.array([-0.5, -0.5, -0.75, -1.0, -1.25, -1.5, -1.5, -1.5])
    np.testing.assert_allclose(got, np.log(2) * log2)


def test_a_probe_that_rises_with_loss_or_fewer_colours_is_capped_and_nan_counts_as_zero():
    offset = make_offset(MODEL_INPUTS, Unscaled())
    grid = [[0.5, -0.3, -0.1, np.nan], [0.9, -0.1, -0.2, -0.4], [0.2, 0.0, -0.6, -0.5]]
    lossy = np.tile([0, 20, 60, 120], 3)
    colors = np.repeat([256, 64, 16], 4)
    got = lzw_offset(offset, rows(lossy, colors=colors, size_ratio=0.0, grid=grid))
    expected = [[0.5, -0.3, -0.3, -0.3], [0.5, -0.3, -0.3, -0.4], [0.2, -0.3, -0.6, -0.6]]
    np.testing.assert_allclose(got, np.log(2) * np.ravel(expected))


@pytest.mark.parametrize("lossy", [0, 30, 120])
def test_offset_never_rises_with_fewer_colours_or_more_loss(lossy):
    rng = np.random.default_rng(lossy)
    offset = make_offset(MODEL_INPUTS, Unscaled())
    for _ in range(20):
        grid = rng.normal(-1, 1, (3, 4))
        by_colors = lzw_offset(
            offset, rows(np.full(8, lossy), colors=2 ** np.arange(9, 1, -1), grid=grid)
        )
        assert np.all(np.diff(by_colors) <= 0)
        by_lossy = lzw_offset(offset, rows(np.arange(0, 140, 10), colors=48, grid=grid))
        assert np.all(np.diff(by_lossy) <= 0)


class LossyBump:
    """A correction of ``bump`` at exactly lossy ``at`` and 0 elsewhere: it rises with lossy."""

    def __init__(self, at: float, bump: float) -> None:
        self.at, self.bump = at, bump

    def predict(self, x: np.ndarray) -> np.ndarray:
        return np.where(x[:, -3] == self.at, self.bump, 0.0)


def test_a_correction_free_in_lossy_is_capped_by_the_levels_below():
    offset = make_offset(MODEL_INPUTS, Unscaled(), regressor=LossyBump(40, 0.5))
    lossy = np.array([0, 20, 30, 40, 50, 60, 90, 120, 200])
    estimate = lzw_offset(offset, rows(lossy))
    # Without correction_levels the correction is added at the row's own level (it was
    # trained monotone in lossy): this one lifts lossy 40 above lossy 20.
    own = bundle_mod.offset_log_ratio(offset, rows(lossy))
    np.testing.assert_allclose(own, estimate + np.where(lossy == 40, 0.5, 0.0))
    assert own[3] > own[1]
    # With them: the sum at each level, capped by the levels below, linear in lossy between.
    offset["correction_levels"] = [0, 20, 40, 60, 80, 100, 120]
    got = bundle_mod.offset_log_ratio(offset, rows(lossy))
    expected = estimate.copy()
    expected[[2, 3]] = estimate[1]  # 40 capped by 20; 30 between 20 and the capped 40
    expected[4] = (estimate[1] + estimate[5]) / 2  # 50: halfway between the capped 40 and 60
    np.testing.assert_allclose(got, expected)
    assert np.all(np.diff(got) <= 0)
    # A dip at one level is kept there and caps the levels above it until they fall below it.
    offset["regressor"] = LossyBump(40, -0.2)
    dip = bundle_mod.offset_log_ratio(offset, rows(lossy))
    at_40 = estimate[3] - 0.2
    assert estimate[5] > at_40 > estimate[7]
    np.testing.assert_allclose(dip[[0, 1, 3, 5, 7]], [*estimate[[0, 1]], at_40, at_40, estimate[7]])


def test_offset_unscales_the_inputs_with_the_datasets_scaler(corpus):
    table, scaler, _ = corpus
    offset = make_offset(MODEL_INPUTS, scaler)
    x = model_matrix(table, scaler)
    at_zero = (x[:, -3] == 0) & (x[:, -2] == 256)
    expected = np.log(2) * (table["lzw_size_ratio"] + table["lzw_colors_ratio_256_0"])
    got = lzw_offset(offset, x)[at_zero]
    np.testing.assert_allclose(got, expected.to_numpy(np.float64)[at_zero], atol=1e-9)


def test_gifsicle_gets_an_offset_model_and_the_probed_colours_use_it(corpus):
    table, scaler, trained = corpus
    offset = trained.bundle["offset"]
    assert isinstance(offset["regressor"], xgboost.XGBRegressor)
    assert "offset" in trained.best_iterations[trained.formulation]
    assert f"{trained.formulation}_offset" in trained.val_scores
    x = model_matrix(table, scaler)
    predicted = bundle_mod.predict_log_ratio(trained.bundle, x)
    full = x[:, -2] >= 16
    assert full.any()
    # The correction is free in lossy; the sum is made monotone over the trained and probed levels.
    train_levels = set(table.loc[table["split"] == "train", "lossy"].unique())
    assert offset["correction_levels"] == sorted(train_levels | set(offset["levels"]))
    corrected = bundle_mod.offset_log_ratio(offset, x)
    np.testing.assert_allclose(predicted[full], corrected[full])
    # Below 16 colours: the formulation's prediction, never above the offset one.
    trees = bundle_mod.formulation_log_ratio(trained.bundle, x)
    np.testing.assert_allclose(
        predicted[~full], np.minimum(trees, corrected)[~full], rtol=0, atol=0
    )


def test_engines_not_configured_get_no_offset(corpus):
    table, scaler, _ = corpus
    plain = train_engine(table, scaler, "gifsicle", TrainConfig(lzw_offset_engines=(), **EARLY))
    assert "offset" not in plain.bundle
    assert not any(k.endswith("_offset") for k in plain.val_scores)


def export(bundle: dict, scaler, folder):
    """``bundle`` exported with ``scaler`` into ``folder/models``; the model card."""
    scaler_path = folder / "scaler.pkl"
    scaler_path.write_bytes(__import__("pickle").dumps(scaler))
    return export_models(
        {bundle["engine"]: bundle},
        scaler_path,
        folder / "models",
        card_facts={"dataset_version": "t"},
    )


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_native_files_and_the_card_rebuild_the_prediction(corpus, tmp_path):
    """What an outside tool does with numpy and xgboost only: scale the features, run the
    formulation's booster and the offset booster, add the offset the card describes, take the
    offset's value from its lowest colour count up and the smaller of the two below."""
    table, scaler, trained = corpus
    card = export(trained.bundle, scaler, tmp_path)
    entry = card.engines["gifsicle"]
    assert entry["boosters"]["offset"] == "gifsicle.offset.ubj"
    models = load_models(tmp_path / "models")
    x = model_matrix(table, scaler)
    expected = bundle_mod.predict_log_ratio(models.bundles["gifsicle"], x)

    def booster(name: str) -> xgboost.Booster:
        return xgboost.Booster(model_file=str(tmp_path / "models" / name))

    spec = entry["offset"]
    raw = x[:, spec["columns"]] * np.array(spec["scale"]) + np.array(spec["mean"])
    grid = raw[:, 1:].reshape(len(x), len(spec["colors"]), len(spec["levels"]))
    grid = np.minimum.accumulate(np.minimum.accumulate(grid, axis=2), axis=1)
    log2_colors = np.log2(spec["colors"])[::-1]

    def drop(at: np.ndarray) -> np.ndarray:
        return np.array(
            [
                np.interp(
                    np.log2(c), log2_colors, [np.interp(lv, spec["levels"], g) for g in cells][::-1]
                )
                for lv, c, cells in zip(at[:, -3], at[:, -2], grid, strict=True)
            ]
        )

    correction = booster(entry["boosters"]["offset"])

    def full_at(lossy: float) -> np.ndarray:
        at = x.copy()
        at[:, -3] = lossy
        return np.log(2) * (raw[:, 0] + drop(at)) + correction.predict(xgboost.DMatrix(at))

    # The sums at the card's correction levels, each capped by the ones below, linear between.
    knots = spec["correction_levels"]
    sums = np.minimum.accumulate(np.stack([full_at(k) for k in knots], axis=1), axis=1)
    full = np.array([np.interp(lv, knots, row) for lv, row in zip(x[:, -3], sums, strict=True)])
    matrix = xgboost.DMatrix(x)
    assert entry["formulation"] == "joint" or len(entry["boosters"]) > 2
    if entry["formulation"] == "joint":
        trees = booster(entry["boosters"]["all"]).predict(matrix)
    else:
        trees = bundle_mod.formulation_log_ratio(models.bundles["gifsicle"], x)
    rebuilt = np.where(x[:, -2] >= spec["min_colors"], full, np.minimum(trees, full))
    np.testing.assert_allclose(rebuilt, expected, rtol=1e-6, atol=1e-6)


@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_an_offset_without_colour_counts_trains_exports_and_loads(corpus, tmp_path):
    # The corpus renders under gifski's name: its offset (no colour counts) goes through
    # training, the card and the native files like gifsicle's; every colour count uses it.
    engine = "gifski"
    table, scaler, _ = corpus
    renders = table.assign(engine=engine)
    trained = train_engine(renders, scaler, engine, TrainConfig(**EARLY))
    offset = trained.bundle["offset"]
    assert offset["colors"] == [] and offset["min_colors"] == 1
    assert offset["features"] == list(offset_features(engine))
    x = model_matrix(renders, scaler)
    predicted = bundle_mod.predict_log_ratio(trained.bundle, x)
    np.testing.assert_allclose(predicted, bundle_mod.offset_log_ratio(offset, x))
    card = export(trained.bundle, scaler, tmp_path)
    assert card.engines[engine]["offset"]["colors"] == []
    loaded = load_models(tmp_path / "models").bundles[engine]
    np.testing.assert_allclose(
        bundle_mod.predict_log_ratio(loaded, x), predicted, rtol=1e-6, atol=1e-6
    )


def test_an_offset_without_correction_predicts_the_estimate(corpus):
    table, scaler, _ = corpus
    config = TrainConfig(**EARLY, offset_correction="off")
    trained = train_engine(table, scaler, "gifsicle", config)
    offset = trained.bundle["offset"]
    x = model_matrix(table, scaler)
    assert isinstance(offset["regressor"], xgboost.XGBRegressor)  # exported like a fitted one
    assert (offset["regressor"].predict(x) == 0).all()
    full = x[:, -2] >= 16
    np.testing.assert_allclose(
        bundle_mod.predict_log_ratio(trained.bundle, x)[full], lzw_offset(offset, x)[full]
    )


class ExactResidual:
    """A correction that is exactly what the estimate misses on the rows it was built for."""

    def __init__(self, residual: np.ndarray) -> None:
        self.residual = residual

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.residual


def test_auto_keeps_the_correction_only_when_it_lowers_the_val_error(corpus):
    table, scaler, trained = corpus
    val = table[table["split"] == "val"]
    x = model_matrix(val, scaler)
    bundle = copy.deepcopy(trained.bundle)
    # ExactResidual answers the val rows at their own levels only: no sums at other levels.
    del bundle["offset"]["correction_levels"]
    # A correction far off every render is dropped, and the note says so.
    bundle["offset"]["regressor"] = xgboost.XGBRegressor(
        n_estimators=1, max_depth=1, base_score=2.0
    ).fit(x[:2], [2.0, 2.0])
    notes: list[str] = []
    scores = {"joint_offset": 1.0}
    _drop_correction_unless_it_helps(bundle, val, scaler, scores, "joint", notes)
    assert (bundle["offset"]["regressor"].predict(x) == 0).all()
    assert notes and notes[0].startswith("offset correction dropped")
    # The bundle's score is the one returned; the dropped correction's is kept beside it.
    assert scores["joint_offset_with_correction"] == 1.0 and scores["joint_offset"] != 1.0
    # One that removes the estimate's whole error is kept.
    exact = ExactResidual(log_size_ratio(val) - lzw_offset(bundle["offset"], x))
    bundle["offset"]["regressor"] = exact
    notes = []
    scores = {"joint_offset": 1.0}
    _drop_correction_unless_it_helps(bundle, val, scaler, scores, "joint", notes)
    assert bundle["offset"]["regressor"] is exact and notes == []
    assert scores["joint_offset"] == 1.0 and "joint_offset_without_correction" in scores
