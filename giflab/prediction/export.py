"""Export trained curve models: pickles, XGBoost-native boosters, the scaler and a model card.

``out_dir`` receives, per engine, ``<engine>.pkl`` (the bundle, pickle protocol 4) and its
regressors in XGBoost's own format (``<engine>.ubj`` for a joint model, ``<engine>.lossy<L>.ubj``
per trained level, ``<engine>.offset.ubj`` for the full-colour correction of an offset model),
then ``scaler.pkl`` and ``model_card.json`` with the sha256 of every file.
Each file is written to a temporary name and renamed; the card goes last, so an interrupted
export leaves a card whose hashes no longer match and ``load_models`` refuses the folder rather
than mixing old and new files. The same bundles give the same bytes (no timestamps).
"""

from __future__ import annotations

import hashlib
import math
import pickle
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import xgboost

from giflab.dataset.columns import GIF_FEATURES, MODEL_INPUTS
from giflab.dataset.versions import code_version
from giflab.files import write_atomic
from giflab.prediction.bundle import FORMULATIONS
from giflab.prediction.load import (
    CARD_NAME,
    SCALER_NAME,
    ModelCard,
    ModelFileError,
    read_card,
)
from giflab.schemas import MetricRecordV1

PICKLE_PROTOCOL = 4


def booster_file_name(engine: str, formulation: str, key: str) -> str:
    """The native-format file of one regressor: ``<engine>.ubj`` or ``<engine>.lossy<L>.ubj``."""
    return f"{engine}.ubj" if formulation == "joint" else f"{engine}.lossy{int(key)}.ubj"


def booster_bytes(regressor: xgboost.XGBRegressor) -> bytes:
    """The regressor's booster as UBJSON, cut at ``best_iteration`` when it has one.

    ``XGBRegressor.predict`` stops at the best iteration of early stopping, a bare ``Booster``
    uses every tree; slicing makes the native file predict exactly what the pickle predicts.
    """
    booster = regressor.get_booster()
    try:
        best = regressor.best_iteration
    except AttributeError:
        best = None
    if best is not None and best + 1 < booster.num_boosted_rounds():
        booster = booster[: best + 1]
    return bytes(booster.save_raw(raw_format="ubj"))


def _jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: numpy scalars unwrapped, NaN/inf as None, tuples as lists."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | np.ndarray):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)


def _check_bundle(engine: str, bundle: Mapping[str, Any]) -> None:
    if bundle.get("engine") != engine:
        raise ValueError(f"bundle under key {engine!r} is for engine {bundle.get('engine')!r}")
    if bundle.get("formulation") not in FORMULATIONS:
        raise ValueError(f"{engine}: unknown formulation {bundle.get('formulation')!r}")
    if tuple(bundle.get("feature_names", ())) != MODEL_INPUTS:
        raise ValueError(f"{engine}: bundle inputs are not MODEL_INPUTS in order")
    if not engine or not all(c.isalnum() or c in "-_" for c in engine):
        raise ValueError(f"engine name {engine!r} cannot be a file name")


def _booster_keys(bundle: Mapping[str, Any]) -> list[str]:
    """Regressor keys in file order: ``all``, or the lossy levels ascending."""
    return sorted(bundle["regressors"], key=lambda k: -1 if k == "all" else int(k))


def _engine_files(engine: str, bundle: Mapping[str, Any]) -> tuple[dict[str, bytes], dict]:
    """File name → bytes for one engine (the bundle pickle, then one booster per regressor)
    and the card's booster map (regressor key, or ``offset`` → file name)."""
    files = {f"{engine}.pkl": pickle.dumps(dict(bundle), protocol=PICKLE_PROTOCOL)}
    boosters = {}
    for key in _booster_keys(bundle):
        boosters[key] = booster_file_name(engine, bundle["formulation"], key)
        files[boosters[key]] = booster_bytes(bundle["regressors"][key])
    if bundle.get("offset"):
        boosters["offset"] = f"{engine}.offset.ubj"
        files[boosters["offset"]] = booster_bytes(bundle["offset"]["regressor"])
    return files, boosters


def _offset_card(bundle: Mapping[str, Any]) -> dict[str, Any] | None:
    """What an outside tool needs to rebuild the offset from the native files (no regressor)."""
    offset = bundle.get("offset")
    if not offset:
        return None
    return _jsonable({k: v for k, v in offset.items() if k != "regressor"})


