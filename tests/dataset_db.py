"""A real GifLab database for the dataset tests, built once per test process.

Small real GIFs from the corpus go through the domain code — ``metadata_record``,
``extract_features`` (no CLIP: its six scores are NULL, as without weights), ``sweep_gif`` with
gifsicle over a 2 x 2 x 2 variant matrix — and the rows are written by the SQLite IO manager's
``write_rows``, as the Dagster assets write them. One failed render row is added, shaped as
``sweep_gif`` records an engine failure.
"""

from __future__ import annotations

import atexit
import hashlib
import shutil
import tempfile
from functools import cache
from pathlib import Path

import pytest

from giflab.compression import SweepTask, sweep_gif, variant_matrix
from giflab.dataset.splits import split_of
from giflab.engines import get_engine
from giflab.engines.config import EngineConfig
from giflab.features import FEATURES_VERSION
from giflab.meta import metadata_record
from giflab.schemas import CompressionRunV1, GifFeaturesV1
from io_managers.sqlite_io_manager import write_rows
from tests.conftest import corpus_features, good_corpus_gifs

VARIANTS = variant_matrix(lossy=(0, 80), colors=(256, 16), frame_keep=(1.0, 0.5))
MAX_GIFS = 7
# The GIF whose registered path is nested, to exercise source_platform and tags.
NESTED_REL = "giphy/cats/loops"


def pick_gifs() -> list[Path]:
    """Up to ``MAX_GIFS`` small but real GIFs (400 B - 32 KB), smallest first."""
    small = [p for p in good_corpus_gifs() if 400 <= p.stat().st_size <= 32 * 1024]
    return sorted(small, key=lambda p: (p.stat().st_size, p.name))[:MAX_GIFS]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def dataset_db() -> Path:
    """Path of the database (in a temp folder removed when the process exits)."""
    if not get_engine("gifsicle", EngineConfig()).available().ok:
        pytest.skip("gifsicle is not installed")
    gifs = pick_gifs()
    shas = [_sha(p) for p in gifs]
    splits = {split_of(s) for s in shas}
    if "train" not in splits or splits == {"train"}:
        pytest.fail(f"test GIFs must include train and non-train GIFs, got {sorted(splits)}")
    root = Path(tempfile.mkdtemp(prefix="giflab-dataset-"))
    atexit.register(shutil.rmtree, root, True)
    db = root / "giflab.db"
    metadata, features, runs = [], [], []
    for i, (path, sha) in enumerate(zip(gifs, shas, strict=True)):
        rel = f"{NESTED_REL}/{path.name}" if i == 0 else path.name
        metadata.append(metadata_record(sha, [(str(path), rel)]))
        result = corpus_features(path)
        features.append(
            GifFeaturesV1(
                gif_sha=sha,
                **result.values,
                clip_model=None,
                clip_missing_reason=result.clip_missing_reason,
                features_version=FEATURES_VERSION,
            )
        )
        task = SweepTask(sha, str(path), "gifsicle", EngineConfig(), tuple(VARIANTS), str(root))
        runs += sweep_gif(task)
    runs.append(
        CompressionRunV1(
            gif_sha=shas[0],
            engine="gifsicle",
            lossy=120,
            colors=16,
            frame_keep=1.0,
            status="failed",
            error="timed out after 300 s",
            kept_frames=1,
            applied={},
            argv=[],
        )
    )
    write_rows(db, "gif_metadata", metadata, "gif_sha", shas)
    write_rows(db, "gif_features", features, "gif_sha", shas)
    write_rows(db, "compression_runs_gifsicle", runs, "gif_sha", shas)
    return db
