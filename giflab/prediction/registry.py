"""The MLflow model registry for the curve models: register, then promote on merit.

Each engine's model is registered as ``giflab-curve-<engine>``, logged "from code" as a
``CurveModel`` over the exported files (docs/models.md, "MLflow registry"). Every new version
gets the alias ``candidate``; ``champion`` moves to it only when it scores better (lower) than
the current champion on the same test rows, or when there is no champion.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import io
import math
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from giflab.errors import GifLabError
from giflab.prediction.load import CARD_NAME, SCALER_NAME, load_models
from giflab.prediction.tracking import (
    MlflowSettings,
    experiment_id,
    mlflow_client,
    mlflow_env,
    mlflow_uris,
)

# What MLflow prints to stderr while registering (``eprint``, not logging): the CLI reports the
# version and alias itself, so these lines are dropped and anything else is passed on.
REGISTRATION_CHATTER = ("Successfully registered model ", "Created version ", "Registered model ")

CANDIDATE = "candidate"
CHAMPION = "champion"
MODEL_ARTIFACT_NAME = "curve-model"


def registered_model_name(engine: str) -> str:
    """The registry name of ``engine``'s curve model."""
    return f"giflab-curve-{engine}"


@dataclass(frozen=True)
class Promotion:
    """What ``promote_if_better`` did: scores compared, and whether ``champion`` moved."""

    name: str
    version: str
    promoted: bool
    candidate_score: float
    champion_version: str | None
    champion_score: float | None
    reason: str


def _pin(*dists: str) -> str:
    for dist in dists:
        try:
            return f"{dist}=={importlib.metadata.version(dist)}"
        except importlib.metadata.PackageNotFoundError:
            continue
    return dists[0]


def pip_requirements() -> list[str]:
    """What a registered model needs, pinned to this environment (never inferred: no pip run).

    The ``CurveModel`` class lives in GifLab, so serving also needs giflab importable.
    """
    return [
        _pin("mlflow"),
        _pin("numpy"),
        _pin("pandas"),
        _pin("scikit-learn"),
        _pin("xgboost", "xgboost-cpu"),
    ]


def model_input_frame(frame):
    """``frame``'s ``MODEL_INPUTS`` in order, typed as in the training table (int, float, bool).

    These types are the registered models' signature: MLflow refuses to cast int to double on
    its own, so inputs typed like the table (or via this function) are what a model accepts.
    """
    import pandas as pd

    from giflab.dataset.columns import MODEL_INPUTS
    from giflab.dataset.validate import field_kind
    from giflab.schemas import MetricRecordV1

    dtypes = {"int": "int64", "float": "float64", "bool": "bool"}
    frame = pd.DataFrame(frame)
    return pd.DataFrame(
        {n: frame[n].astype(dtypes[field_kind(MetricRecordV1, n)]) for n in MODEL_INPUTS}
    )


def _stage_engine(model_dir: Path, engine: str, dest: Path) -> None:
    """Copy what one engine's pyfunc needs (card, scaler, its files) into ``dest``."""
    card = load_models(model_dir, engines=[engine]).card  # verified before it is logged
    dest.mkdir()
    for name in (CARD_NAME, SCALER_NAME, *card.engine_files(engine)):
        shutil.copyfile(model_dir / name, dest / name)


