"""Training the curve models on real corpus renders: monotone, deterministic, train rows only."""

from __future__ import annotations

import pickle
import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from giflab.dataset import fit_scaler
from giflab.dataset.columns import GIF_FEATURES, MODEL_INPUTS
from giflab.prediction import bundle as bundle_mod
from giflab.prediction.config import TrainConfig
from giflab.prediction.evaluate import predicted_kilobytes
from giflab.prediction.train import (
    TrainingError,
    log_size_ratio,
    model_matrix,
    train_all,
    train_engine,
)
from tests.training_db import LOSSY, training_table

FORMULATIONS = ("joint", "per_level")
# The corpus table has ~7 val GIFs: early stopping runs only when allowed on so few.
EARLY = {"min_val_gifs": 2}


@pytest.fixture(scope="module")
def table() -> pd.DataFrame:
    return training_table()


@pytest.fixture(scope="module")
def scaler(table):
    return fit_scaler(table)


@pytest.fixture(scope="module")
def trained(table, scaler):
    """One early-stopped model per formulation, trained on the corpus table (read-only)."""
    return {
        f: train_engine(table, scaler, "gifsicle", TrainConfig(formulation=f, **EARLY))
        for f in FORMULATIONS
    }


@pytest.fixture(scope="module")
def correction_on(table, scaler):
    """gifsicle with the offset's correction kept whatever val says (free in lossy)."""
    config = TrainConfig(offset_correction="on", **EARLY)
    return train_engine(table, scaler, "gifsicle", config)


def _random_inputs(table, scaler, n: int, seed: int) -> np.ndarray:
    """Scaled GIF feature rows: real GIFs' rows, and random ones (some inputs missing)."""
    rng = np.random.default_rng(seed)
    real = model_matrix(table.drop_duplicates("gif_sha"), scaler)[:, : len(GIF_FEATURES)]
    fake = rng.normal(0, 2, size=(n, len(GIF_FEATURES)))
    fake[rng.random(fake.shape) < 0.1] = np.nan
    return np.vstack([real, fake])


def _grid_predictions(bundle, gifs: np.ndarray, axis: str, grid: np.ndarray, seed: int):
    """Predictions [gif, grid point]: ``axis`` swept over ``grid``, other variant inputs random."""
    rng = np.random.default_rng(seed)
    fixed = {
        "lossy": rng.integers(0, 200, len(gifs)),
        "colors": rng.integers(2, 257, len(gifs)),
        "frame_keep": rng.uniform(0.1, 1.0, len(gifs)),
    }
    out = np.empty((len(gifs), len(grid)))
    for j, value in enumerate(grid):
        variants = {**fixed, axis: np.full(len(gifs), value)}
        x = np.hstack([gifs, np.column_stack([variants[c] for c in MODEL_INPUTS[-3:]])])
        out[:, j] = bundle_mod.predict_log_ratio(bundle, x)
    return out


@pytest.mark.parametrize("formulation", [*FORMULATIONS, "correction_on"])
@pytest.mark.parametrize(
    ("axis", "grid", "sign"),
    [
        ("lossy", np.arange(0, 201, 5), -1),  # includes untrained levels (5, 130, 200)
        ("colors", np.array([2, 4, 8, 16, 32, 64, 128, 256]), 1),
        ("frame_keep", np.linspace(0.1, 1.0, 10), 1),
    ],
)
def test_curves_are_monotone_on_random_inputs(
    trained, correction_on, table, scaler, formulation, axis, grid, sign
):
    gifs = _random_inputs(table, scaler, n=300, seed=1)
    model = correction_on if formulation == "correction_on" else trained[formulation]
    pred = _grid_predictions(model.bundle, gifs, axis, grid, seed=2)
    steps = np.diff(pred, axis=1) * sign
    assert (steps >= 0).all(), f"{formulation}: not monotone in {axis}"
    if axis == "lossy":
        assert (steps > 0).any()  # the curves do fall: not a constant model


def test_the_offset_correction_is_free_in_lossy_and_summed_over_trained_and_probed_levels(
    correction_on, table
):
    offset = correction_on.bundle["offset"]
    constraints = offset["regressor"].get_params()["monotone_constraints"]
    assert constraints[MODEL_INPUTS.index("lossy")] == 0
    assert constraints[MODEL_INPUTS.index("colors")] == 1
    # The trained levels and the probed ones (gifsicle's 20 and 60 are not trained here).
    assert offset["correction_levels"] == sorted({*LOSSY, *offset["levels"]})
    assert set(offset["correction_levels"]) > set(LOSSY)
    monotone = TrainConfig(offset_correction="on", offset_correction_lossy="monotone", **EARLY)
    old_style = train_engine(table, fit_scaler(table), "gifsicle", monotone).bundle["offset"]
    assert "correction_levels" not in old_style
    assert old_style["regressor"].get_params()["monotone_constraints"][-3] == -1


