"""Versioned row schemas: every row written to the database is validated by one of these.

A record class names its ``SCHEMA_VERSION``; the IO manager stamps it on every row, so rows
written by an older schema can be found and migrated rather than silently mixed.
"""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

Sha256 = Field(pattern=r"^[0-9a-f]{64}$")


class Record(BaseModel):
    """Base of all stored rows: strict fields, no extras, a schema version."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    SCHEMA_VERSION: ClassVar[int] = 1


class GifMetadataV1(Record):
    """One GIF as measured at ingest (see ``giflab.meta.read_metadata``)."""

    SCHEMA_VERSION: ClassVar[int] = 1

    gif_sha: str = Sha256
    orig_filename: str
    orig_filenames: list[str]
    rel_paths: list[str]
    width: int = Field(gt=0)
    height: int = Field(gt=0)
    n_frames: int = Field(ge=1)
    duration_ms: int = Field(ge=0)
    raw_duration_ms: int = Field(ge=0)
    fps: float = Field(ge=0)
    n_colors: int = Field(ge=1)
    loop_count: int | None = Field(default=None, ge=0)
    has_transparency: bool
    file_kb: float = Field(gt=0)
