"""Dagster IO managers for GifLab."""

from io_managers.sqlite_io_manager import SqliteIOManager

__all__ = ["SqliteIOManager"]
