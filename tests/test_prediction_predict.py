"""predict_gif on real corpus GIFs: inputs measured like the training table, monotone curves, picks."""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from giflab.dataset.columns import GIF_FEATURES
from giflab.errors import BadGifError
from giflab.features import CLIP_FEATURES, FEATURES_VERSION, extract_features
from giflab.meta import read_metadata
from giflab.prediction.export import training_clip_models
from giflab.prediction.load import load_models
from giflab.prediction.predict import (
    DEFAULT_COLORS,
    DEFAULT_FRAME_KEEP,
    CurvePoint,
    clip_notes,
    gif_inputs,
    monotone_in_lossy,
    pick_variant,
    predict_gif,
    version_notes,
)
from tests.conftest import bad_corpus_files, good_corpus_gifs
from tests.curve_models import LOSSY, build_test_models


def animated_gifs(n: int = 3) -> list[Path]:
    """``n`` small animated GIFs of the corpus (5-60 KB, more than one frame), smallest first."""
    found = []
    for path in sorted(good_corpus_gifs(), key=lambda p: (p.stat().st_size, p.name)):
        if 5_000 <= path.stat().st_size <= 60_000:
            with Image.open(path) as im:
                if getattr(im, "n_frames", 1) > 1:
                    found.append(path)
    return found[:n]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return load_models(build_test_models(tmp_path_factory.mktemp("predict")))


def _is_monotone(curve: list[CurvePoint]) -> bool:
    groups: dict[tuple, list[CurvePoint]] = {}
    for p in curve:
        groups.setdefault((p.colors, p.frame_keep), []).append(p)
    return all(
        all(a.kilobytes >= b.kilobytes for a, b in zip(g, g[1:], strict=False))
        for g in (sorted(g, key=lambda p: p.lossy) for g in groups.values())
    )


@pytest.mark.parametrize("gif", animated_gifs(), ids=lambda p: p.name[:40])
def test_curves_are_monotone_and_the_pick_meets_the_target(models, gif):
    sizes = [p.kilobytes for p in predict_gif(gif, models, engines=["gifsicle"])[0].curve]
    target = float(np.median(sizes))
    predictions = predict_gif(gif, models, target_kb=target)
    assert [p.engine for p in predictions] == ["animately", "gifsicle"]
    for prediction in predictions:
        curve = list(prediction.curve)
        assert len(curve) == len(LOSSY) * len(DEFAULT_COLORS) * len(DEFAULT_FRAME_KEEP)
        assert {(p.lossy, p.colors, p.frame_keep) for p in curve} == {
            (lv, c, f) for lv in LOSSY for c in DEFAULT_COLORS for f in DEFAULT_FRAME_KEEP
        }
        assert all(math.isfinite(p.kilobytes) and p.kilobytes > 0 for p in curve)
        assert _is_monotone(curve)
        # Monotone by construction of the models: the safety cap changed nothing.
        assert monotone_in_lossy(curve) == curve
        assert prediction.pick is not None and prediction.pick in curve
        assert prediction.pick.kilobytes <= target
        assert prediction.pick == pick_variant(curve, target)
        as_json = json.loads(json.dumps(prediction.to_json(), allow_nan=False))
        assert set(as_json) == {"engine", "curve", "pick"}
        assert as_json["pick"] == {
            "lossy": prediction.pick.lossy,
            "colors": prediction.pick.colors,
            "frame_keep": prediction.pick.frame_keep,
            "kilobytes": prediction.pick.kilobytes,
        }
        assert len(as_json["curve"]) == len(curve)


def test_curve_is_the_models_prediction_for_the_measured_inputs(models):
    gif = animated_gifs(1)[0]
    inputs = gif_inputs(gif)
    prediction = predict_gif(gif, models, engines=["gifsicle"], variants=[(40, 64, 1.0)])[0]
    row = np.array([[inputs[n] for n in GIF_FEATURES]])
    expected = models.predict_kilobytes("gifsicle", row, np.array([[40, 64, 1.0]]))
    assert [p.kilobytes for p in prediction.curve] == [float(expected[0])]
    assert prediction.pick is None and prediction.to_json()["pick"] is None


def test_inputs_are_measured_like_the_training_table():
    gif = animated_gifs(1)[0]
    inputs = gif_inputs(gif)
    meta = read_metadata(gif)
    features = extract_features(gif)
    assert list(inputs) == list(GIF_FEATURES)
    assert inputs["orig_kilobytes"] == meta["file_kb"] == round(gif.stat().st_size / 1024, 3)
    assert inputs["orig_width"] == meta["width"] and inputs["orig_frames"] == meta["n_frames"]
    assert inputs["orig_has_transparency"] == float(meta["has_transparency"])
    assert inputs["entropy"] == features["entropy"]
    assert all(math.isnan(inputs[n]) for n in CLIP_FEATURES)


def _point(lossy, colors, frame_keep, kb):
    return CurvePoint(lossy, colors, frame_keep, kb)


