"""The engine interface: (source GIF, lossy, colours, frame-keep ratio, output path) -> one render.

Every engine call is an argument list run without a shell, with a timeout that kills the whole
process group, and the engine's stderr kept on failure. Paths are passed absolute, so a file name
starting with ``-`` can never be read as a flag.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from functools import cached_property, partial
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from giflab.engines.config import EngineConfig
from giflab.engines.frame_keep import frame_keep_indices, kept_delays
from giflab.errors import EngineError, EngineUnavailableError
from giflab.frames import flatten, iter_frames, open_gif
from giflab.gif_blocks import global_table, walk

REPO_ROOT = Path(__file__).resolve().parents[2]
TOOLS_DIR = REPO_ROOT / "tools"


@dataclass(frozen=True, order=True)
class Variant:
    """One point of the sweep matrix: lossy level, colour count, share of frames kept."""

    lossy: int
    colors: int
    frame_keep: float

    def __post_init__(self) -> None:
        if not 0 <= self.lossy <= 200:
            raise ValueError(f"lossy must be in [0, 200], got {self.lossy}")
        if not 2 <= self.colors <= 256:
            raise ValueError(f"colors must be in [2, 256], got {self.colors}")
        if not 0 < self.frame_keep <= 1:
            raise ValueError(f"frame_keep must be in (0, 1], got {self.frame_keep}")


@dataclass(frozen=True)
class EngineStatus:
    """Whether an engine can run here, and if not, why."""

    name: str
    ok: bool
    path: str | None = None
    version: str | None = None
    reason: str | None = None


@dataclass
class RenderResult:
    """One finished render and exactly what was asked of the engine.

    ``applied`` says what the engine really applied; a knob it lacks is ``None``, never the request.
    """

    engine: str
    variant: Variant
    output: Path
    render_ms: int
    argv: list[str]
    kept: list[int]
    applied: dict[str, Any] = field(default_factory=dict)


class SourceGif:
    """A source GIF read once per sweep: size, delays, loop; lossless PNG frames on demand."""

    def __init__(self, path: Path | str, workdir: Path | str):
        self.path = Path(path).resolve()
        self.workdir = Path(workdir).resolve()
        with open_gif(self.path) as im:
            self.width, self.height = im.size
            self.loop = im.info.get("loop")
            delays = []
            for i in range(getattr(im, "n_frames", 1)):
                im.seek(i)
                delays.append(int(im.info.get("duration", 0) or 0))
        self.delays_ms = delays

    @property
    def n_frames(self) -> int:
        return len(self.delays_ms)

    def plan(self, frame_keep: float) -> tuple[list[int], list[int]]:
        """Kept source indices and their delays (ms) for a frame-keep ratio."""
        kept = frame_keep_indices(self.n_frames, frame_keep)
        return kept, kept_delays(self.delays_ms, kept)

    @cached_property
    def png_frames(self) -> list[Path]:
        """Every composited frame as a lossless RGBA PNG, written once (for frame-based engines)."""
        folder = Path(tempfile.mkdtemp(prefix="frames-", dir=self.workdir))
        paths = []
        for frame in iter_frames(self.path):
            p = folder / f"frame{frame.index:05d}.png"
            Image.fromarray(frame.rgba, "RGBA").save(p, compress_level=1)
            paths.append(p)
        return paths

    def flat_png_frames(self) -> list[Path]:
        """Frames composited on the fixed background, for engines that ignore alpha."""
        folder = Path(tempfile.mkdtemp(prefix="flat-", dir=self.workdir))
        paths = []
        for frame in iter_frames(self.path):
            p = folder / f"frame{frame.index:05d}.png"
            Image.fromarray(flatten(frame.rgba), "RGB").save(p, compress_level=1)
            paths.append(p)
        return paths

    @cached_property
    def palette_colors(self) -> int:
        """Distinct colours over the file's global and local colour tables (an upper bound)."""
        return len(set().union(*read_color_tables(self.path)))


def read_color_tables(path: Path | str) -> list[set[bytes]]:
    """The distinct RGB entries of each colour table (global first), walking the GIF blocks."""
    data = Path(path).read_bytes()
    tables = [global_table(data)] if len(data) > 13 and data[10] & 0x80 else []
    tables += [block.table for block in walk(data) if block.is_image and block.flags & 0x80]
    return [{table[i : i + 3] for i in range(0, len(table) - 2, 3)} for table in tables]


