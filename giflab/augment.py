"""Training-set augmentation: more training GIFs cut from the train split's own GIFs.

The curve models learn from tens or hundreds of GIFs, and their errors fall as that number
grows (docs/models.md). ``giflab run --augment K`` cuts K new GIFs from each GIF of the
**train** split: a window of its frames, a crop, sometimes a downscale, written by gifsicle
with one of its optimisation levels (-O1, -O2, -O3), so the pixels, palettes and frame
timing stay the source's own and only the encoding varies. The new files are ordinary GIFs
that are ingested, measured and swept like any other.

A derived GIF lives at ``DATA_DIR/augmented/giflab-derived/<source sha256>/d<k>-<name>.gif``;
that folder is registered as its own raw root, so its ``source_platform`` is
``giflab-derived`` and its single tag is the source's sha256 (``giflab.dataset.build``). The
dataset puts a derived GIF in its source's split (always ``train``: only train GIFs are
derived from), so no piece of a validation or test GIF is ever trained on, and the naive
baseline and every score are computed on original GIFs only.

Everything about a derived GIF follows from the source's hash and ``k``: the same sources give
the same files, and files already written are kept.
"""

from __future__ import annotations

import json
import os
import random
import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

DERIVED_PLATFORM = "giflab-derived"
# The root folder (under the data dir) that holds DERIVED_PLATFORM/<sha>/...
AUGMENTED_DIRNAME = "augmented"
# Never written unoptimised: full-frame GIFs are rare, and a training set where a quarter of the
# GIFs are made the models worse on real ones (ffmpeg, natural GIFs: docs/models.md).
OPTIMIZE_CHOICES: tuple[tuple[str, ...], ...] = (("-O1",), ("-O2",), ("-O3",))
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


@dataclass(frozen=True)
class Derivation:
    """How derived GIF ``k`` is cut from its source: frames, crop box, scale, optimisation."""

    index: int
    first_frame: int
    n_frames: int
    x: int
    y: int
    width: int
    height: int
    scale: float | None
    optimize: tuple[str, ...]

    def gifsicle_calls(self, source: Path, window: Path, out: Path) -> list[list[str]]:
        """gifsicle's arguments (after the binary) for the two calls that write this derivation.

        The first recomposes the frame window into full frames (``window``), the second crops,
        scales and optimises it into ``out``: gifsicle refuses ``--crop`` together with
        ``--unoptimize`` on some optimised GIFs.
        """
        last = self.first_frame + self.n_frames - 1
        first = ["--no-warnings", "--unoptimize", str(source), f"#{self.first_frame}-{last}"]
        second = ["--no-warnings", "--crop", f"{self.x},{self.y}+{self.width}x{self.height}"]
        second.append(str(window))
        if self.scale is not None:
            second += ["--scale", f"{self.scale:.2f}"]
        return [[*first, "-o", str(window)], [*second, *self.optimize, "-o", str(out)]]


