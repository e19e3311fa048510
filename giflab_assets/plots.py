"""PNG plots in asset metadata: shown inline in the Dagster UI and kept as files beside the data."""

from __future__ import annotations

import base64
import os
import tempfile
from pathlib import Path

from dagster import MetadataValue


def png_markdown(png: bytes, title: str) -> MetadataValue:
    """Markdown metadata that shows ``png`` in the UI (a data URI: no file server needed)."""
    return MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def write_png(path: Path, png: bytes) -> Path:
    """Write ``png`` to ``path`` atomically; returns the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    with os.fdopen(fd, "wb") as f:
        f.write(png)
    os.replace(tmp, path)
    return path
