"""Load exported curve models, checking every file against ``model_card.json`` first.

A pickle runs code when it is loaded, so nothing is unpickled until its bytes match the sha256
the card records; the bytes that were hashed are the bytes that are unpickled (the file is read
once), so a file swapped between the check and the load cannot slip through.

This module needs only the standard library, numpy, scikit-learn and xgboost (plus the pure
``giflab.errors`` and ``giflab.prediction.bundle``): services that only predict can import it
without pandas or the rest of GifLab. The file layout: docs/models.md, "Exported files".
"""

from __future__ import annotations

import hashlib
import json
import pickle
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from giflab.errors import GifLabError
from giflab.prediction.bundle import VARIANT_INPUTS, predict_kilobytes

CARD_NAME = "model_card.json"
CARD_FORMAT = 1
SCALER_NAME = "scaler.pkl"
ENGINE_KEYS = ("formulation", "lossy_levels", "bundle", "boosters", "metrics")


class ModelFileError(GifLabError):
    """An exported model file that cannot be trusted or used; ``kind`` is a short class.

    Kinds: ``missing``, ``sha256_mismatch``, ``bad_card``, ``unknown_engine``, ``mismatch``.
    """

    def __init__(self, path: Path | str, kind: str, reason: str):
        self.path = Path(path)
        self.kind = kind
        self.reason = reason
        super().__init__(f"{self.path}: {kind}: {reason}")


@dataclass(frozen=True)
class ModelCard:
    """The parsed ``model_card.json``: what the exported files are and how they were made.

    ``feature_names`` is the models' input order (``MODEL_INPUTS``); ``engines`` maps an engine
    to its ``formulation``, ``lossy_levels``, ``bundle`` file, ``boosters`` files and
    ``metrics``; ``files`` maps every exported file name to its sha256. ``scaler_mean`` and
    ``scaler_scale`` repeat the scaler's statistics (None for NaN) for tools that read no pickle.
    """

    schema_version: int
    dataset_version: str
    code_version: str
    feature_names: tuple[str, ...]
    engines: dict[str, dict[str, Any]]
    files: dict[str, str]
    lossy_levels: tuple[int, ...]
    scaler_mean: tuple[float | None, ...] = ()
    scaler_scale: tuple[float | None, ...] = ()
    libraries: dict[str, str] = field(default_factory=dict)
    facts: dict[str, Any] = field(default_factory=dict)
    card_format: int = CARD_FORMAT

    @property
    def gif_features(self) -> tuple[str, ...]:
        """The per-GIF inputs (scaled by ``scaler.pkl``): every input but the variant."""
        return self.feature_names[: -len(VARIANT_INPUTS)]

    def to_dict(self) -> dict[str, Any]:
        """The card as JSON-able data (the content of ``model_card.json``)."""
        return {
            "card_format": self.card_format,
            "schema_version": self.schema_version,
            "dataset_version": self.dataset_version,
            "code_version": self.code_version,
            "target": "log_size_ratio",
            "feature_names": list(self.feature_names),
            "scaler": {
                "file": SCALER_NAME,
                "mean": list(self.scaler_mean),
                "scale": list(self.scaler_scale),
            },
            "lossy_levels": list(self.lossy_levels),
            "engines": self.engines,
            "files": self.files,
            "libraries": self.libraries,
            "facts": self.facts,
        }

    def to_json_bytes(self) -> bytes:
        """Canonical JSON (sorted keys, one layout), so the same card gives the same bytes."""
        text = json.dumps(self.to_dict(), indent=1, sort_keys=True, allow_nan=False)
        return (text + "\n").encode("utf-8")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelCard:
        """A card from parsed JSON; raises ``KeyError``/``TypeError``/``ValueError`` if malformed."""
        if data["card_format"] != CARD_FORMAT:
            raise ValueError(f"card_format {data['card_format']!r}, this code reads {CARD_FORMAT}")
        names = tuple(str(n) for n in data["feature_names"])
        if names[-len(VARIANT_INPUTS) :] != VARIANT_INPUTS:
            raise ValueError(f"feature_names must end with {VARIANT_INPUTS}")
        engines = {str(k): dict(v) for k, v in data["engines"].items()}
        for engine, entry in engines.items():
            lacking = sorted(set(ENGINE_KEYS) - set(entry))
            if lacking or not isinstance(entry["boosters"], dict):
                raise ValueError(f"engine {engine!r} entry lacks {lacking or 'a boosters map'}")
        stats = data["scaler"]
        if not len(stats["mean"]) == len(stats["scale"]) == len(names) - len(VARIANT_INPUTS):
            raise ValueError("scaler statistics do not match the GIF inputs")
        return cls(
            schema_version=int(data["schema_version"]),
            dataset_version=str(data["dataset_version"]),
            code_version=str(data["code_version"]),
            feature_names=names,
            engines=engines,
            files={str(k): str(v) for k, v in data["files"].items()},
            lossy_levels=tuple(int(v) for v in data["lossy_levels"]),
            scaler_mean=tuple(stats["mean"]),
            scaler_scale=tuple(stats["scale"]),
            libraries=dict(data.get("libraries", {})),
            facts=dict(data.get("facts", {})),
        )

    def engine_files(self, engine: str) -> list[str]:
        """The files one engine needs: its bundle pickle then its native boosters."""
        entry = self.engines[engine]
        return [entry["bundle"], *(entry["boosters"][k] for k in sorted(entry["boosters"]))]


