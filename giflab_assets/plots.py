"""Metadata people read in the Dagster UI: PNG plots shown inline (and kept as files), tables."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from pathlib import Path

from dagster import MetadataValue

from giflab.files import write_atomic


def png_markdown(png: bytes, title: str) -> MetadataValue:
    """Markdown metadata that shows ``png`` in the UI (a data URI: no file server needed)."""
    return MetadataValue.md(f"![{title}](data:image/png;base64,{base64.b64encode(png).decode()})")


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]]) -> MetadataValue:
    """A Markdown table (the UI renders it) of ``rows`` under ``header``."""
    lines = ["| " + " | ".join(map(str, header)) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in rows]
    return MetadataValue.md("\n".join(lines))


def write_png(path: Path, png: bytes) -> Path:
    """Write ``png`` to ``path`` atomically; returns the path."""
    return write_atomic(path, png)