def test_training_is_deterministic(table, scaler):
    first = train_engine(table.copy(), scaler, "gifsicle", TrainConfig(**EARLY))
    second = train_engine(table.copy(), scaler, "gifsicle", TrainConfig(**EARLY))
    assert first.formulation == second.formulation
    assert first.best_iterations == second.best_iterations
    for key, regressor in first.bundle["regressors"].items():
        other = second.bundle["regressors"][key]
        assert regressor.get_booster().save_raw() == other.get_booster().save_raw()
    x = model_matrix(table, scaler)
    np.testing.assert_array_equal(
        bundle_mod.predict_log_ratio(first.bundle, x),
        bundle_mod.predict_log_ratio(second.bundle, x),
    )


def _scramble(table: pd.DataFrame, splits: tuple[str, ...], seed: int) -> pd.DataFrame:
    """The table with the sizes and features of ``splits``' rows replaced by noise."""
    rng = np.random.default_rng(seed)
    out = table.copy()
    rows = out["split"].isin(splits).to_numpy()
    out.loc[rows, "kilobytes"] *= rng.uniform(0.3, 3.0, rows.sum())
    for name in ("entropy", "edge_density", "motion_intensity", "orig_kilobytes"):
        out.loc[rows, name] = rng.permutation(out.loc[rows, name].to_numpy())
    return out


def _booster_bytes(result) -> dict[str, bytes]:
    return {k: bytes(r.get_booster().save_raw()) for k, r in result.bundle["regressors"].items()}


@pytest.mark.parametrize("formulation", FORMULATIONS)
def test_only_train_rows_grow_the_trees(table, scaler, formulation):
    scrambled = _scramble(table, ("val", "test"), seed=3)
    assert fit_scaler(scrambled).mean_.tolist() == pytest.approx(scaler.mean_.tolist(), nan_ok=True)
    fixed = TrainConfig(formulation=formulation, early_stopping_rounds=None)
    assert _booster_bytes(train_engine(table, scaler, "gifsicle", fixed)) == _booster_bytes(
        train_engine(scrambled, scaler, "gifsicle", fixed)
    )
    # Early stopping reads val: it may keep another number of trees, but the same trees.
    config = TrainConfig(formulation=formulation, **EARLY)
    a = train_engine(table, scaler, "gifsicle", config)
    b = train_engine(scrambled, scaler, "gifsicle", config)
    x = model_matrix(table, scaler)
    for key, regressor in a.bundle["regressors"].items():
        other = b.bundle["regressors"][key]
        n = min(regressor.best_iteration, other.best_iteration) + 1
        np.testing.assert_array_equal(
            regressor.predict(x, iteration_range=(0, n)), other.predict(x, iteration_range=(0, n))
        )
    # The test split is never read.
    test_only = _scramble(table, ("test",), seed=4)
    assert _booster_bytes(a) == _booster_bytes(train_engine(test_only, scaler, "gifsicle", config))


def test_early_stopping_on_val_and_counts(trained, table):
    train = table[table["split"] == "train"]
    val = table[table["split"] == "val"]
    for formulation, result in trained.items():
        assert result.formulation == formulation
        assert result.early_stopped
        # The only note: the offset's correction dropped, when it did not help on val.
        assert all(n.startswith("offset correction dropped") for n in result.notes)
        assert (result.n_train_rows, result.n_val_rows) == (len(train), len(val))
        assert result.n_train_gifs == train["gif_sha"].nunique() > result.n_val_gifs > 0
        assert result.n_val_gifs == val["gif_sha"].nunique()
        for key, regressor in result.bundle["regressors"].items():
            best = result.best_iterations[formulation][key]
            assert best == regressor.best_iteration < TrainConfig().n_estimators - 1
        assert result.bundle["extra"]["best_iterations"] == result.best_iterations[formulation]
        assert result.bundle["extra"]["early_stopped"] is True
    per_level = trained["per_level"].bundle
    assert per_level["lossy_levels"] == list(LOSSY)
    assert sorted(per_level["regressors"]) == sorted(str(v) for v in LOSSY)


def test_auto_keeps_the_lower_validation_error(table, scaler, trained):
    auto = train_engine(table, scaler, "gifsicle", TrainConfig(**EARLY))
    scores = {f: trained[f].val_scores[f] for f in FORMULATIONS}
    assert {f: auto.val_scores[f] for f in FORMULATIONS} == pytest.approx(scores)
    assert auto.formulation == min(FORMULATIONS, key=lambda f: (scores[f], f != "joint"))
    assert _booster_bytes(auto) == _booster_bytes(trained[auto.formulation])