@mlflow_env()
def register_curve_model(
    settings: MlflowSettings,
    engine: str,
    model_dir: Path | str,
    *,
    input_example,
    run_id: str | None = None,
) -> str:
    """Log ``engine``'s exported model (``model_dir``) as a pyfunc, register it as
    ``giflab-curve-<engine>`` with alias ``candidate``; returns the new version.

    ``input_example`` holds raw ``MODEL_INPUTS`` rows (e.g. training-table rows); its first
    rows, typed by ``model_input_frame``, are the example and make the signature. With
    ``run_id`` the model is logged to that training run.
    """
    from mlflow.models import infer_signature

    from giflab.prediction.pyfunc_model import ENTRY_SCRIPT, MODELS_ARTIFACT, predict_frame

    model_dir = Path(model_dir)
    name = registered_model_name(engine)
    with tempfile.TemporaryDirectory() as tmp:
        staged = Path(tmp) / MODELS_ARTIFACT
        _stage_engine(model_dir, engine, staged)
        loaded = load_models(staged, engines=[engine])
        card = loaded.card
        example = model_input_frame(input_example.head(5)).reset_index(drop=True)
        with warnings.catch_warnings():
            # Integer inputs are intended: the table's integer columns are never null.
            warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
            signature = infer_signature(example, predict_frame(loaded, engine, example))
        exp_id = None if run_id is not None else experiment_id(settings)
        entry = Path(tmp) / "curve_model.py"
        entry.write_text(ENTRY_SCRIPT, encoding="utf-8")
        with mlflow_uris(settings) as mlflow:
            # An existing (training) run keeps its name; only a run of our own gets one.
            run_name = None if run_id is not None else f"register-{engine}"
            with mlflow.start_run(run_id=run_id, experiment_id=exp_id, run_name=run_name):
                with _without_registration_chatter():
                    info = mlflow.pyfunc.log_model(
                        name=MODEL_ARTIFACT_NAME,
                        python_model=str(entry),
                        model_config={"engine": engine},
                        artifacts={MODELS_ARTIFACT: str(staged)},
                        signature=signature,
                        input_example=example,
                        pip_requirements=pip_requirements(),
                        registered_model_name=name,
                    )
    version = str(info.registered_model_version)
    client = mlflow_client(settings)
    client.update_registered_model(
        name,
        description=(
            f"GifLab compression-curve model for {engine}: predicts the kilobytes of a GIF after "
            f"{engine} at each (lossy, colors, frame_keep) from its features and metadata "
            "(inputs in the signature; docs/models.md). Alias `champion`: the best version on "
            "the test split; `candidate`: the newest."
        ),
    )
    client.update_model_version(
        name,
        version,
        description=(
            f"formulation {card.engines[engine]['formulation']}; dataset {card.dataset_version}; "
            f"code {card.code_version}; feature schema v{card.schema_version}"
        ),
    )
    for key, value in {
        "giflab.engine": engine,
        "giflab.dataset_version": card.dataset_version,
        "giflab.code_version": card.code_version,
        "giflab.formulation": card.engines[engine]["formulation"],
        "giflab.schema_version": str(card.schema_version),
    }.items():
        client.set_model_version_tag(name, version, key, value)
    client.set_registered_model_alias(name, CANDIDATE, version)
    return version


def _alias_version(client, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def _score(mlflow, uri: str, inputs, truth: np.ndarray, score: Callable) -> float:
    model = mlflow.pyfunc.load_model(uri)
    predicted = np.asarray(model.predict(model_input_frame(inputs)), dtype=np.float64)
    return float(score(np.asarray(truth, dtype=np.float64), predicted))


@mlflow_env()
def promote_if_better(
    settings: MlflowSettings,
    engine: str,
    version: str,
    *,
    test_inputs,
    test_kilobytes,
    score: Callable[[np.ndarray, np.ndarray], float],
) -> Promotion:
    """Score ``version`` and the current champion on the same test rows with ``score(truth,
    predicted)`` (lower is better); move ``champion`` to ``version`` if it wins or there is no
    champion. A champion that cannot load or score these rows is replaced (reason says so)."""
    from mlflow.exceptions import MlflowException

    name = registered_model_name(engine)
    client = mlflow_client(settings)
    version = str(version)
    champion = _alias_version(client, name, CHAMPION)
    champion_score = None
    with mlflow_uris(settings) as mlflow:
        cand = _score(mlflow, f"models:/{name}/{version}", test_inputs, test_kilobytes, score)
        if champion is None:
            promoted, reason = True, "no champion yet"
        elif champion == version:
            promoted, reason = False, "already the champion"
        elif not math.isfinite(cand):
            promoted, reason = False, f"candidate score is {cand}"
        else:
            try:
                champion_score = _score(
                    mlflow, f"models:/{name}@{CHAMPION}", test_inputs, test_kilobytes, score
                )
            except (GifLabError, MlflowException, ValueError, KeyError) as e:
                promoted, reason = True, f"champion v{champion} could not be scored: {e}"
            else:
                promoted = not cand >= champion_score  # a NaN champion score loses
                verdict = "better than" if promoted else "not better than"
                reason = f"{cand:.6g} {verdict} champion v{champion}'s {champion_score:.6g}"
    client.set_model_version_tag(name, version, "giflab.test_score", repr(cand))
    if promoted:
        client.set_registered_model_alias(name, CHAMPION, version)
    return Promotion(name, version, promoted, cand, champion, champion_score, reason)


@contextlib.contextmanager
def _without_registration_chatter() -> Iterator[None]:
    """Hold back MLflow's registration prints on stderr while inside; pass the rest on."""
    held = io.StringIO()
    try:
        with contextlib.redirect_stderr(held):
            yield
    finally:
        for line in held.getvalue().splitlines(keepends=True):
            if not line.startswith(REGISTRATION_CHATTER):
                sys.stderr.write(line)


def publish_curve_model(
    settings: MlflowSettings,
    engine: str,
    model_dir: Path | str,
    *,
    input_example,
    test_inputs,
    test_kilobytes,
    score: Callable[[np.ndarray, np.ndarray], float],
    run_id: str | None = None,
) -> Promotion:
    """``register_curve_model`` then ``promote_if_better``: the whole hand-over of one engine."""
    version = register_curve_model(
        settings, engine, model_dir, input_example=input_example, run_id=run_id
    )
    return promote_if_better(
        settings,
        engine,
        version,
        test_inputs=test_inputs,
        test_kilobytes=test_kilobytes,
        score=score,
    )
