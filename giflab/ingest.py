"""Ingest: find GIFs under a raw folder, hash them, validate them, quarantine the bad ones.

A GIF is identified by the sha256 of its bytes; the same bytes under several names are one GIF
with every name kept in the ``gif_files`` registry. Files that are not complete, bounded GIFs are
*moved* (never copied or deleted) to the fail folder with a JSON sidecar giving the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path

from giflab.db import transaction
from giflab.errors import BadGifError
from giflab.frames import DEFAULT_LIMITS, DecodeLimits
from giflab.meta import validate_gif
from giflab.parallel import WorkerCrashed, map_tasks

GIF_SUFFIX = ".gif"
WRITE_CHUNK = 200


def now_iso() -> str:
    """The current UTC time, ISO 8601 with seconds."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of the file's bytes."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def scan_gif_files(raw_dir: Path, exclude: Iterable[Path] = ()) -> list[Path]:
    """Every ``*.gif`` file (any case) under ``raw_dir``, nested folders included, sorted.

    Symlinked folders are not followed (no loops); folders in ``exclude`` (the fail folder)
    are skipped, so quarantined files are never ingested again.
    """
    raw_dir = Path(raw_dir).resolve()
    skip = {Path(p).resolve() for p in exclude}
    found: list[Path] = []
    for root, dirs, files in os.walk(raw_dir, followlinks=False):
        here = Path(root)
        dirs[:] = sorted(d for d in dirs if (here / d).resolve() not in skip)
        for name in files:
            if name.lower().endswith(GIF_SUFFIX):
                found.append(here / name)
    return sorted(found)


@dataclass(frozen=True)
class FileCheck:
    """What ingest learned about one file: identity and, if bad, why."""

    path: Path
    sha256: str
    size: int
    mtime_ns: int
    error_kind: str | None = None
    error_message: str | None = None


REFUSED = "refused"
CHANGED_WHILE_READ = (
    "changed while it was being read (still being written?); checked again next run"
)


def check_file(path: Path, limits: DecodeLimits = DEFAULT_LIMITS) -> FileCheck:
    """Hash ``path`` and decode every frame; never raises for a bad GIF, reports it instead.

    A file whose size or mtime changed while it was read (a copy into raw/ still running) is
    refused, not judged: its first bytes would look truncated and it would be quarantined.
    """
    st = path.stat()
    check = _check_bytes(path, st, limits)
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (st.st_size, st.st_mtime_ns):
        return FileCheck(path, "", 0, 0, REFUSED, CHANGED_WHILE_READ)
    return check


def _check_bytes(path: Path, st: os.stat_result, limits: DecodeLimits) -> FileCheck:
    sha = sha256_file(path)
    try:
        validate_gif(path, limits)
    except BadGifError as e:
        return FileCheck(path, sha, st.st_size, st.st_mtime_ns, e.kind, e.reason)
    except MemoryError:
        return FileCheck(
            path, sha, st.st_size, st.st_mtime_ns, "decompression_bomb", "out of memory"
        )
    except Exception as e:  # a decoder bug must not stop the run; the file is quarantined
        return FileCheck(path, sha, st.st_size, st.st_mtime_ns, "unreadable", repr(e))
    return FileCheck(path, sha, st.st_size, st.st_mtime_ns)


def _free_name(folder: Path, name: str, sha: str) -> Path:
    """A path in ``folder`` for ``name`` that does not exist yet (never overwrite)."""
    target = folder / name
    if not target.exists() and not Path(f"{target}.json").exists():
        return target
    stem, suffix = os.path.splitext(name)
    for n in range(10_000):
        tag = sha[:12] if n == 0 else f"{sha[:12]}-{n}"
        target = folder / f"{stem}.{tag}{suffix}"
        if not target.exists() and not Path(f"{target}.json").exists():
            return target
    raise FileExistsError(f"{folder}: no free name for {name}")