@dataclass(frozen=True)
class LoadedModels:
    """Verified bundles by engine, the feature scaler, and the card they came with."""

    bundles: dict[str, dict]
    scaler: Any
    card: ModelCard
    directory: Path

    @property
    def engines(self) -> tuple[str, ...]:
        """The loaded engines, sorted."""
        return tuple(sorted(self.bundles))

    def predict_kilobytes(
        self, engine: str, gif_features: np.ndarray, variants: np.ndarray
    ) -> np.ndarray:
        """Predicted kilobytes of ``engine`` for raw GIF_FEATURES rows and (lossy, colors,
        frame_keep) rows; see ``giflab.prediction.bundle.predict_kilobytes``."""
        return predict_kilobytes(self.bundles[engine], self.scaler, gif_features, variants)


def read_card(model_dir: Path | str) -> ModelCard:
    """The ``model_card.json`` of ``model_dir``; raises ``ModelFileError`` if absent or malformed."""
    path = Path(model_dir) / CARD_NAME
    if not path.is_file():
        raise ModelFileError(path, "missing", "no model card: not an exported model folder")
    try:
        return ModelCard.from_dict(json.loads(path.read_bytes()))
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ModelFileError(path, "bad_card", f"unreadable model card ({e!r})") from e


def _is_plain_name(name: str) -> bool:
    # A card names files inside its own folder only: no separators, no "." or "..".
    return bool(name) and "/" not in name and "\\" not in name and name not in (".", "..")


def verified_bytes(model_dir: Path | str, name: str, card: ModelCard) -> bytes:
    """The bytes of ``name`` in ``model_dir`` if their sha256 is the card's; else ``ModelFileError``."""
    path = Path(model_dir) / name
    if not _is_plain_name(name) or name not in card.files:
        raise ModelFileError(path, "bad_card", "file is not listed in the model card")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelFileError(path, "missing", "listed in the model card but absent") from None
    except OSError as e:
        raise ModelFileError(path, "missing", f"cannot read: {e.strerror or e}") from e
    digest = hashlib.sha256(data).hexdigest()
    if digest != card.files[name]:
        raise ModelFileError(
            path,
            "sha256_mismatch",
            f"sha256 {digest} differs from the model card's {card.files[name]}; not loaded",
        )
    return data


def _check_bundle(bundle: Any, engine: str, card: ModelCard, path: Path) -> None:
    entry = card.engines[engine]
    if not isinstance(bundle, dict):
        raise ModelFileError(path, "mismatch", f"holds a {type(bundle).__name__}, not a bundle")
    facts = {
        "engine": (bundle.get("engine"), engine),
        "formulation": (bundle.get("formulation"), entry["formulation"]),
        "feature_names": (tuple(bundle.get("feature_names", ())), card.feature_names),
    }
    for what, (found, expected) in facts.items():
        if found != expected:
            raise ModelFileError(
                path, "mismatch", f"{what} is {found!r}, the card says {expected!r}"
            )


def load_models(model_dir: Path | str, engines: Iterable[str] | None = None) -> LoadedModels:
    """Verify then load the exported models of ``model_dir`` (all engines, or ``engines``).

    Every file of the chosen engines and ``scaler.pkl`` must match the card's sha256 before
    anything is unpickled; raises ``ModelFileError`` naming the file and the reason.
    """
    model_dir = Path(model_dir)
    card = read_card(model_dir)
    chosen = sorted(card.engines) if engines is None else list(dict.fromkeys(engines))
    unknown = [e for e in chosen if e not in card.engines]
    if unknown or not chosen:
        raise ModelFileError(
            model_dir / CARD_NAME,
            "unknown_engine",
            f"no model for {unknown or 'any engine'}; the card has {sorted(card.engines)}",
        )
    # Check every file first, so a bad file anywhere means nothing at all is unpickled.
    scaler_bytes = verified_bytes(model_dir, SCALER_NAME, card)
    bundle_bytes = {}
    for engine in chosen:
        files = card.engine_files(engine)
        for name in files[1:]:
            verified_bytes(model_dir, name, card)  # native boosters: checked, not loaded here
        bundle_bytes[engine] = verified_bytes(model_dir, files[0], card)
    bundles = {}
    for engine, data in bundle_bytes.items():
        bundle = pickle.loads(data)  # noqa: S301 - bytes verified against the card above
        _check_bundle(bundle, engine, card, model_dir / card.engines[engine]["bundle"])
        bundles[engine] = bundle
    scaler = pickle.loads(scaler_bytes)  # noqa: S301 - verified above
    n_in = getattr(scaler, "n_features_in_", None)
    if n_in != len(card.gif_features):
        raise ModelFileError(
            model_dir / SCALER_NAME,
            "mismatch",
            f"scaler takes {n_in} features, the card lists {len(card.gif_features)}",
        )
    return LoadedModels(bundles=bundles, scaler=scaler, card=card, directory=model_dir)
