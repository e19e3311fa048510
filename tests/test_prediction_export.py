"""Exported models: files and card, deterministic bytes, verified loading, outside use."""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import xgboost

from giflab.dataset.columns import GIF_FEATURES, MODEL_INPUTS
from giflab.dataset.scaler import load_scaler
from giflab.errors import GifLabError
from giflab.prediction.bundle import OFFSET_FEATURES, predict_kilobytes
from giflab.prediction.export import booster_bytes, export_models
from giflab.prediction.load import ModelFileError, load_models
from giflab.schemas import MetricRecordV1
from tests.conftest import REPO
from tests.curve_models import (
    LOSSY,
    build_test_models,
    fit_scaler,
    gif_frame,
    joint_bundle,
    model_matrix,
    raw_rows,
)

ENGINE_FILES = {
    "gifsicle": ["gifsicle.pkl", "gifsicle.offset.ubj", "gifsicle.ubj"],
    "animately": ["animately.pkl", *(f"animately.lossy{lv}.ubj" for lv in LOSSY)],
}


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return build_test_models(tmp_path_factory.mktemp("export"))


@pytest.fixture
def copy_of(exported, tmp_path):
    """A private copy of the exported folder, safe to damage."""
    target = tmp_path / "models"
    target.mkdir()
    for f in exported.iterdir():
        (target / f.name).write_bytes(f.read_bytes())
    return target


def _variants() -> np.ndarray:
    return np.array(
        [(lv, c, f) for lv in (0, 10, 60, 120, 140) for c in (256, 16) for f in (1.0, 0.8)]
    )


def _gif_rows(n: int) -> np.ndarray:
    return gif_frame(n, seed=99)[list(GIF_FEATURES)].to_numpy()


def test_card_lists_every_file_with_its_sha256_and_the_facts(exported):
    card = json.loads((exported / "model_card.json").read_text())
    written = sorted(f.name for f in exported.iterdir())
    expected = sorted([*ENGINE_FILES["gifsicle"], *ENGINE_FILES["animately"], "scaler.pkl"])
    assert written == sorted([*expected, "model_card.json"])
    assert sorted(card["files"]) == expected
    for name, digest in card["files"].items():
        assert hashlib.sha256((exported / name).read_bytes()).hexdigest() == digest
    assert card["feature_names"] == list(MODEL_INPUTS)
    assert card["schema_version"] == MetricRecordV1.SCHEMA_VERSION
    assert (card["dataset_version"], card["code_version"]) == ("test-dataset-0", "0.1.0+test")
    assert card["lossy_levels"] == list(LOSSY)
    assert card["engines"]["gifsicle"]["formulation"] == "joint"
    assert card["engines"]["gifsicle"]["boosters"] == {
        "all": "gifsicle.ubj",
        "offset": "gifsicle.offset.ubj",
    }
    assert card["engines"]["gifsicle"]["offset"]["features"] == list(OFFSET_FEATURES)
    assert card["engines"]["animately"]["offset"] is None
    assert card["engines"]["animately"]["formulation"] == "per_level"
    assert card["engines"]["animately"]["boosters"]["40"] == "animately.lossy40.ubj"
    assert card["engines"]["animately"]["metrics"] == {"test_mape": 0.05, "test_rows": 1260}
    scaler = load_scaler(exported / "scaler.pkl")
    for key, values in (("mean", scaler.mean_), ("scale", scaler.scale_)):
        expected_values = [None if np.isnan(v) else float(v) for v in values]
        assert card["scaler"][key] == expected_values
    assert card["scaler"]["mean"][GIF_FEATURES.index("clip_photography")] is None


def test_same_models_give_the_same_bytes(exported, tmp_path):
    again = build_test_models(tmp_path / "again")
    for f in exported.iterdir():
        assert (again / f.name).read_bytes() == f.read_bytes(), f.name


# The scaler was fitted on a DataFrame; bundle.predict_kilobytes passes plain arrays.
@pytest.mark.filterwarnings("ignore:X does not have valid feature names")
def test_roundtrip_predicts_like_the_bundles_in_memory(exported):
    models = load_models(exported)
    assert models.engines == ("animately", "gifsicle")
    scaler = load_scaler(exported.parent / "scaler.pkl")
    gif = np.repeat(_gif_rows(3), len(_variants()), axis=0)
    variants = np.tile(_variants(), (3, 1))
    for engine in models.engines:
        with open(exported / f"{engine}.pkl", "rb") as f:
            bundle = pickle.load(f)  # noqa: S301 - the test's own file
        expected = predict_kilobytes(bundle, scaler, gif, variants)
        np.testing.assert_array_equal(models.predict_kilobytes(engine, gif, variants), expected)
        assert np.all(np.isfinite(expected)) and np.all(expected > 0)


