"""Train/validation/test membership of a GIF, decided by its sha256 alone.

A GIF's split depends on nothing but its own hash, so adding GIFs never moves an existing one,
and every render of a GIF lands in the same split (no render-level leakage between splits).
A GIF derived from another by ``giflab run --augment`` takes its source's split (``group_of``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import pandas as pd

# Percent of GIFs per split, in bucket order: buckets 0-69 train, 70-84 val, 85-99 test.
SPLIT_SHARES = {"train": 70, "val": 15, "test": 15}
# Changing the salt reshuffles every GIF: bump it only together with MetricRecordV1's version.
SPLIT_SALT = "giflab-split-v1"


def split_bucket(gif_sha: str) -> int:
    """The GIF's bucket in 0..99: salted sha256 of its hash, first 32 bits, modulo 100."""
    digest = hashlib.sha256(f"{SPLIT_SALT}:{gif_sha}".encode()).hexdigest()
    return int(digest[:8], 16) % 100


def split_of(gif_sha: str) -> str:
    """``"train"``, ``"val"`` or ``"test"`` for ``gif_sha`` (70/15/15, stable forever)."""
    bucket = split_bucket(gif_sha)
    upper = 0
    for name, share in SPLIT_SHARES.items():
        upper += share
        if bucket < upper:
            return name
    raise AssertionError("SPLIT_SHARES must add up to 100")


def split_map(gif_shas: Iterable[str]) -> dict[str, str]:
    """``{gif_sha: split}`` for every distinct hash in ``gif_shas``."""
    return {sha: split_of(sha) for sha in set(gif_shas)}


def group_of(table: pd.DataFrame) -> pd.Series:
    """Per row of a training table, the hash whose split the row follows.

    A GIF derived from another (``giflab.augment``) follows its source, so that no crop of a
    validation or test GIF is trained on; any other GIF follows its own hash.
    """
    from giflab.augment import derived_source

    sources = table["source_metadata"].map(derived_source)
    return sources.where(sources.notna(), table["gif_sha"]).astype(str)


def is_derived(table: pd.DataFrame) -> pd.Series:
    """Per row of a training table: is it a render of a derived (augmentation) GIF?"""
    from giflab.augment import derived_source

    return table["source_metadata"].map(derived_source).notna().astype(bool)
