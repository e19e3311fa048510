"""What a training table is (``dataset_version``) and what built it (``code_version``).

``dataset_version`` is the sha256 of a canonical serialisation of the table's record columns,
column by column in ``RECORD_COLUMNS`` order over rows sorted by ``SORT_KEY``. Each column is
serialised by its type in ``MetricRecordV1`` — not by its pandas dtype — so the same values
hash the same whatever the input row order, the dtypes pandas chose (int64 or Int64, object or
str) or a round trip through CSV/Parquet:

* float: a null mask (one byte per row) then IEEE-754 binary64 little-endian; nulls as 0.0,
  ``-0.0`` as ``0.0``;
* int: a null mask then int64 little-endian (nulls as 0); bool: a null mask then one byte;
* str: the JSON list of the values (UTF-8, nulls as ``null``).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd

import giflab
from giflab.dataset.columns import RECORD_COLUMNS, SORT_KEY
from giflab.dataset.validate import field_kind
from giflab.schemas import MetricRecordV1

_PACKAGE_DIR = Path(giflab.__file__).resolve().parent


def _column_bytes(series: pd.Series, kind: str) -> bytes:
    nulls = series.isna().to_numpy(dtype=bool)
    if kind == "str":
        values = [None if null else str(v) for v, null in zip(series.tolist(), nulls, strict=True)]
        return json.dumps(values, ensure_ascii=False, separators=(",", ":")).encode()
    if kind == "float":
        values = series.astype("float64").to_numpy(dtype="float64", na_value=np.nan)
        values = np.where(nulls, 0.0, values) + 0.0  # + 0.0 turns -0.0 into 0.0
        payload = values.astype("<f8").tobytes()
    elif kind == "int":
        payload = series.astype("Int64").to_numpy(dtype="<i8", na_value=0).tobytes()
    else:
        payload = series.astype("boolean").to_numpy(dtype="uint8", na_value=0).tobytes()
    return nulls.astype("uint8").tobytes() + payload


def dataset_version(table: pd.DataFrame) -> str:
    """sha256 (hex) of ``table``'s ``RECORD_COLUMNS``, independent of row and column order."""
    rows = table.sort_values(list(SORT_KEY), kind="mergesort", ignore_index=True)
    digest = hashlib.sha256(
        f"giflab-training-table MetricRecordV1 v{MetricRecordV1.SCHEMA_VERSION}\n".encode()
    )
    digest.update(f"rows {len(rows)}\n".encode())
    for name in RECORD_COLUMNS:
        kind = field_kind(MetricRecordV1, name)
        digest.update(f"{name}\t{kind}\n".encode())
        digest.update(_column_bytes(rows[name], kind))
    return digest.hexdigest()


def _git(*args: str) -> str | None:
    git = shutil.which("git")
    if git is None:
        return None
    try:
        proc = subprocess.run(  # noqa: S603 - argument list, no shell
            [git, "-C", str(_PACKAGE_DIR), *args],
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return proc.stdout.strip() if proc.returncode == 0 else None


def code_version() -> str:
    """``<package version>+<short git revision>[+dirty]``, or the bare version outside git.

    The revision is used only when ``giflab/`` is tracked by the repository it sits in (not,
    say, an installed copy under some other checkout). Dirty means tracked files changed.
    """
    version = giflab.__version__
    if _git("ls-files", "--error-unmatch", "__init__.py") is None:
        return version
    revision = _git("rev-parse", "--short", "HEAD")
    if not revision:
        return version
    changes = _git("status", "--porcelain", "--untracked-files=no")
    return f"{version}+{revision}" + ("+dirty" if changes else "")