def plan_derivation(
    source_sha: str, index: int, width: int, height: int, frames: int
) -> Derivation:
    """Derivation ``index`` of the GIF ``source_sha`` of ``width`` x ``height`` x ``frames``.

    At least half of each side and half of the frames (a contiguous window) are kept; 40 % of
    the derivations of sides >= 16 px are also downscaled by 0.5-0.9. Deterministic.
    """
    if min(width, height, frames) < 1:
        raise ValueError(f"cannot derive from a {width}x{height} GIF of {frames} frames")
    rng = random.Random(f"giflab-augment-v1:{source_sha}:{index}")
    cw = rng.randint(max(1, width // 2), width)
    ch = rng.randint(max(1, height // 2), height)
    x, y = rng.randint(0, width - cw), rng.randint(0, height - ch)
    count = rng.randint(max(1, frames // 2), frames)
    first = rng.randint(0, frames - count)
    scale = round(rng.uniform(0.5, 0.9), 2) if rng.random() < 0.4 and min(cw, ch) >= 16 else None
    optimize = rng.choice(OPTIMIZE_CHOICES)
    return Derivation(index, first, count, x, y, cw, ch, scale, optimize)


def derived_folder(augment_root: Path, source_sha: str) -> Path:
    """The folder of ``source_sha``'s derived GIFs under the augmentation root."""
    return Path(augment_root) / DERIVED_PLATFORM / source_sha


def derived_name(index: int, source_name: str) -> str:
    """``d<k>-<source stem>.gif``, the stem reduced to safe characters (at most 60)."""
    stem = _SAFE.sub("_", Path(source_name).stem).strip("._") or "gif"
    return f"d{index}-{stem[:60]}.gif"


_DERIVED_PATH = re.compile(rf"{DERIVED_PLATFORM}/([0-9a-f]{{64}})/[^/]+")


def derived_source(source_metadata: object) -> str | None:
    """The source sha256 of a derived GIF, else None.

    ``source_metadata`` as the training table holds it (JSON text or a dict with ``rel_paths``).
    A GIF is derived when every one of its files lies in one source's derived folder: the same
    bytes found anywhere else make it an original GIF (its split is then its own).
    """
    if isinstance(source_metadata, str):
        source_metadata = json.loads(source_metadata)
    paths = (source_metadata or {}).get("rel_paths") or []
    found = {m.group(1) if (m := _DERIVED_PATH.fullmatch(p)) else None for p in paths}
    if len(found) != 1 or None in found:
        return None
    return found.pop()


@dataclass
class AugmentReport:
    """What ``augment_folder`` did: files written and kept, sources skipped or failed."""

    sources: int = 0
    written: int = 0
    existing: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path or sha, reason)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (source path, reason)
    interrupted: bool = False


@dataclass(frozen=True)
class _Task:
    source: str
    source_sha: str
    folder: str
    per_gif: int
    gifsicle: str
    timeout_s: float


def _derive_all(task: _Task) -> tuple[int, int, str | None]:
    """Worker: write the missing derived GIFs of one source; (written, already there, error)."""
    from giflab.engines.base import run_command
    from giflab.errors import GifLabError

    source, folder = Path(task.source), Path(task.folder)
    names = [derived_name(k, source.name) for k in range(task.per_gif)]
    existing = sum((folder / name).exists() for name in names)
    if existing == task.per_gif:
        return 0, existing, None
    existing = written = 0
    try:
        from giflab.ingest import sha256_file

        if sha256_file(source) != task.source_sha:
            return 0, 0, "changed since it was registered (run giflab run again to register it)"
        with Image.open(source) as im:
            width, height = im.size
            frames = getattr(im, "n_frames", 1)
        for k, name in enumerate(names):
            out = folder / name
            if out.exists():
                existing += 1
                continue
            folder.mkdir(parents=True, exist_ok=True)
            plan = plan_derivation(task.source_sha, k, width, height, frames)
            window, part = out.with_name(f".{out.name}.window"), out.with_name(f".{out.name}.part")
            try:
                for args in plan.gifsicle_calls(source, window, part):
                    run_command(
                        [task.gifsicle, *args],
                        src=source,
                        engine="gifsicle",
                        timeout_s=task.timeout_s,
                    )
                os.replace(part, out)
            finally:
                window.unlink(missing_ok=True)
                part.unlink(missing_ok=True)
            written += 1
    except (GifLabError, OSError, ValueError) as e:
        return written, existing, getattr(e, "reason", None) or str(e)
    return written, existing, None


def train_sources(conn: sqlite3.Connection, augment_root: Path) -> list[tuple[str, Path]]:
    """``(sha256, path)`` of each registered, not quarantined train GIF outside ``augment_root``.

    The path is the first of the GIF's registered files (sorted) that still exists.
    """
    from giflab.dataset.splits import split_of

    root = str(Path(augment_root).resolve())
    bad = {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM bad_gifs")}
    paths: dict[str, list[str]] = {}
    for sha, path, raw_root in conn.execute(
        "SELECT sha256, path, raw_root FROM gif_files ORDER BY sha256, path"
    ):
        if raw_root != root and sha not in bad:
            paths.setdefault(sha, []).append(path)
    out = []
    for sha, candidates in sorted(paths.items()):
        if split_of(sha) != "train":
            continue
        existing = next((Path(p) for p in candidates if Path(p).is_file()), None)
        if existing is not None:
            out.append((sha, existing))
    return out


def augment_folder(
    conn: sqlite3.Connection,
    augment_root: Path,
    per_gif: int,
    gifsicle: str,
    *,
    workers: int = 1,
    timeout_s: float = 300.0,
    only: Iterable[str] | None = None,
) -> AugmentReport:
    """Write ``per_gif`` derived GIFs for every train GIF registered in ``conn`` (see module).

    ``gifsicle`` is the binary's path. Files already there are kept; a source gifsicle cannot
    cut is reported in ``failed`` with the reason (its other derived files are kept). ``only``
    restricts the sources to these hashes.
    """
    from giflab.parallel import map_tasks

    report = AugmentReport()
    if per_gif < 1:
        return report
    wanted = set(only) if only is not None else None
    sources = [
        (sha, path)
        for sha, path in train_sources(conn, augment_root)
        if wanted is None or sha in wanted
    ]
    report.sources = len(sources)
    tasks = [
        _Task(str(path), sha, str(derived_folder(augment_root, sha)), per_gif, gifsicle, timeout_s)
        for sha, path in sources
    ]
    result = map_tasks(_derive_all, tasks, workers=workers)
    for i, (written, existing, error) in sorted(result.results.items()):
        report.written += written
        report.existing += existing
        if error is not None:
            report.failed.append((tasks[i].source, error))
    for i, error in sorted(result.errors.items()):
        report.failed.append((tasks[i].source, getattr(error, "reason", None) or str(error)))
    report.interrupted = result.interrupted
    return report
