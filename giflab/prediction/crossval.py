"""Grouped k-fold cross-validation of the curve models: every GIF is held out exactly once.

With a corpus of tens or hundreds of GIFs the canonical test split holds a handful of GIFs, so
its numbers are anecdotes (docs/dataset.md, Small corpora). Cross-validation scores every GIF
with a model that never saw it: fold ``k`` is the test split, fold ``k+1`` the validation split
(early stopping, formulation choice), the rest train — and the scaler is refitted per fold on its
train GIFs. Folds come from the GIF hash, so they are deterministic and a GIF's renders stay
together; a derived GIF (``giflab run --augment``) is in its source's fold and is only ever
trained on, never scored.
"""

from __future__ import annotations

import hashlib

import pandas as pd

from giflab.dataset.scaler import fit_scaler
from giflab.dataset.splits import group_of, is_derived
from giflab.prediction.config import TrainConfig
from giflab.prediction.evaluate import Evaluation, _errors, _summary, evaluate
from giflab.prediction.train import train_all


def fold_of(gif_sha: str, folds: int) -> int:
    """The fold (0 … folds-1) of a GIF, from its hash alone."""
    digest = hashlib.sha256(f"giflab-cv-v1:{gif_sha}".encode()).digest()
    return int.from_bytes(digest[:4], "big") % folds


def cross_validate(
    table: pd.DataFrame, config: TrainConfig | None = None, folds: int = 5
) -> Evaluation:
    """Out-of-fold predictions for every GIF of ``table``; errors and summary as ``evaluate``.

    ``table`` is a training table (its own ``split`` column is ignored). Needs ``folds >= 3``.
    """
    if folds < 3:
        raise ValueError("cross-validation needs at least 3 folds (train, val, test)")
    fold = group_of(table).map(lambda s: fold_of(s, folds))
    derived = is_derived(table)
    parts = []
    for k in range(folds):
        relabelled = table.copy()
        relabelled["split"] = "train"
        relabelled.loc[fold == (k + 1) % folds, "split"] = "val"
        relabelled.loc[fold == k, "split"] = "test"
        # Derived GIFs only ever train: those of this fold's val and test GIFs are left out.
        relabelled = relabelled[~(derived & (relabelled["split"] != "train"))]
        if not (relabelled["split"] == "test").any():
            continue
        scaler = fit_scaler(relabelled)
        models = train_all(relabelled, scaler, config)
        parts.append(evaluate(relabelled, scaler, models, split="test").predictions)
    predictions = pd.concat(parts, ignore_index=True)
    errors = _errors(predictions)
    summary = {"split": f"{folds}-fold", **_summary(predictions, errors)}
    summary["engines"] = {
        engine: _summary(
            predictions[predictions["engine"] == engine], errors[errors["engine"] == engine]
        )
        for engine in sorted(predictions["engine"].unique())
    }
    return Evaluation(
        split=summary["split"], predictions=predictions, errors=errors, summary=summary
    )
