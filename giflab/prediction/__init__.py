"""Curve models: per engine, predicted kilobytes over (lossy, colours, frame_keep) for a GIF.

Trained from the dataset layer's training table and scaler; XGBoost on the log size ratio,
monotone in lossy. Reference: docs/models.md.

    table = build_training_table(*load_tables("data/giflab.db"))
    scaler = fit_scaler(table)
    models = train_all(table, scaler, TrainConfig())       # {engine: TrainedEngine}
    report = evaluate(table, scaler, models, split="test")  # errors, baseline, hit rate
    png = error_by_level_png(report.errors)

Names are imported on first use, so ``import giflab.prediction`` does not import xgboost or
matplotlib (``giflab.prediction.load`` serves predictions without training code). ``evaluate``
is not among them: it shares its module's name, which is what ``giflab.prediction.evaluate``
means once anything has imported the module; use ``from giflab.prediction.evaluate import
evaluate``.
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "bundle": ("make_bundle", "predict_kilobytes", "predict_log_ratio"),
    "config": ("TrainConfig",),
    "evaluate": (
        "Evaluation",
        "baseline_kilobytes",
        "baseline_ratios",
        "pick_hits",
        "predicted_kilobytes",
    ),
    "plots": ("curves_png", "error_by_level_png", "gain_shares", "importance_png"),
    "train": ("TrainedEngine", "TrainingError", "model_matrix", "train_all", "train_engine"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'giflab.prediction' has no attribute {name!r}")
    return getattr(importlib.import_module(f"giflab.prediction.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