def quarantine(check: FileCheck, fail_dir: Path) -> Path:
    """Move the file to ``fail_dir`` with a JSON sidecar ``<name>.json``; return the new path."""
    fail_dir.mkdir(parents=True, exist_ok=True)
    dest = _free_name(fail_dir, check.path.name, check.sha256)
    sidecar = {
        "original_path": str(check.path),
        "quarantined_path": str(dest),
        "sha256": check.sha256,
        "error_class": check.error_kind,
        "message": check.error_message,
        "quarantined_at": now_iso(),
    }
    shutil.move(str(check.path), str(dest))
    Path(f"{dest}.json").write_text(json.dumps(sidecar, indent=2, ensure_ascii=False) + "\n")
    return dest


@dataclass
class IngestReport:
    """What one ingest pass found and did (or, with dry_run, would do)."""

    files_seen: int = 0
    unchanged: int = 0
    registered: list[Path] = field(default_factory=list)
    new_gifs: list[str] = field(default_factory=list)
    duplicates: list[Path] = field(default_factory=list)
    quarantined: list[tuple[Path, str, str, Path | None]] = field(default_factory=list)
    # Entries that are not regular readable files (dangling or looping symlinks, FIFOs, no read
    # permission, vanished): reported, never moved or registered; looked at again next run.
    refused: list[tuple[Path, str]] = field(default_factory=list)
    interrupted: bool = False
    pending: int = 0  # new files left for a later pass (``max_files``)


def _run_checks(
    paths: list[Path],
    limits: DecodeLimits,
    workers: int,
) -> list[FileCheck]:
    """Check ``paths`` on up to ``workers`` processes; after Ctrl-C, only the finished ones."""
    done = map_tasks(partial(check_file, limits=limits), paths, workers=workers)
    for i, err in done.errors.items():
        p = paths[i]
        if isinstance(err, WorkerCrashed):  # it killed a decoder twice, alone: a bad file
            st = p.stat()
            reason = "the decoder process crashed on this file (native crash or out of memory)"
            done.results[i] = FileCheck(
                p, sha256_file(p), st.st_size, st.st_mtime_ns, "decoder_crash", reason
            )
        else:  # e.g. the file vanished meanwhile: refuse, never crash the run
            done.results[i] = FileCheck(p, "", 0, 0, REFUSED, f"{type(err).__name__}: {err}")
    return [done.results[i] for i in sorted(done.results)]