def test_val_score_is_the_median_abs_percent_error(table, scaler, trained):
    """Scored twice: the formulation alone, and the bundle with gifsicle's LZW offset."""
    val = table[table["split"] == "val"]
    for formulation, result in trained.items():
        alone = {k: v for k, v in result.bundle.items() if k != "offset"}
        for bundle, key in ((alone, formulation), (result.bundle, f"{formulation}_offset")):
            predicted = predicted_kilobytes(bundle, scaler, val)
            errors = 100 * np.abs(predicted - val["kilobytes"]) / val["kilobytes"]
            assert result.val_scores[key] == pytest.approx(float(np.median(errors)))


def test_bundle_predicts_from_raw_features_like_training(table, scaler, trained):
    rows = table[table["split"] == "test"]
    for result in trained.values():
        bundle = pickle.loads(pickle.dumps(result.bundle))
        assert bundle["feature_names"] == list(MODEL_INPUTS)
        config = TrainConfig(formulation=result.formulation, **EARLY)
        assert bundle["extra"]["params"] == config.model_dump()
        with warnings.catch_warnings():
            # Arrays into a scaler fitted on a DataFrame, as giflab.prediction.load does.
            warnings.filterwarnings("ignore", message="X does not have valid feature names")
            kb = bundle_mod.predict_kilobytes(
                bundle,
                scaler,
                rows[list(GIF_FEATURES)].to_numpy(np.float64),
                rows[["lossy", "colors", "frame_keep"]].to_numpy(np.float64),
            )
        np.testing.assert_allclose(kb, predicted_kilobytes(result.bundle, scaler, rows), rtol=1e-12)
        # The target the trees were fitted on: ln(kilobytes / orig_kilobytes).
        np.testing.assert_allclose(
            np.log(kb / rows["orig_kilobytes"]),
            bundle_mod.predict_log_ratio(bundle, model_matrix(rows, scaler)),
        )
        assert np.isfinite(log_size_ratio(rows)).all()


@pytest.mark.parametrize("val_gifs", [0, 1])
def test_too_few_val_gifs_fall_back_to_fixed_trees(table, scaler, val_gifs):
    keep = table.loc[table["split"] == "val", "gif_sha"].drop_duplicates().head(val_gifs)
    small = table[(table["split"] != "val") | table["gif_sha"].isin(keep)]
    config = TrainConfig(fallback_n_estimators=30, **EARLY)
    result = train_engine(small, scaler, "gifsicle", config)
    assert not result.early_stopped
    assert f"{val_gifs} val GIFs (< 2)" in result.notes[0]
    assert result.n_val_gifs == val_gifs
    for regressor in result.bundle["regressors"].values():
        assert regressor.get_booster().num_boosted_rounds() == 30
    chosen = result.formulation
    if val_gifs == 0:
        assert chosen == "joint" and list(result.val_scores) == ["joint", "joint_offset"]
        assert np.isnan(result.val_scores["joint"])
    else:
        # The offset's other choice ('auto': with or without its correction) is scored too.
        other = {f"{chosen}_offset_with_correction", f"{chosen}_offset_without_correction"}
        extra = set(result.val_scores) - {*FORMULATIONS, f"{chosen}_offset"}
        assert len(extra) == 1 and extra <= other
        assert all(np.isfinite(list(result.val_scores.values())))


def test_default_config_does_not_early_stop_on_a_handful_of_val_gifs(table, scaler):
    result = train_engine(table, scaler, "gifsicle", TrainConfig(formulation="joint"))
    n_val = table.loc[table["split"] == "val", "gif_sha"].nunique()
    assert 0 < n_val < TrainConfig().min_val_gifs
    assert not result.early_stopped
    assert result.best_iterations == {"joint": {"all": None, "offset": None}}
    assert result.notes[0] == f"{n_val} val GIFs (< 20): no early stopping, 400 trees"
    booster = result.bundle["regressors"]["all"].get_booster()
    assert booster.num_boosted_rounds() == TrainConfig().fallback_n_estimators


def test_an_engine_without_train_rows_is_left_out(table, scaler, caplog):
    ghost = table[table["split"] != "train"].assign(engine="ghost")
    both = pd.concat([table, ghost], ignore_index=True)
    with pytest.raises(TrainingError, match="ghost: cannot train: no rows in the train split"):
        train_engine(both, scaler, "ghost")
    config = TrainConfig(formulation="joint")
    models = train_all(both, scaler, config)
    assert list(models) == ["gifsicle"]
    assert "ghost: cannot train" in caplog.text
    assert _booster_bytes(models["gifsicle"]) == _booster_bytes(
        train_engine(table, scaler, "gifsicle", config)
    )


def test_config_is_strict_and_reproducible():
    params = TrainConfig().xgb_params()
    assert params["tree_method"] == "hist"
    assert params["random_state"] == 0 and params["n_jobs"] == 1
    with pytest.raises(ValidationError):
        TrainConfig(formulation="both")
    with pytest.raises(ValidationError):
        TrainConfig(max_deph=3)


def test_importing_the_package_does_not_import_xgboost():
    code = "import sys, giflab.prediction; print('xgboost' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
