"""A real GifLab database big enough to train and evaluate curve models, built once per process.

The ``N_GIFS`` corpus GIFs cheapest to decode (width x height x frames) of at least
``MIN_BYTES`` go through the domain code —
``metadata_record``, ``extract_features`` (no CLIP: its six scores are NULL, as without
weights), ``sweep_gif`` with gifsicle over lossy {0, 40, 80, 120} x colours {256, 32} x
frame_keep {1.0} — and are written by the SQLite IO manager's ``write_rows``. Metrics are
measured on at most ``MAX_METRIC_FRAMES`` frames: the models need sizes, not fine metrics.

Built per test process (xdist workers do not share it); ``training_table()`` returns a fresh
copy on every call, so tests cannot leak changes into each other.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from giflab.compression import SweepTask, sweep_gif, variant_matrix
from giflab.dataset import build_training_table, load_tables
from giflab.dataset.splits import split_of
from giflab.engines import get_engine
from giflab.engines.config import EngineConfig
from giflab.features import FEATURES_VERSION, extract_features
from giflab.meta import metadata_record
from giflab.schemas import GifFeaturesV1
from io_managers.sqlite_io_manager import write_rows
from tests.conftest import good_corpus_gifs

LOSSY = (0, 40, 80, 120)
COLORS = (256, 32)
FRAME_KEEP = (1.0,)
VARIANTS = variant_matrix(lossy=LOSSY, colors=COLORS, frame_keep=FRAME_KEEP)
N_GIFS = 34
# Below ~400 B a "GIF" is a 1-4 pixel decoder test case: its size is all header, not image.
MIN_BYTES = 400
MAX_METRIC_FRAMES = 4


def _decoded_pixels(path: Path) -> int:
    with Image.open(path) as im:
        return im.width * im.height * getattr(im, "n_frames", 1)


def pick_gifs() -> list[Path]:
    """The ``N_GIFS`` good corpus GIFs of at least ``MIN_BYTES`` with the fewest decoded pixels.

    Decoded pixels, not file size, is what a sweep costs: a 9 KB terminal recording holds 76
    megapixels and takes 20x longer than a 400 KB two-frame photo.
    """
    real = [p for p in good_corpus_gifs() if p.stat().st_size >= MIN_BYTES]
    by_cost = sorted(real, key=lambda p: (_decoded_pixels(p), p.stat().st_size, p.name))
    if len(by_cost) < N_GIFS:
        pytest.skip(f"the corpus has {len(by_cost)} usable GIFs, training tests need {N_GIFS}")
    return by_cost[:N_GIFS]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def training_db() -> Path:
    """Path of the database (in a temp folder removed when the process exits)."""
    if not get_engine("gifsicle", EngineConfig()).available().ok:
        pytest.skip("gifsicle is not installed")
    gifs = pick_gifs()
    shas = [_sha(p) for p in gifs]
    splits = {split_of(s) for s in shas}
    if splits != {"train", "val", "test"}:
        pytest.fail(f"training GIFs must cover train, val and test, got {sorted(splits)}")
    root = Path(tempfile.mkdtemp(prefix="giflab-training-"))
    atexit.register(shutil.rmtree, root, True)
    db = root / "giflab.db"
    metadata, features, runs = [], [], []
    for path, sha in zip(gifs, shas, strict=True):
        metadata.append(metadata_record(sha, [(str(path), path.name)]))
        result = extract_features(path)
        features.append(
            GifFeaturesV1(
                gif_sha=sha,
                **result.values,
                clip_model=None,
                clip_missing_reason=result.clip_missing_reason,
                features_version=FEATURES_VERSION,
            )
        )
        task = SweepTask(
            sha,
            str(path),
            "gifsicle",
            EngineConfig(),
            tuple(VARIANTS),
            str(root / "tmp"),
            max_metric_frames=MAX_METRIC_FRAMES,
        )
        runs += sweep_gif(task)
    write_rows(db, "gif_metadata", metadata, "gif_sha", shas)
    write_rows(db, "gif_features", features, "gif_sha", shas)
    write_rows(db, "compression_runs_gifsicle", runs, "gif_sha", shas)
    return db


@cache
def _training_table() -> pd.DataFrame:
    return build_training_table(*load_tables(training_db()))


def training_table() -> pd.DataFrame:
    """The validated training table of ``training_db()`` (a fresh copy on every call)."""
    return _training_table().copy(deep=True)
