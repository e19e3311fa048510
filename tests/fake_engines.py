"""Fake engine executables for tests: small Python scripts that record how they were called."""

from __future__ import annotations

import sys
from pathlib import Path

FAKE_ANIMATELY = """
import json, sys, time
from pathlib import Path
from PIL import Image

argv = sys.argv[1:]
if argv == ["--version"]:
    print("animately 9.9.9 (fake)")
    sys.exit(0)
Path(__file__).with_name("argv.json").write_text(json.dumps(argv))
opt = {argv[i]: argv[i + 1] for i in range(len(argv) - 1) if argv[i].startswith("--")}
out = Path(opt["--output"])
if "--advanced-lossy" in opt:
    config = json.loads(Path(opt["--advanced-lossy"]).read_text())
    Path(__file__).with_name("advanced.json").write_text(json.dumps(config))
    frames = [Image.open(f["png"]).convert("RGB") for f in config["frames"]]
    delays = [f["delay"] for f in config["frames"]]
else:
    with Image.open(opt["--input"]) as im:
        frames, delays = [], []
        for i in range(getattr(im, "n_frames", 1)):
            im.seek(i)
            frames.append(im.convert("RGB"))
            delays.append(im.info.get("duration", 100))
frames[0].save(out, save_all=True, append_images=frames[1:], duration=delays, loop=0)
"""

SLOW = """
import subprocess, sys, time
from pathlib import Path

# A child in the same process group, as real engines have (ImageMagick delegates, ...).
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
Path(__file__).with_name("child.pid").write_text(str(child.pid))
time.sleep(60)
"""

FAILING = """
import sys
sys.stderr.write("first line\\nfake engine: cannot read input\\n")
sys.exit(3)
"""


def write_script(folder: Path, name: str, body: str) -> Path:
    """Write an executable Python script ``folder/name`` running ``body``."""
    path = folder / name
    path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
    path.chmod(0o755)
    return path


def fake_animately(folder: Path) -> Path:
    """A fake ``animately``: records its argv in ``argv.json`` beside it and writes a valid GIF."""
    return write_script(folder, "animately", FAKE_ANIMATELY)


def slow_engine(folder: Path) -> Path:
    """An engine that never finishes; its child's pid is written to ``child.pid`` beside it."""
    return write_script(folder, "slow-engine", SLOW)


def failing_engine(folder: Path) -> Path:
    """An engine that writes to stderr and exits 3."""
    return write_script(folder, "failing-engine", FAILING)