def run_command(
    argv: list[str],
    *,
    src: Path,
    engine: str,
    timeout_s: float,
    env: dict | None = None,
    cwd: Path | None = None,
    memory_limit_mb: int | None = None,
) -> str:
    """Run ``argv`` (no shell); return stdout. Raise ``EngineError`` on failure or timeout.

    The process gets its own group (a timeout kills its helpers too) and, on Linux, an
    address-space limit of ``memory_limit_mb``.
    """
    kwargs: dict[str, Any] = (
        {"start_new_session": True}
        if os.name == "posix"
        else {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    )
    if memory_limit_mb and sys.platform.startswith("linux"):
        kwargs["preexec_fn"] = partial(_limit_memory, memory_limit_mb * 2**20)
    try:
        proc = subprocess.Popen(  # noqa: S603 - argument list, no shell
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
            **kwargs,
        )
    except OSError as e:
        raise EngineError(src, engine, f"cannot start {argv[0]}: {e}") from e
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        proc.communicate()
        raise EngineError(src, engine, f"timeout after {timeout_s:g}s") from None
    if proc.returncode != 0:
        stderr = err.decode(errors="replace").strip()
        last = stderr.splitlines()[-1] if stderr else ""
        raise EngineError(src, engine, f"exit {proc.returncode}: {last[:300]}", stderr)
    return out.decode(errors="replace")


def _limit_memory(max_bytes: int) -> None:  # runs in the child, before exec
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        if os.name == "posix":
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass


class Engine(ABC):
    """One compression engine; subclasses map each knob once in ``command``."""

    name: ClassVar[str]
    binary_name: ClassVar[str]
    config_field: ClassVar[str]  # the EngineConfig field holding the binary path
    version_args: ClassVar[list[str]] = ["--version"]
    install_hint: ClassVar[str] = ""
    # What to run to install the engine, by ``sys.platform`` family ("linux", "darwin", "win32").
    install: ClassVar[dict[str, str]] = {}
    # Engines whose optimiser folds identical consecutive frames into one (adding the delays).
    merges_identical_frames: ClassVar[bool] = False
    # Engines that take a colour count. One that does not (gifski) gives the same file for every
    # colour count, so a sweep renders it once per (lossy, frame-keep).
    applies_colors: ClassVar[bool] = True

    def __init__(self, config: EngineConfig | None = None, binary: str | None = None):
        self.config = config or EngineConfig()
        configured = self.config.binary(self.config_field) if self.config_field else None
        self._binary = binary or configured

    def binary(self) -> str | None:
        """The executable: explicit/configured path (``GIFLAB_*_BIN``), then discovery."""
        if self._binary:
            found = self._binary if Path(self._binary).is_file() else shutil.which(self._binary)
            return str(Path(found).resolve()) if found else None
        return self.discover()

    def discover(self) -> str | None:
        """Where the binary is found when nothing is configured."""
        return shutil.which(self.binary_name)

    def not_found_reason(self) -> str:
        """Why ``binary()`` found nothing, naming the variable to set."""
        var = f"GIFLAB_{self.config_field.removesuffix('_bin').upper()}_BIN"
        where = f"{self._binary} is not an executable" if self._binary else "not found"
        hint = f" ({self.install_hint})" if self.install_hint else ""
        return f"{self.binary_name} {where}; set {var}{hint}"

    def install_command(self, platform: str | None = None) -> str:
        """How to install this engine on ``platform`` (default: this machine)."""
        platform = platform or sys.platform
        family = "linux" if platform.startswith("linux") else platform
        return self.install.get(family) or self.install_hint

    def available(self) -> EngineStatus:
        """Found and runnable, with its version; or the reason it is not."""
        path = self.binary()
        if not path:
            return EngineStatus(self.name, False, reason=self.not_found_reason())
        try:
            out = run_command(
                [path, *self.version_args], src=Path(path), engine=self.name, timeout_s=20
            )
        except EngineError as e:
            return EngineStatus(self.name, False, path, reason=f"cannot run {path}: {e.reason}")
        version = next((line.strip() for line in out.splitlines() if line.strip()), "")
        match = re.search(r"\d+(\.\d+)+", version)
        return EngineStatus(self.name, True, path, match.group(0) if match else version[:80])

    @abstractmethod
    def command(
        self, binary: str, src: SourceGif, variant: Variant, out: Path, scratch: Path
    ) -> tuple[list[str], dict]:
        """The argument list for one render, and what it applies (``applied``).

        ``scratch`` is an empty folder for this render's helper files, removed afterwards.
        """

    def environment(self) -> dict | None:
        """Extra environment for the engine process (None: inherit)."""
        return None

    def finish(self, out: Path, scratch: Path) -> None:  # noqa: B027 - optional hook
        """Hook after a successful call (e.g. move a scratch output into place)."""

    def render(
        self,
        src: Path | str | SourceGif,
        variant: Variant,
        out: Path | str,
        timeout_s: float | None = None,
    ) -> RenderResult:
        """Render ``variant`` of ``src`` to ``out`` in one engine call.

        ``src`` is a path, or a ``SourceGif`` shared by a sweep so frames are decoded once.
        """
        out = Path(out).resolve()
        out.parent.mkdir(parents=True, exist_ok=True)
        timeout_s = self.config.timeout_s if timeout_s is None else timeout_s
        scratch = Path(tempfile.mkdtemp(prefix=".giflab-", dir=out.parent))
        try:
            source = src if isinstance(src, SourceGif) else SourceGif(src, scratch)
            return self._render(source, variant, out, timeout_s, scratch)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _render(
        self, src: SourceGif, variant: Variant, out: Path, timeout_s: float, scratch: Path
    ) -> RenderResult:
        binary = self.binary()
        if not binary:
            raise EngineUnavailableError(self.name, self.not_found_reason())
        argv, applied = self.command(binary, src, variant, out, scratch)
        start = time.perf_counter()
        run_command(
            argv,
            src=src.path,
            engine=self.name,
            timeout_s=timeout_s,
            env=self.environment(),
            cwd=scratch,
            memory_limit_mb=self.config.memory_limit_mb,
        )
        self.finish(out, scratch)
        elapsed = int(round((time.perf_counter() - start) * 1000))
        if not out.is_file() or out.stat().st_size == 0:
            raise EngineError(src.path, self.name, "engine wrote no output")
        kept, _ = src.plan(variant.frame_keep)
        return RenderResult(self.name, variant, out, elapsed, argv, kept, applied)


def loop_count(src: SourceGif) -> int | None:
    """The source's NETSCAPE loop count (0 = forever), or None when it has none (plays once)."""
    return None if src.loop is None else int(src.loop)


def platform_dir() -> str:
    """The gifski npm package's folder name for this OS."""
    return {"darwin": "macos", "win32": "windows"}.get(sys.platform, "debian")
