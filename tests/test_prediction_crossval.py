"""Grouped cross-validation: every GIF held out exactly once, by a model that never saw it."""

import pytest

from giflab.prediction.config import TrainConfig
from giflab.prediction.crossval import cross_validate, fold_of
from tests.training_db import training_table

FAST = TrainConfig(formulation="joint", fallback_n_estimators=60, early_stopping_rounds=None)


def test_folds_come_from_the_hash_alone():
    shas = [f"{i:064x}" for i in range(300)]
    folds = [fold_of(s, 5) for s in shas]
    assert folds == [fold_of(s, 5) for s in shas]
    assert set(folds) == {0, 1, 2, 3, 4}


def test_every_gif_is_predicted_once_out_of_fold():
    table = training_table()
    result = cross_validate(table, FAST, folds=3)
    predicted = result.predictions
    assert len(predicted) == len(table)
    assert set(predicted["gif_sha"]) == set(table["gif_sha"])
    assert not predicted.duplicated(["gif_sha", "engine", "lossy", "colors", "frame_keep"]).any()
    summary = result.summary
    assert summary["n_gifs"] == table["gif_sha"].nunique()
    assert summary["model_median_ape"] < summary["baseline_median_ape"]


def test_needs_three_folds():
    with pytest.raises(ValueError, match="at least 3 folds"):
        cross_validate(training_table(), FAST, folds=2)
