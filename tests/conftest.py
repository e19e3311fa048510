"""Shared fixtures: the real corpus (../shared when present, else the committed subset)."""

from __future__ import annotations

import csv
import hashlib
import os
import pickle
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_CORPUS = REPO.parent / "shared" / "corpus" / "gifs"
COMMITTED_CORPUS = REPO / "tests" / "corpus"
SAMPLES = REPO / "data" / "samples"

# A developer's own Postgres instance storage must never receive test runs: tests that want
# Postgres create a database of their own on $GIFLAB_TEST_POSTGRES_URL's server.
os.environ.pop("GIFLAB_DAGSTER_POSTGRES_URL", None)


def corpus_dir() -> Path:
    """The real-GIF corpus: ``../shared/corpus/gifs`` if present, else ``tests/corpus``."""
    return SHARED_CORPUS if (SHARED_CORPUS / "MANIFEST.csv").exists() else COMMITTED_CORPUS


def corpus_gif(name: str) -> Path:
    """One corpus GIF by file name; the test is skipped when this corpus lacks it."""
    path = corpus_dir() / name
    if not path.is_file():
        pytest.skip(f"{name} is not in this corpus")
    return path


def rgba(rgb: np.ndarray, alpha: int = 255) -> np.ndarray:
    """An (H, W, 4) uint8 frame: ``rgb`` with every pixel's alpha ``alpha``."""
    out = np.empty(rgb.shape[:2] + (4,), np.uint8)
    out[..., :3], out[..., 3] = rgb, alpha
    return out


def installed_engine(name: str):
    """The engine ``name`` with the default config; the test is skipped when it is not
    installed here."""
    from giflab.engines import EngineConfig, get_engine

    engine = get_engine(name, EngineConfig())
    status = engine.available()
    if not status.ok:
        pytest.skip(f"{name} unavailable: {status.reason}")
    return engine


def good_corpus_gifs() -> list[Path]:
    """Every good GIF of the corpus (the ``bad/`` folder excluded), sorted."""
    root = corpus_dir()
    return sorted(p for p in root.glob("*.gif") if p.is_file())


# A decoded size (width x height x frames) up to which every corpus GIF goes through the
# whole-corpus feature tests; of the larger ones, each source family sends its largest.
VARIED_PIXELS = 50_000_000


def decoded_pixels(path: Path) -> int:
    """Width x height x frames of ``path``, from its header (not decoded)."""
    from PIL import Image

    with Image.open(path) as im:
        return im.size[0] * im.size[1] * getattr(im, "n_frames", 1)


def varied_corpus_gifs() -> list[Path]:
    """The good corpus GIFs up to ``VARIED_PIXELS`` decoded, plus the largest GIF of each
    source family (the file name's first ``__`` part) above it: every family and size class,
    without running two dozen near-identical terminal recordings through every feature test."""
    small, large = [], {}
    for path in good_corpus_gifs():
        size = decoded_pixels(path)
        if size <= VARIED_PIXELS:
            small.append(path)
            continue
        family = path.name.split("__")[0]
        if family not in large or size > large[family][0]:
            large[family] = (size, path)
    return sorted(small + [path for _, path in large.values()])


def bad_corpus_files() -> list[Path]:
    return sorted(p for p in (corpus_dir() / "bad").iterdir() if p.is_file())


def manifest_rows() -> list[dict]:
    with open(corpus_dir() / "MANIFEST.csv", newline="", encoding="utf-8") as f:
        return [r for r in csv.DictReader(f) if not r["file"].startswith("bad/")]


@pytest.fixture
def corpus() -> Path:
    return corpus_dir()


@pytest.fixture
def samples() -> Path:
    return SAMPLES


def screenshot_dir() -> Path:
    """Where the browser tests keep their screenshots: ``$GIFLAB_SCREENSHOTS``, else a fixed
    folder under the system temp dir; the session's summary prints it when it got new ones."""
    return Path(
        os.environ.get("GIFLAB_SCREENSHOTS") or Path(tempfile.gettempdir()) / "giflab-screenshots"
    )


_SESSION_START = time.time()

# ``extract_features`` of one corpus GIF costs seconds to a minute (the probes share one decode),
# and several tests compare a feature family against an engine on the same GIFs. Each GIF's
# result is computed once per session and shared by the xdist workers through a folder the
# controller makes (the workers inherit its path in their environment) and removes at the end.
FEATURE_CACHE_ENV = "GIFLAB_TEST_FEATURE_CACHE"


def pytest_configure(config):
    if hasattr(config, "workerinput") or os.environ.get(FEATURE_CACHE_ENV):
        return  # an xdist worker (or a nested session): the controller's folder is in use
    folder = tempfile.mkdtemp(prefix="giflab-test-features-")
    os.environ[FEATURE_CACHE_ENV] = folder

    def remove() -> None:
        os.environ.pop(FEATURE_CACHE_ENV, None)
        shutil.rmtree(folder, ignore_errors=True)

    config.add_cleanup(remove)


def corpus_features(path: Path):
    """``extract_features(path)`` (no CLIP), computed once per test session for every worker."""
    from giflab.features import extract_features

    folder = os.environ.get(FEATURE_CACHE_ENV)
    if not folder or not Path(folder).is_dir():
        return extract_features(path)
    cached = Path(folder) / f"{hashlib.sha256(Path(path).read_bytes()).hexdigest()}.pkl"
    if cached.is_file():
        return pickle.loads(cached.read_bytes())
    result = extract_features(path)
    partial = cached.with_name(f"{cached.stem}.{os.getpid()}.part")
    partial.write_bytes(pickle.dumps(result))
    os.replace(partial, cached)  # two workers at once: the same bytes, either wins
    return result


def pytest_terminal_summary(terminalreporter):
    folder = screenshot_dir()
    if folder.is_dir():
        new = [p for p in folder.glob("*.png") if p.stat().st_mtime >= _SESSION_START]
        if new:
            terminalreporter.write_line(f"browser screenshots ({len(new)}): {folder}")
