"""Splits: 70/15/15 by GIF hash, deterministic, stable when GIFs are added, one split per GIF."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest

from giflab.dataset import build_training_table, load_tables, split_of
from giflab.dataset.splits import SPLIT_SHARES, split_bucket, split_map
from tests.dataset_db import dataset_db


def synthetic_shas(n: int, start: int = 0) -> list[str]:
    return [hashlib.sha256(f"gif {i}".encode()).hexdigest() for i in range(start, start + n)]


def test_proportions_are_70_15_15_over_many_gifs():
    shas = synthetic_shas(40_000)
    counts = Counter(split_of(s) for s in shas)
    for name, share in SPLIT_SHARES.items():
        # 3 standard deviations of a binomial share at n = 40 000 is below 0.6 points.
        assert abs(100 * counts[name] / len(shas) - share) < 1.0, (name, counts)


def test_buckets_cover_0_to_99_evenly():
    buckets = Counter(split_bucket(s) for s in synthetic_shas(20_000))
    assert set(buckets) == set(range(100))
    assert max(buckets.values()) < 2 * min(buckets.values())


@pytest.mark.parametrize(
    ("gif_sha", "expected"),
    [
        ("0" * 64, "train"),
        ("f" * 64, "val"),
        (hashlib.sha256(b"gif 0").hexdigest(), "train"),
        (hashlib.sha256(b"gif 13").hexdigest(), "val"),
        (hashlib.sha256(b"gif 21").hexdigest(), "test"),
    ],
)
def test_split_is_pinned(gif_sha, expected):
    # A change here reshuffles every dataset: it must be deliberate (new SPLIT_SALT, new schema).
    assert split_of(gif_sha) == expected


def test_adding_gifs_moves_no_existing_gif():
    before = split_map(synthetic_shas(2_000))
    after = split_map(synthetic_shas(2_000) + synthetic_shas(3_000, start=2_000))
    assert {s: after[s] for s in before} == before


def test_real_gifs_each_in_one_split_and_stable_when_gifs_are_added():
    metadata, features, runs = load_tables(dataset_db())
    table = build_training_table(metadata, features, runs)
    per_gif = table.groupby("gif_sha")["split"].agg(set)
    assert all(len(s) == 1 for s in per_gif)
    assert {sha: s.pop() for sha, s in per_gif.items()} == {
        sha: split_of(sha) for sha in per_gif.index
    }
    assert {"train"} < set(table["split"])  # the fixture has train and held-out GIFs

    # Build again from all GIFs but one: the others keep their split.
    dropped = sorted(per_gif.index)[0]
    smaller = build_training_table(
        metadata[metadata["gif_sha"] != dropped],
        features[features["gif_sha"] != dropped],
        {k: v[v["gif_sha"] != dropped] for k, v in runs.items()},
    )
    assert dropped not in set(smaller["gif_sha"])
    kept = smaller.drop_duplicates("gif_sha").set_index("gif_sha")["split"]
    full = table.drop_duplicates("gif_sha").set_index("gif_sha")["split"]
    assert kept.to_dict() == full[kept.index].to_dict()
