"""PNG plots in asset metadata: shown inline in the Dagster UI and kept as files beside the data."""

from __future__ import annotations

import base64
from pathlib import Path

from dagster import MetadataValue

from giflab.files import write_atomic


def png_markdown(png: bytes, title: str) -> MetadataValue:
    """Markdown metadata that shows ``png`` in the UI (a data URI: no file server needed)."""
    return MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def write_png(path: Path, png: bytes) -> Path:
    """Write ``png`` to ``path`` atomically; returns the path."""
    return write_atomic(path, png)
