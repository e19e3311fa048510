"""Scratch folders under ``data/tmp`` that never outlive the process that made them.

Each Dagster step (and so its worker pool) works in ``tmp/<label>-pid<PID>/``; renders clean up
after themselves, and the folder is removed when the step ends. A step killed outright (SIGKILL,
power loss) leaves its folder behind: ``remove_stale`` deletes folders whose process is gone, and
runs at the start of every ``giflab run`` and every step.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

_OWNED = re.compile(r"-pid(\d+)$")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (on this machine)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # pragma: no cover - os.kill(pid, 0) would terminate it on Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        ctypes.windll.kernel32.CloseHandle(handle)
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def owned_dir(tmp_root: Path | str, label: str) -> Path:
    """A fresh folder ``tmp_root/<label>-pid<this pid>`` (created; emptied if it existed)."""
    path = Path(tmp_root) / f"{label}-pid{os.getpid()}"
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def remove_stale(tmp_root: Path | str) -> list[Path]:
    """Delete folders of ``tmp_root`` owned by processes that no longer exist; return them."""
    root = Path(tmp_root)
    removed: list[Path] = []
    if not root.is_dir():
        return removed
    for entry in root.iterdir():
        m = _OWNED.search(entry.name)
        if m and entry.is_dir() and not pid_alive(int(m.group(1))):
            shutil.rmtree(entry, ignore_errors=True)
            removed.append(entry)
    return removed
