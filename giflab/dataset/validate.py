"""Validating a whole DataFrame against a row schema (``MetricRecordV1``) in one pydantic call.

Building 100k pydantic models costs seconds; validating 60 lists of 100k values costs a tenth
of that. ``validate_frame`` therefore checks every value of every row against a column model
derived from the row model — the same annotation and constraints per field, one list per
field — and the column set against the model's fields (its ``extra='forbid'``). Rows it rejects
are validated again one by one with the row model itself, so the error reads as the model's own.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Annotated, Any

import pandas as pd
from pydantic import BaseModel, ValidationError, create_model

from giflab.errors import GifLabError
from giflab.schemas import Record

# How many rejected rows an error message spells out.
_EXAMPLES = 3


class DatasetError(GifLabError):
    """The training table cannot be built or used; the message says why."""


class RecordValidationError(DatasetError):
    """Rows rejected by a record schema: how many, and the first few with the model's reasons."""

    def __init__(self, model: str, n_bad: int, n_rows: int, details: list[str]):
        self.model = model
        self.n_bad = n_bad
        self.n_rows = n_rows
        self.details = details
        super().__init__(
            f"{model} rejected {n_bad} of {n_rows} rows; " + " | ".join(details[:_EXAMPLES])
        )


def field_kind(model: type[BaseModel], name: str) -> str:
    """The scalar type of field ``name`` (``int``, ``float``, ``bool`` or ``str``), Optional unwrapped."""
    annotation = model.model_fields[name].annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        annotation = next(a for a in typing.get_args(annotation) if a is not type(None))
    if annotation not in (int, float, bool, str):
        raise TypeError(f"{model.__name__}.{name}: {annotation} is not a scalar column type")
    return annotation.__name__


def is_nullable(model: type[BaseModel], name: str) -> bool:
    """Whether field ``name`` of ``model`` accepts None."""
    return type(None) in typing.get_args(model.model_fields[name].annotation)


@cache
def column_model(model: type[Record]) -> type[BaseModel]:
    """A model with one ``list[...]`` field per field of ``model``, with the same constraints."""
    decorators = model.__pydantic_decorators__
    if decorators.field_validators or decorators.model_validators or decorators.validators:
        # Such validators see a whole row; a column model could not run them.
        raise TypeError(f"{model.__name__} has custom validators; validate it row by row")
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        item = Annotated[info.annotation, *info.metadata] if info.metadata else info.annotation
        fields[name] = (list[item], ...)
    return create_model(f"{model.__name__}Columns", **fields)


def column_values(series: pd.Series) -> list:
    """The column as plain Python values, every missing value (NaN, NA, NaT) as None."""
    if not series.isna().any():
        return series.tolist()
    return series.astype(object).where(series.notna(), None).tolist()


def _row(df: pd.DataFrame, names: list[str], i: int) -> dict[str, Any]:
    """Row ``i`` as plain Python values (numpy scalars unwrapped, missing as None)."""
    return {n: column_values(df[n].iloc[i : i + 1])[0] for n in names}


def _describe(row: dict[str, Any], error: ValidationError) -> str:
    key = ", ".join(
        f"{k}={str(row[k])[:12] if k == 'gif_sha' else row[k]}"
        for k in ("gif_sha", "engine", "lossy", "colors", "frame_keep")
        if k in row
    )
    reasons = "; ".join(
        f"{'.'.join(map(str, e['loc']))}: {e['msg']} (got {e.get('input')!r})"
        for e in error.errors()
    )
    return f"row {key}: {reasons}"


def validate_frame(df: pd.DataFrame, model: type[Record]) -> None:
    """Check every row of ``df`` against ``model``; raise ``RecordValidationError`` if any fails.

    ``df`` must have exactly the model's fields as columns (any order, positional index).
    """
    names = list(model.model_fields)
    missing = [n for n in names if n not in df.columns]
    extra = sorted(str(c) for c in df.columns if c not in model.model_fields)
    if missing or extra:
        detail = f"missing columns {missing}, unexpected columns {extra}"
        raise RecordValidationError(model.__name__, len(df), len(df), [detail])
    try:
        column_model(model).model_validate({n: column_values(df[n]) for n in names})
    except ValidationError as e:
        bad = sorted({err["loc"][1] for err in e.errors() if len(err["loc"]) > 1})
        details = []
        for i in bad[:_EXAMPLES]:
            row = _row(df, names, int(i))
            try:
                model.model_validate(row)
            except ValidationError as row_error:
                details.append(_describe(row, row_error))
        raise RecordValidationError(model.__name__, len(bad), len(df), details) from None