def _read_scaler(scaler_path: Path) -> tuple[bytes, Any]:
    """The scaler file's bytes and the scaler, after checking it is one over ``GIF_FEATURES``."""
    data = scaler_path.read_bytes()
    scaler = pickle.loads(data)  # noqa: S301 - the project's own scaler.pkl
    names = getattr(scaler, "feature_names_in_", None)
    if getattr(scaler, "n_features_in_", None) != len(GIF_FEATURES) or (
        names is not None and tuple(str(n) for n in names) != GIF_FEATURES
    ):
        raise ValueError(f"{scaler_path}: not a scaler over GIF_FEATURES")
    return data, scaler


def _remove_stale(out_dir: Path, keep: set[str]) -> None:
    """Delete files the previous export's card listed and this export does not write."""
    try:
        previous = read_card(out_dir)
    except ModelFileError:
        return
    for name in set(previous.files) - keep:
        if "/" not in name and "\\" not in name and name not in (".", ".."):
            (out_dir / name).unlink(missing_ok=True)


def training_clip_models(table: Any) -> list[str]:
    """The CLIP models whose scores the train split holds (sorted; empty when it has none).

    Recorded in the model card (``facts["clip_models"]``) so ``predict`` can skip CLIP for
    models that never saw a score, and warn when models that did get a GIF without scores.
    """
    train = table[table["split"] == "train"]
    return sorted({str(m) for m in train["clip_model"].dropna().unique()})


def export_models(
    bundles: Mapping[str, Mapping[str, Any]],
    scaler_path: Path | str,
    out_dir: Path | str,
    *,
    card_facts: Mapping[str, Any],
) -> ModelCard:
    """Write every engine's bundle, its native boosters, the scaler and ``model_card.json``.

    ``card_facts`` must hold ``dataset_version``; ``code_version`` defaults to this checkout's;
    ``metrics`` maps engine → {name: value} (else the bundle's ``extra["metrics"]``); any other
    key is kept under the card's ``facts``. Returns the card written.
    """
    if not bundles:
        raise ValueError("no bundles to export")
    if "dataset_version" not in card_facts:
        raise ValueError("card_facts needs 'dataset_version'")
    for engine, bundle in bundles.items():
        _check_bundle(engine, bundle)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    metrics = card_facts.get("metrics") or {}

    files: dict[str, bytes] = {}
    engines: dict[str, dict[str, Any]] = {}
    for engine in sorted(bundles):
        bundle = bundles[engine]
        written, boosters = _engine_files(engine, bundle)
        files.update(written)
        engines[engine] = {
            "formulation": bundle["formulation"],
            "lossy_levels": [int(v) for v in bundle["lossy_levels"]],
            "bundle": f"{engine}.pkl",
            "boosters": boosters,
            "offset": _offset_card(bundle),
            "metrics": _jsonable(metrics.get(engine, bundle.get("extra", {}).get("metrics", {}))),
            "extra": _jsonable(bundle.get("extra", {})),
        }
    files[SCALER_NAME], scaler = _read_scaler(Path(scaler_path))

    card = ModelCard(
        schema_version=MetricRecordV1.SCHEMA_VERSION,
        dataset_version=str(card_facts["dataset_version"]),
        code_version=str(card_facts.get("code_version") or code_version()),
        feature_names=MODEL_INPUTS,
        engines=engines,
        files={name: hashlib.sha256(data).hexdigest() for name, data in sorted(files.items())},
        lossy_levels=tuple(sorted({lv for e in engines.values() for lv in e["lossy_levels"]})),
        scaler_mean=tuple(_jsonable(scaler.mean_)),
        scaler_scale=tuple(_jsonable(scaler.scale_)),
        libraries={
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scikit-learn": sklearn.__version__,
            "xgboost": xgboost.__version__,
        },
        facts=_jsonable(
            {
                k: v
                for k, v in card_facts.items()
                if k not in ("dataset_version", "code_version", "metrics")
            }
        ),
    )
    _remove_stale(out_dir, set(files))
    for name, data in files.items():
        write_atomic(out_dir / name, data)
    write_atomic(out_dir / CARD_NAME, card.to_json_bytes())
    return card