def test_native_boosters_predict_like_the_pickled_regressors(exported):
    models = load_models(exported)
    gif = pd.DataFrame(_gif_rows(20), columns=GIF_FEATURES)
    x = np.hstack([models.scaler.transform(gif), np.tile(_variants()[:1], (20, 1))])
    card = models.card
    for engine, bundle in models.bundles.items():
        for key, regressor in bundle["regressors"].items():
            booster = xgboost.Booster(
                model_file=str(exported / card.engines[engine]["boosters"][key])
            )
            np.testing.assert_array_equal(booster.inplace_predict(x), regressor.predict(x))


def test_native_booster_stops_at_the_best_iteration_like_predict():
    rows = raw_rows(n_gifs=12, seed=3)
    x, y = model_matrix(rows, fit_scaler(rows))
    regressor = xgboost.XGBRegressor(
        n_estimators=60, max_depth=3, n_jobs=1, random_state=0, early_stopping_rounds=3
    )
    noise = np.random.default_rng(0).normal(size=len(y))
    regressor.fit(x, y, eval_set=[(x, noise)], verbose=False)  # noise: stops early
    assert regressor.best_iteration + 1 < regressor.get_booster().num_boosted_rounds()
    booster = xgboost.Booster()
    booster.load_model(bytearray(booster_bytes(regressor)))
    np.testing.assert_array_equal(booster.inplace_predict(x), regressor.predict(x))
    assert not np.array_equal(regressor.get_booster().inplace_predict(x), regressor.predict(x))


def _flip_one_byte(path, at=None):
    data = bytearray(path.read_bytes())
    i = len(data) // 2 if at is None else at
    data[i] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "name", ["gifsicle.pkl", "gifsicle.ubj", "animately.pkl", "animately.lossy80.ubj", "scaler.pkl"]
)
def test_a_changed_file_is_refused_before_anything_is_unpickled(copy_of, name, monkeypatch):
    _flip_one_byte(copy_of / name)
    calls = []
    monkeypatch.setattr(
        pickle, "loads", lambda *a, **k: calls.append(a) or pytest.fail("unpickled")
    )
    with pytest.raises(ModelFileError) as info:
        load_models(copy_of)
    assert info.value.kind == "sha256_mismatch"
    assert info.value.path == copy_of / name
    assert isinstance(info.value, GifLabError) and name in str(info.value)
    assert calls == []


def test_a_malicious_pickle_never_runs(copy_of, tmp_path):
    sentinel = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(sentinel), "w"))

    evil = pickle.dumps(Payload(), protocol=4)
    (copy_of / "gifsicle.pkl").write_bytes(evil)
    with pytest.raises(ModelFileError, match=r"gifsicle\.pkl: sha256_mismatch"):
        load_models(copy_of)
    assert not sentinel.exists()
    pickle.loads(evil).close()  # noqa: S301 - proves the payload would have run
    assert sentinel.exists()


def test_only_the_chosen_engines_files_are_checked(copy_of):
    _flip_one_byte(copy_of / "animately.pkl")
    models = load_models(copy_of, engines=["gifsicle"])
    assert models.engines == ("gifsicle",)
    with pytest.raises(ModelFileError, match="animately.pkl"):
        load_models(copy_of, engines=["animately"])


def _rewrite_card(model_dir, **changes):
    card = json.loads((model_dir / "model_card.json").read_text())
    card.update(changes)
    (model_dir / "model_card.json").write_text(json.dumps(card))


def _bundle_outside_the_folder(model_dir):
    """A card naming a file outside its folder, with the right hash: still refused."""
    outside = model_dir.parent / "outside.pkl"
    outside.write_bytes((model_dir / "gifsicle.pkl").read_bytes())
    card = json.loads((model_dir / "model_card.json").read_text())
    card["engines"]["gifsicle"]["bundle"] = "../outside.pkl"
    card["files"]["../outside.pkl"] = hashlib.sha256(outside.read_bytes()).hexdigest()
    (model_dir / "model_card.json").write_text(json.dumps(card))


@pytest.mark.parametrize(
    ("damage", "kind", "file"),
    [
        (lambda d: (d / "animately.lossy20.ubj").unlink(), "missing", "animately.lossy20.ubj"),
        (lambda d: (d / "model_card.json").unlink(), "missing", "model_card.json"),
        (lambda d: (d / "model_card.json").write_text("{not json"), "bad_card", "model_card.json"),
        (lambda d: _rewrite_card(d, files={}), "bad_card", "scaler.pkl"),
        (_bundle_outside_the_folder, "bad_card", "outside.pkl"),
    ],
)
def test_damage_is_named_with_file_and_reason(copy_of, damage, kind, file):
    damage(copy_of)
    with pytest.raises(ModelFileError) as info:
        load_models(copy_of)
    assert info.value.kind == kind
    assert info.value.path.name == file


