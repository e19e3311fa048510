"""GifLab's exceptions survive a trip between processes (map_tasks sends failures back)."""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest

from giflab.errors import BadGifError, EngineError, EngineUnavailableError
from giflab.parallel import map_tasks


@pytest.mark.parametrize(
    "error",
    [
        BadGifError(Path("/x/a.gif"), "truncated", "no trailer"),
        EngineError(Path("/x/a.gif"), "gifsicle", "exit 1: boom", "stderr text"),
        EngineUnavailableError("gifski", "not found"),
    ],
)
def test_errors_pickle_with_their_fields(error):
    back = pickle.loads(pickle.dumps(error))
    assert type(back) is type(error)
    assert str(back) == str(error)
    assert vars(back) == vars(error)


def _raise_engine_error(path: str) -> None:
    raise EngineError(Path(path), "gifsicle", "exit 1: cropping dimensions don't fit image")


def test_a_worker_raising_an_engine_error_reports_it_not_a_dead_worker():
    result = map_tasks(_raise_engine_error, ["/x/a.gif", "/x/b.gif"], workers=2)
    assert sorted(result.errors) == [0, 1]
    assert all(isinstance(e, EngineError) for e in result.errors.values())
    assert result.errors[1].reason == "exit 1: cropping dimensions don't fit image"