@pytest.mark.parametrize(
    ("curve", "target", "expected"),
    [
        # Nothing fits.
        ([_point(0, 256, 1.0, 50.0), _point(120, 16, 0.8, 20.0)], 10.0, None),
        # Exactly at the target fits.
        ([_point(0, 256, 1.0, 50.0), _point(40, 256, 1.0, 30.0)], 30.0, (40, 256, 1.0)),
        # All frames beats a bigger variant that drops frames.
        ([_point(0, 256, 0.8, 29.0), _point(80, 64, 1.0, 12.0)], 30.0, (80, 64, 1.0)),
        # Within the budget, the largest predicted size (least discarded) wins.
        (
            [_point(0, 16, 1.0, 10.0), _point(60, 256, 1.0, 25.0), _point(20, 128, 1.0, 24.0)],
            26.0,
            (60, 256, 1.0),
        ),
        # Equal sizes: lower lossy, then more colours.
        (
            [_point(40, 256, 1.0, 20.0), _point(20, 64, 1.0, 20.0), _point(20, 128, 1.0, 20.0)],
            20.0,
            (20, 128, 1.0),
        ),
        # Only frame-dropping variants fit.
        (
            [_point(0, 256, 1.0, 50.0), _point(0, 256, 0.8, 40.0), _point(60, 256, 0.8, 30.0)],
            45.0,
            (0, 256, 0.8),
        ),
    ],
)
def test_pick_rule(curve, target, expected):
    pick = pick_variant(curve, target)
    assert (None if pick is None else (pick.lossy, pick.colors, pick.frame_keep)) == expected


def test_monotone_cap_uses_lower_lossy_of_the_same_colors_and_frame_keep():
    curve = [
        _point(0, 256, 1.0, 10.0),
        _point(20, 256, 1.0, 12.0),  # above lossy 0: capped to 10
        _point(40, 256, 1.0, 8.0),
        _point(20, 16, 1.0, 11.0),  # another group: untouched
        _point(0, 256, 0.8, 9.0),
    ]
    assert [p.kilobytes for p in monotone_in_lossy(curve)] == [10.0, 10.0, 8.0, 11.0, 9.0]


@pytest.mark.parametrize("bad", bad_corpus_files()[:6], ids=lambda p: p.name[:40])
def test_a_bad_file_is_named(models, bad):
    with pytest.raises(BadGifError) as info:
        predict_gif(bad, models)
    assert info.value.path == bad and str(bad) in str(info.value)


def test_a_missing_or_non_gif_file_is_named(models, tmp_path):
    text = tmp_path / "notes.gif"
    text.write_text("not a gif")
    for path in (tmp_path / "absent.gif", text):
        with pytest.raises(BadGifError, match=path.name):
            predict_gif(path, models)


def test_an_engine_without_a_model_is_refused(models):
    with pytest.raises(ValueError, match=r"no model loaded for \['gifski'\]"):
        predict_gif(animated_gifs(1)[0], models, engines=["gifski"])


def _with_clip_fact(models, clip_models):
    card = dataclasses.replace(models.card, facts={**models.card.facts, "clip_models": clip_models})
    return dataclasses.replace(models, card=card)


def test_models_trained_with_clip_warn_when_this_gif_has_no_scores(models):
    gif = animated_gifs(1)[0]
    trained = _with_clip_fact(models, ["ViT-B-32/openai"])
    [prediction] = predict_gif(gif, trained, engines=["gifsicle"], variants=[(0, 256, 1.0)])
    [note] = prediction.notes
    assert "trained with CLIP scores (ViT-B-32/openai)" in note and "doctor" in note
    assert "notes" not in prediction.to_json()


def test_models_trained_without_clip_never_load_it(models):
    """A scorer that would fail on first use is not touched when the card says no CLIP."""

    class Unusable:
        def score(self, images):
            raise AssertionError("CLIP was run for models trained without it")

    gif = animated_gifs(1)[0]
    trained = _with_clip_fact(models, [])
    [prediction] = predict_gif(
        gif, trained, engines=["gifsicle"], variants=[(0, 256, 1.0)], clip=Unusable()
    )
    assert prediction.notes == ()


def test_models_trained_on_older_features_warn(models):
    """A card from before features were versioned (no fact: version 1) or of another version
    says so with every prediction; a card of this code's version says nothing."""
    gif = animated_gifs(1)[0]
    for version in (None, FEATURES_VERSION - 1):
        card = dataclasses.replace(
            models.card, facts={**models.card.facts, "features_version": version}
        )
        [prediction] = predict_gif(
            gif,
            dataclasses.replace(models, card=card),
            engines=["gifsicle"],
            variants=[(0, 256, 1.0)],
        )
        [note] = prediction.notes
        assert f"features version {version or 1}" in note and "giflab run" in note
    assert version_notes(FEATURES_VERSION) == ()


def test_clip_notes_only_when_training_had_scores_and_this_gif_has_none():
    nan = dict.fromkeys(CLIP_FEATURES, float("nan"))
    scored = dict.fromkeys(CLIP_FEATURES, 0.5)
    assert clip_notes(None, nan) == () and clip_notes([], nan) == ()
    assert clip_notes(["m/p"], scored) == ()
    assert len(clip_notes(["m/p"], nan)) == 1


def test_the_card_records_the_clip_models_of_the_train_split_only():
    table = pd.DataFrame(
        {
            "split": ["train", "train", "val", "train"],
            "clip_model": ["b/x", None, "c/y", "a/z"],
        }
    )
    assert training_clip_models(table) == ["a/z", "b/x"]
    assert training_clip_models(table[table["clip_model"].isna()]) == []
