"""Specific exceptions: each carries the file it is about and the reason, for one-line reports."""

from __future__ import annotations

from pathlib import Path


class GifLabError(Exception):
    """Base class for GifLab's own errors.

    Subclasses take their fields as constructor arguments; pickling rebuilds the instance from
    its attributes, so an error raised in a worker process reaches the parent whole.
    """

    def __reduce__(self):
        return _rebuild, (type(self), self.args, dict(self.__dict__))


def _rebuild(cls: type, args: tuple, state: dict) -> GifLabError:
    error = Exception.__new__(cls)
    error.args = args
    error.__dict__.update(state)
    return error


class BadGifError(GifLabError):
    """A file that cannot be used as a GIF; ``kind`` is a short machine-readable class."""

    def __init__(self, path: Path | str, kind: str, reason: str):
        self.path = Path(path)
        self.kind = kind
        self.reason = reason
        super().__init__(f"{self.path}: {kind}: {reason}")


class EngineError(GifLabError):
    """An engine call failed; carries the source file, the engine and its stderr."""

    def __init__(self, path: Path | str, engine: str, reason: str, stderr: str = ""):
        self.path = Path(path)
        self.engine = engine
        self.reason = reason
        self.stderr = stderr
        super().__init__(f"{self.path}: {engine}: {reason}")


class EngineUnavailableError(GifLabError):
    """An engine's binary is missing or unusable; its work stays missing until it appears."""

    def __init__(self, engine: str, reason: str):
        self.engine = engine
        self.reason = reason
        super().__init__(f"{engine}: unavailable: {reason}")