def register_folder(
    conn: sqlite3.Connection,
    raw_dir: Path,
    fail_dir: Path,
    *,
    limits: DecodeLimits = DEFAULT_LIMITS,
    workers: int = 1,
    dry_run: bool = False,
    max_files: int | None = None,
) -> IngestReport:
    """Find, hash and validate the GIFs under ``raw_dir``; register good ones, quarantine bad.

    Files already registered with the same size and mtime are not read again. With ``dry_run``
    nothing is written or moved: the report says what would happen.
    """
    raw_dir = Path(raw_dir).resolve()
    fail_dir = Path(fail_dir).resolve()
    report = IngestReport()
    paths = scan_gif_files(raw_dir, exclude=[fail_dir])
    report.files_seen = len(paths)
    known = {
        row[0]: (row[1], row[2])
        for row in conn.execute(
            "SELECT path, size, mtime_ns FROM gif_files WHERE raw_root = ?", (str(raw_dir),)
        )
    }
    todo = []
    for p in paths:
        try:
            st = p.stat()
        except OSError as e:  # dangling or looping symlink, vanished
            report.refused.append((p, f"cannot stat: {e.strerror or e}"))
            continue
        if not stat.S_ISREG(st.st_mode):  # a FIFO would block a reader for ever
            report.refused.append((p, "not a regular file"))
            continue
        if not os.access(p, os.R_OK):
            report.refused.append((p, "permission denied (not readable)"))
            continue
        if known.get(str(p)) == (st.st_size, st.st_mtime_ns):
            report.unchanged += 1
        else:
            todo.append(p)
    report.pending = max(0, len(todo) - max_files) if max_files is not None else 0
    todo = todo[:max_files] if max_files is not None else todo
    checks = _run_checks(todo, limits, workers)
    report.interrupted = len(checks) < len(todo)
    report.refused += [(c.path, c.error_message or "") for c in checks if c.error_kind == REFUSED]
    checks = [c for c in checks if c.error_kind != REFUSED]

    known_shas = {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM gif_files")}
    bad_shas = {r[0] for r in conn.execute("SELECT DISTINCT sha256 FROM bad_gifs")}
    for start in range(0, len(checks), WRITE_CHUNK):
        _apply_checks(
            conn,
            checks[start : start + WRITE_CHUNK],
            raw_dir,
            fail_dir,
            known_shas,
            bad_shas,
            report,
            dry_run,
        )
    return report


def _apply_checks(
    conn: sqlite3.Connection,
    checks: list[FileCheck],
    raw_dir: Path,
    fail_dir: Path,
    known_shas: set[str],
    bad_shas: set[str],
    report: IngestReport,
    dry_run: bool,
) -> None:
    """Register or quarantine one chunk of checked files in one transaction."""
    rows, bad_rows = [], []
    for c in checks:
        kind, message = c.error_kind, c.error_message
        if kind is None and c.sha256 in bad_shas:
            kind, message = "previously_quarantined", "the same bytes were quarantined before"
        if kind is not None:
            dest = (
                None
                if dry_run
                else quarantine(
                    FileCheck(c.path, c.sha256, c.size, c.mtime_ns, kind, message), fail_dir
                )
            )
            report.quarantined.append((c.path, kind, message or "", dest))
            bad_rows.append((c.sha256, str(c.path), str(dest), kind, message or "", now_iso()))
            bad_shas.add(c.sha256)
            continue
        if c.sha256 in known_shas:
            report.duplicates.append(c.path)
        else:
            report.new_gifs.append(c.sha256)
            known_shas.add(c.sha256)
        report.registered.append(c.path)
        rel = c.path.relative_to(raw_dir).as_posix()
        rows.append((str(c.path), str(raw_dir), rel, c.sha256, c.size, c.mtime_ns, now_iso()))
    if dry_run:
        return
    with transaction(conn):
        conn.executemany(
            "INSERT OR REPLACE INTO gif_files (path, raw_root, rel_path, sha256, size, mtime_ns,"
            " registered_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
        conn.executemany("DELETE FROM gif_files WHERE path = ?", [(r[1],) for r in bad_rows])
        conn.executemany(
            "INSERT INTO bad_gifs (sha256, orig_path, quarantined_path, error_class, message,"
            " quarantined_at) VALUES (?, ?, ?, ?, ?, ?)",
            bad_rows,
        )


def files_for_gif(conn: sqlite3.Connection, sha256: str) -> list[tuple[Path, str]]:
    """The registered files (absolute path, path relative to its raw folder) of one GIF."""
    rows = conn.execute(
        "SELECT path, rel_path FROM gif_files WHERE sha256 = ? ORDER BY rel_path, path", (sha256,)
    ).fetchall()
    return [(Path(p), rel) for p, rel in rows]


def quarantine_gif(
    conn: sqlite3.Connection, sha256: str, kind: str, reason: str, fail_dir: Path
) -> list[Path]:
    """Quarantine every registered file of one GIF found bad after registration."""
    moved = []
    files = files_for_gif(conn, sha256)
    with transaction(conn):
        for path, _rel in files:
            dest = None
            if path.is_file():
                st = path.stat()
                dest = quarantine(
                    FileCheck(path, sha256, st.st_size, st.st_mtime_ns, kind, reason), fail_dir
                )
                moved.append(dest)
            conn.execute(
                "INSERT INTO bad_gifs (sha256, orig_path, quarantined_path, error_class, message,"
                " quarantined_at) VALUES (?, ?, ?, ?, ?, ?)",
                (sha256, str(path), str(dest), kind, reason, now_iso()),
            )
        conn.execute("DELETE FROM gif_files WHERE sha256 = ?", (sha256,))
    return moved
