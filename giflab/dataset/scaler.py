"""The feature scaler: a ``StandardScaler`` over ``GIF_FEATURES``, fitted on train GIFs only.

It is fitted on one row per GIF — not per render, which would weight a GIF by how many variants
it has — and only on the train split, so validation and test GIFs never leak into it. CLIP
scores may be NULL: scikit-learn ignores NaN when fitting and passes it through when
transforming; a feature with no value at all in train has ``mean_``/``scale_`` NaN.

``save_scaler`` rewrites ``scaler.pkl`` only when the fingerprint of what it was fitted on
changed; the pickle is canonical, so the same fit gives the same bytes.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import sklearn
from sklearn.preprocessing import StandardScaler

from giflab.dataset.columns import GIF_FEATURES
from giflab.dataset.validate import DatasetError
from giflab.files import write_atomic

PICKLE_PROTOCOL = 4


@dataclass(frozen=True)
class SavedScaler:
    """Where the scaler is, the sha256 of its bytes, and whether this call wrote them."""

    path: Path
    sha256: str
    rewritten: bool
    fingerprint: str


def train_gif_features(table: pd.DataFrame) -> pd.DataFrame:
    """One row per train GIF (sorted by sha, indexed by it), ``GIF_FEATURES`` as float64."""
    train = table[table["split"] == "train"].drop_duplicates("gif_sha")
    train = train.sort_values("gif_sha", kind="mergesort").set_index("gif_sha")
    return train[list(GIF_FEATURES)].astype("float64")


def fit_scaler(table: pd.DataFrame) -> StandardScaler:
    """A ``StandardScaler`` fitted on the train GIFs of the training table (NaN-tolerant)."""
    features = train_gif_features(table)
    if features.empty:
        raise DatasetError("no train GIFs in the training table: cannot fit the scaler")
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        # All-NaN columns (CLIP without weights) warn on 0/0; their NaN statistics are intended.
        warnings.simplefilter("ignore", RuntimeWarning)
        return StandardScaler().fit(features)


def scaler_fingerprint(table: pd.DataFrame) -> str:
    """sha256 of what the scaler is fitted on: feature names, train GIFs' values, sklearn version.

    The scikit-learn version is included because a pickle is only loadable by the version that
    wrote it (a new version means a refit).
    """
    features = train_gif_features(table)
    values = features.to_numpy(dtype="float64", na_value=np.nan)
    values = np.where(np.isnan(values), np.nan, values + 0.0)  # one NaN pattern, no -0.0
    header = {"features": list(GIF_FEATURES), "rows": len(values), "sklearn": sklearn.__version__}
    digest = hashlib.sha256(json.dumps(header, sort_keys=True).encode())
    digest.update(values.astype("<f8").tobytes())
    return digest.hexdigest()


def _canonical(scaler: StandardScaler) -> StandardScaler:
    """A copy whose pickle depends only on the fitted values (fixed attribute order, no aliasing)."""
    fresh = StandardScaler(**scaler.get_params())
    for name in sorted(k for k in vars(scaler) if k.endswith("_") and not k.startswith("_")):
        value = getattr(scaler, name)
        if isinstance(value, np.ndarray) and value.dtype == object:
            value = np.array([str(v) for v in value], dtype=object)
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            value = np.where(np.isnan(value), np.nan, value).astype(value.dtype)
        elif isinstance(value, np.ndarray):
            value = value.copy()
        setattr(fresh, name, value)
    return fresh


def scaler_bytes(scaler: StandardScaler) -> bytes:
    """The canonical pickle of ``scaler`` (same fitted values → same bytes)."""
    return pickle.dumps(_canonical(scaler), protocol=PICKLE_PROTOCOL)


def save_scaler(scaler: StandardScaler, path: Path | str, fingerprint: str) -> SavedScaler:
    """Write ``scaler`` to ``path`` unless it already holds a scaler of ``fingerprint``.

    The fingerprint and the file's sha256 live in ``<path stem>.json`` beside it; when both
    match, the file is left byte-identical and ``rewritten`` is False.
    """
    path = Path(path)
    sidecar = path.with_suffix(".json")
    if path.is_file() and sidecar.is_file():
        current = hashlib.sha256(path.read_bytes()).hexdigest()
        try:
            recorded = json.loads(sidecar.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            recorded = {}
        if recorded.get("fingerprint") == fingerprint and recorded.get("sha256") == current:
            return SavedScaler(path, current, rewritten=False, fingerprint=fingerprint)
    data = scaler_bytes(scaler)
    digest = hashlib.sha256(data).hexdigest()
    write_atomic(path, data)
    info = {
        "fingerprint": fingerprint,
        "sha256": digest,
        "features": [str(n) for n in getattr(scaler, "feature_names_in_", GIF_FEATURES)],
        "n_gifs": int(np.max(scaler.n_samples_seen_)),
        "sklearn": sklearn.__version__,
    }
    write_atomic(sidecar, (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
    return SavedScaler(path, digest, rewritten=True, fingerprint=fingerprint)


def load_scaler(path: Path | str) -> StandardScaler:
    """The scaler pickled at ``path`` (a file this project wrote: pickles run code when loaded)."""
    with open(path, "rb") as f:
        return pickle.load(f)
