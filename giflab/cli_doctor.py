"""Command line: ``doctor``, what is installed and where this data directory keeps its state.

Nothing here imports mlflow or torch unless a line needs it: the MLflow locations come from the
resource ``train`` builds, CLIP's status from resolving its weights file.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from giflab.config import POSTGRES_URL_ENV, Settings


def add_parser(sub, common) -> None:
    """Add ``doctor`` to the subcommand parsers."""
    doctor = sub.add_parser("doctor", help="what is installed and where state lives")
    common(doctor)
    doctor.add_argument(
        "--mlflow-uri",
        help="show the MLflow store `train --mlflow-uri URI` would use (default: the embedded "
        "sqlite:///DATA_DIR/mlflow.db)",
    )


def cmd_doctor(args: argparse.Namespace, settings: Settings) -> int:
    """Print each engine's status (with its install command when missing), CLIP's, and where
    this data directory's state lives."""
    from giflab.engines import DEFAULT_ENGINES, engine_statuses, get_engine

    for st in engine_statuses(DEFAULT_ENGINES):
        print(
            f"{st.name:<20} {'ok ' + (st.version or '') if st.ok else 'MISSING'}  {st.path or st.reason}"
        )
        if not st.ok and get_engine(st.name).install:
            print(f"{'':<20} install: {get_engine(st.name).install_command()}")
    print(f"{'clip':<20} {_clip_status()}")
    for label, value in _state_locations(settings, args.mlflow_uri):
        print(f"{label:<20} {value}")
    return 0


def _state_locations(settings: Settings, mlflow_uri: str | None = None) -> list[tuple[str, str]]:
    """Where this data directory keeps its state, as ``run``, ``train`` and ``dagster dev`` use it.

    The MLflow lines come from the resource ``train`` builds (imports dagster, not mlflow).
    """
    from resources import MlflowResource

    mlflow = MlflowResource(data_dir=str(settings.data_dir), tracking_uri=mlflow_uri).settings()
    home, card = settings.dagster_home, settings.models_dir / "model_card.json"
    rows = [
        ("data dir", str(settings.data_dir)),
        ("raw GIFs", str(settings.raw)),
        ("bad GIFs", str(settings.bad_dir)),
        ("database", f"{settings.db_path} ({_present(settings.db_path, 'not created yet')})"),
        ("DAGSTER_HOME", f"{home} ({_present(home / 'dagster.yaml', 'not created yet')})"),
    ]
    other = _dagster_home_elsewhere(home)
    if other:
        rows.append(("", f"but {other}: `dagster dev` and the dagster CLI use that instance"))
    pg = os.environ.get(POSTGRES_URL_ENV)
    storage = f"PostgreSQL {_without_password(pg)}" if pg else f"SQLite files in {home}"
    rows += [
        ("dagster storage", storage),
        ("dagster executor", os.environ.get("GIFLAB_EXECUTOR") or "multiprocess"),
    ]
    rows += [
        ("models", f"{settings.models_dir} ({_present(card, 'none exported yet', 'exported')})"),
        ("mlflow tracking", mlflow.tracking_uri),
        ("mlflow registry", mlflow.resolved_registry_uri),
        ("mlflow artifacts", mlflow.artifact_location or _default_artifacts(mlflow.tracking_uri)),
        ("mlflow experiment", mlflow.experiment_name),
        ("reports", str(settings.data_dir / "reports")),
        ("export", str(settings.data_dir / "export")),
    ]
    return rows


def _without_password(url: str) -> str:
    """``url`` with any password replaced by ``***`` (doctor output gets pasted into issues);
    SQLAlchemy's own rendering, as Dagster parses the URL with it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:  # not a URL Dagster could use: shown without its userinfo
        return url.rpartition("@")[2]


def _present(path: Path, absent: str, present: str = "present") -> str:
    return present if path.exists() else absent


def _default_artifacts(tracking_uri: str) -> str:
    """Where MLflow puts a new experiment's artefacts when GifLab sets no location."""
    if tracking_uri.startswith(("http://", "https://", "databricks")):
        where = "the server's default artifact root"
    else:
        where = f"{Path('mlruns').resolve()} (MLflow's ./mlruns for a local store)"
    return f"{where}; an existing experiment keeps its own"


def _dagster_home_elsewhere(dagster_home: Path) -> str | None:
    """``DAGSTER_HOME`` from the environment (else ``./.env``, which Dagster reads) when it is not
    ``dagster_home``, as "DAGSTER_HOME=<path> (<where>)"; None when it matches or is unset."""
    value, where = os.environ.get("DAGSTER_HOME"), "environment"
    if not value and Path(".env").is_file():
        for line in Path(".env").read_text(errors="replace").splitlines():
            key, _, rest = line.strip().removeprefix("export ").partition("=")
            if key.strip() == "DAGSTER_HOME" and rest.strip():
                value, where = rest.strip().strip("'\""), str(Path(".env").resolve())
    if not value or Path(value).expanduser().resolve() == dagster_home:
        return None
    return f"DAGSTER_HOME={value} ({where})"


def _clip_status() -> str:
    from resources import ClipResource

    config = ClipResource().scorer_config()
    if config is None:
        return "disabled (GIFLAB_CLIP=0)"
    from giflab.features import ClipScorer, ClipUnavailable

    try:
        weights = ClipScorer(**config).resolve_weights()
    except ClipUnavailable as e:
        return f"MISSING  {e.reason} (scores are stored as NULL)"
    return f"ok {config['model_name']}  {weights}"