def test_unknown_engine_is_refused(exported):
    with pytest.raises(ModelFileError, match=r"unknown_engine: no model for \['gifski'\]"):
        load_models(exported, engines=["gifski"])


def test_reexport_removes_files_the_new_card_does_not_list(copy_of):
    scaler_path = copy_of.parent / "scaler.pkl"
    scaler_path.write_bytes((copy_of / "scaler.pkl").read_bytes())
    x, y = model_matrix(raw_rows(), load_scaler(scaler_path))
    export_models(
        {"gifsicle": joint_bundle("gifsicle", x, y)},
        scaler_path,
        copy_of,
        card_facts={"dataset_version": "d2"},
    )
    assert sorted(f.name for f in copy_of.iterdir()) == [
        "gifsicle.pkl",
        "gifsicle.ubj",
        "model_card.json",
        "scaler.pkl",
    ]
    assert load_models(copy_of).card.dataset_version == "d2"


@pytest.mark.parametrize(
    ("bundles", "facts", "message"),
    [
        ("none", {"dataset_version": "d"}, "no bundles"),
        ("wrong_key", {"dataset_version": "d"}, "is for engine 'gifsicle'"),
        ("ok", {}, "dataset_version"),
    ],
)
def test_export_refuses_bad_arguments(exported, tmp_path, bundles, facts, message):
    models = load_models(exported, engines=["gifsicle"])
    bundle = models.bundles["gifsicle"]
    given = {"none": {}, "wrong_key": {"gifski": bundle}, "ok": {"gifsicle": bundle}}[bundles]
    with pytest.raises(ValueError, match=message):
        export_models(given, exported / "scaler.pkl", tmp_path / "out", card_facts=facts)


def _recipe() -> str:
    text = (REPO / "docs" / "models.md").read_text(encoding="utf-8")
    section = text.split("## Using the exported models", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, flags=re.S)[0]


BLOCK_IMPORTS = """\
import sys


class _Refuse:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {"giflab", "tests", "mlflow", "dagster", "pandas"}:
            raise ImportError(f"not available to outside tools: {name}")


sys.meta_path.insert(0, _Refuse())
"""

DRIVER = """
args = json.loads(sys.stdin.read())
out = {}
for engine in args["engines"]:
    for native in (False, True):
        kb = predict_kilobytes(args["dir"], engine, args["gif"], args["variants"], native=native)
        out[f"{engine} {native}"] = kb.tolist()
out["modules"] = sorted({m.split(".")[0] for m in sys.modules})
print(json.dumps(out))
"""


def _run_recipe(exported, engines, tmp_path):
    """Run the documented recipe on ``engines`` in a fresh process that cannot import GifLab,
    and check its predictions (pickled and native) against GifLab's own."""
    script = tmp_path / "outside.py"
    script.write_text(BLOCK_IMPORTS + _recipe() + DRIVER, encoding="utf-8")
    gif = np.repeat(_gif_rows(2), len(_variants()), axis=0)
    variants = np.tile(_variants(), (2, 1))
    args = {
        "dir": str(exported),
        "engines": engines,
        "gif": gif.tolist(),
        "variants": variants.tolist(),
    }
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run(
        [sys.executable, "-I", str(script)],
        input=json.dumps(args),
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert not {"giflab", "tests", "mlflow", "dagster", "pandas"} & set(out["modules"])
    models = load_models(exported)
    for engine in engines:
        expected = models.predict_kilobytes(engine, gif, variants)
        np.testing.assert_array_equal(out[f"{engine} False"], expected)
        np.testing.assert_array_equal(out[f"{engine} True"], expected)


def test_documented_recipe_predicts_in_a_fresh_process_without_giflab(exported, tmp_path):
    _run_recipe(exported, ["gifsicle", "animately"], tmp_path)


def test_documented_recipe_reads_an_offset_without_colour_counts(tmp_path):
    # ImageMagick's and gifski's offsets have one row of probes for every colour count.
    exported = build_test_models(tmp_path / "gifski", {"gifski": "joint"}, n_estimators=10)
    card = json.loads((exported / "model_card.json").read_text(encoding="utf-8"))
    assert card["engines"]["gifski"]["offset"]["colors"] == []
    _run_recipe(exported, ["gifski"], tmp_path)
