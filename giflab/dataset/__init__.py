"""The dataset layer: the training table, its splits, the feature scaler, reports and exports.

Pure functions over pandas DataFrames — the Dagster assets call them with what the SQLite IO
manager loads; the CLI reads the same tables with ``load_tables``. Reference: docs/dataset.md.

    tables = load_tables("data/giflab.db")
    table = build_training_table(*tables)          # validated, sorted, versioned
    scaler = fit_scaler(table)                     # train GIFs only
    save_scaler(scaler, "data/scaler.pkl", scaler_fingerprint(table))
    export_dataset(table, "data/export")           # CSV + Parquet

Names are imported on first use, so ``giflab.dataset.columns`` stays cheap to import (no
scikit-learn, matplotlib or pyarrow until a function needs them).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "build": ("build_training_table", "source_fields", "table_summary"),
    "export": ("ExportedDataset", "export_dataset", "export_schema", "read_export"),
    "reports": ("correlation_report", "outlier_report", "outlier_summary"),
    "scaler": (
        "SavedScaler",
        "fit_scaler",
        "load_scaler",
        "save_scaler",
        "scaler_fingerprint",
        "train_gif_features",
    ),
    "splits": ("split_of",),
    "tables": ("DatasetTables", "load_tables"),
    "validate": ("DatasetError", "RecordValidationError", "validate_frame"),
    "versions": ("code_version", "dataset_version"),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}

__all__ = sorted(_MODULE_OF)


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'giflab.dataset' has no attribute {name!r}")
    return getattr(importlib.import_module(f"giflab.dataset.{module}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
