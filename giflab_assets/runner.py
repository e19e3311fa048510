"""Driving materialisations from the CLI: register partitions, then run only what is missing.

Work is batched: one in-process run per range of consecutive missing partitions (up to
``batch_size`` GIFs), every step of every run sharing one worker pool, so orchestration costs one
run per batch rather than one per GIF. Runs are recorded in the persistent instance, so the UI
shows them.
"""

import logging
import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunsFilter, materialize
from dagster._core.errors import DagsterExecutionInterruptedError
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from giflab.config import POSTGRES_URL_ENV
from giflab.parallel import STOP, shared_pool, sigint_watch
from giflab.scratch import pid_alive
from giflab_assets.batch import unsaved_keys
from giflab_assets.compression.assets import asset_name, incomplete_gifs
from giflab_assets.definitions import ASSETS, build_resources
from giflab_assets.features.assets import incomplete_features
from giflab_assets.ingest.assets import QUARANTINED_KEY
from giflab_assets.instance_storage import EVENT_BATCH_SIZE
from giflab_assets.partitions import gifs_partitions
from resources import ClipResource, EnginesResource

PID_TAG, HOST_TAG = "giflab/pid", "giflab/host"
EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"  # read by Dagster at each event
# CLI runs print nothing themselves: the CLI reports each failed step in a line
# (``step_failures``; the whole trace stays in the run's event log, shown by the UI), and
# Ctrl-C ends without a trace.
SILENT_RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
# 4 GIFs per sweep run cost 54 runs and 37-40 s for 200 tiny GIFs (one render each, -j 2);
# 16, 32 and 64 per run all took 23-27 s (17, 11 and 4 runs): beyond ~16 the runs' cost is noise.
SWEEP_BATCH_PER_WORKER = 16


@dataclass
class PlanStep:
    """One run: these assets over this range of consecutive partitions."""

    assets: list[str]
    keys: list[str]


@dataclass
class RunSummary:
    """What ``execute`` did; ``partitions`` counts asset partitions (assets x GIFs), as the plan."""

    runs: int = 0
    partitions: int = 0
    failed: dict[str, list[str]] = field(default_factory=dict)  # run id -> "step: message"s
    quarantined: list[str] = field(default_factory=list)
    interrupted: bool = False


MANAGED_MARKER = "# Written by giflab"
LEGACY_YAML = "telemetry:\n  enabled: false\n"  # what GifLab wrote before the marker existed


def instance_yaml(postgres: bool) -> str:
    """The ``dagster.yaml`` GifLab writes: telemetry off (there is no network to send it to),
    and instance storage (runs, events, schedules) in PostgreSQL when ``postgres``; the URL is
    read from ``$GIFLAB_DAGSTER_POSTGRES_URL`` by Dagster itself, so no password is written.
    Otherwise Dagster's SQLite storage, with batched asset events (``instance_storage``)."""
    lines = [
        f"{MANAGED_MARKER} (giflab_assets.runner.open_instance) and rewritten to match",
        f"# ${POSTGRES_URL_ENV} on each CLI start; delete these two lines to keep your own edits.",
        "telemetry:",
        "  enabled: false",
        "nux:",  # no "join the community" pop-up over the UI: nothing to join offline
        "  enabled: false",
    ]
    if postgres:
        lines += [
            "storage:",
            "  postgres:",
            "    postgres_url:",
            f"      env: {POSTGRES_URL_ENV}",
        ]
    else:  # Dagster's SQLite files and layout; batches of asset events in one transaction
        lines += [
            "storage:",
            "  custom:",
            "    module: giflab_assets.instance_storage",
            "    class: GifLabSqliteStorage",
            "    config:",
            "      base_dir:",
            "        env: DAGSTER_HOME",
        ]
    return "\n".join(lines) + "\n"


def psycopg2_url(url: str) -> str:
    """``url`` with the psycopg2 driver named: dagster-postgres is written for psycopg2, and
    SQLAlchemy 2.1 maps a bare ``postgresql://`` to psycopg 3, whose server-side parameters
    break Dagster's ``NOTIFY``."""
    scheme, sep, rest = url.partition("://")
    if sep and scheme in ("postgres", "postgresql"):
        return f"postgresql+psycopg2://{rest}"
    return url


def open_instance(dagster_home: Path) -> DagsterInstance:
    """The persistent instance under the data dir, shared with ``dagster dev`` and the
    ``dagster`` CLI: ``DAGSTER_HOME`` is set for this process and its ``dagster.yaml`` written.

    Storage is SQLite files under ``dagster_home`` by default, PostgreSQL when
    ``$GIFLAB_DAGSTER_POSTGRES_URL`` is set (docs/scale-out.md). A ``dagster.yaml`` without
    GifLab's marker line is the user's own and is left as it is.
    """
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    url = os.environ.get(POSTGRES_URL_ENV)
    if url:  # this process and the runs it starts; dagster CLI users write the +psycopg2 form
        os.environ[POSTGRES_URL_ENV] = psycopg2_url(url)
    wanted = instance_yaml(postgres=bool(url))
    current = config.read_text() if config.exists() else None
    managed = current is None or current.startswith(MANAGED_MARKER) or current == LEGACY_YAML
    if managed and current != wanted:
        config.write_text(wanted)
    os.environ["DAGSTER_HOME"] = str(dagster_home)
    if managed and not url:  # this process's runs hand their bursts of asset events over at once
        os.environ.setdefault(EVENT_BATCH_ENV, str(EVENT_BATCH_SIZE))
    return DagsterInstance.get()


def add_partitions(instance: DagsterInstance, keys: Sequence[str]) -> list[str]:
    """Add the ``gifs`` partitions not present yet; return the added keys."""
    existing = set(instance.get_dynamic_partitions(gifs_partitions.name))
    new = [k for k in dict.fromkeys(keys) if k not in existing]
    if new:
        instance.add_dynamic_partitions(gifs_partitions.name, new)
    return new


def _owner_tags() -> dict[str, str]:
    """This process and host, so ``fail_orphan_runs`` can tell a run whose process died."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def fail_orphan_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the CLI runs whose process died (SIGKILL, power loss); return their ids.

    Such runs would otherwise show as "started" in the UI for ever. Their finished partitions are
    already recorded; the rest are simply missing and the next ``run`` does them.
    """
    host = socket.gethostname()
    failed = []
    live = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.NOT_STARTED]
    for run in instance.get_runs(filters=RunsFilter(statuses=live, tags={HOST_TAG: host})):
        pid = int(run.tags.get(PID_TAG, "0"))
        if pid and pid != os.getpid() and not pid_alive(pid):
            instance.report_run_failed(run, message=f"giflab process {pid} ended without a result")
            failed.append(run.run_id)
    return failed


def contiguous_batches(ordered: Sequence[str], missing: set[str], size: int) -> list[list[str]]:
    """Runs of consecutive keys of ``ordered`` that are all in ``missing``, at most ``size`` long."""
    batches: list[list[str]] = []
    current: list[str] = []
    for k in ordered:
        if k in missing and len(current) < size:
            current.append(k)
            continue
        if current:
            batches.append(current)
        current = [k] if k in missing else []
    if current:
        batches.append(current)
    return batches


def plan(
    instance: DagsterInstance,
    asset_names: Sequence[str],
    resume: bool,
    batch_size: Callable[[str], int],
    incomplete: Callable[[str, list[str]], set[str]] | None = None,
) -> list[PlanStep]:
    """The runs that materialise every missing partition of ``asset_names`` (all if not resume).

    Missing means never materialised, or (``incomplete``) materialised but short of rows the
    current configuration asks for, such as a new lossy level, or rows deleted since.
    """
    ordered = list(instance.get_dynamic_partitions(gifs_partitions.name))
    by_batches: dict[tuple, list[str]] = {}
    for name in asset_names:
        done = instance.get_materialized_partitions(AssetKey(name)) if resume else set()
        missing = set(ordered) - done
        if resume and incomplete is not None:
            missing |= incomplete(name, ordered)
        key = tuple(tuple(b) for b in contiguous_batches(ordered, missing, batch_size(name)))
        if key:
            by_batches.setdefault(key, []).append(name)
    return [PlanStep(names, list(b)) for batches, names in by_batches.items() for b in batches]


def plan_pipeline(
    instance: DagsterInstance,
    db_path: Path,
    engines: EnginesResource,
    resume: bool,
    batch_size: int,
    workers: int,
) -> tuple[list[PlanStep], dict[str, str]]:
    """Runs for metadata, features and every available engine's sweep; unavailable engines.

    Metadata and features of the same GIFs share runs (features wait for metadata in the run).

    Sweeps run in batches of at most ``16 x workers`` GIFs: big enough that a run's fixed costs
    and its steps' tails (one GIF's sweep) are small beside its work. Each GIF's rows are stored
    as its sweep finishes, so a SIGKILL loses only the active sweeps; after Ctrl-C only those
    finish and the step fails, so its partitions are planned again, with nothing left to render
    for the finished GIFs.
    """
    engine_of, unavailable = {}, {}
    for name in engines.engines:
        status = engines.status(name)
        if status.ok:
            engine_of[asset_name(name)] = name
        else:
            unavailable[name] = status.reason or "not available"
    matrix = engines.matrix()

    def size(asset: str) -> int:
        return (
            min(batch_size, SWEEP_BATCH_PER_WORKER * workers) if asset in engine_of else batch_size
        )

    def incomplete(asset: str, keys: list[str]) -> set[str]:
        if asset == "gif_metadata":
            return unsaved_keys(db_path, asset, keys)
        if asset == "gif_features":
            return incomplete_features(db_path, keys)
        if asset not in engine_of:
            return set()
        return incomplete_gifs(db_path, engine_of[asset], keys, matrix, engines.retry_failed)

    steps = plan(instance, ["gif_metadata", "gif_features", *engine_of], resume, size, incomplete)
    return steps, unavailable


def _metadata_values(result, key: str) -> set[str]:
    values: set[str] = set()
    for event in result.get_asset_materialization_events():
        entry = event.materialization.metadata.get(key)
        if entry is not None:
            values.update(entry.value or [])
    return values


def execute(
    instance: DagsterInstance,
    steps: Sequence[PlanStep],
    *,
    data_dir: str,
    workers: int,
    engines: EnginesResource | None = None,
    clip: ClipResource | None = None,
    on_step: Callable[[PlanStep], None] | None = None,
) -> RunSummary:
    """Run ``steps`` in order on ``instance``.

    After Ctrl-C (``giflab.parallel.STOP``) the running step's active work finishes and is saved,
    the step fails, and no further run starts. The steps
    share one pool of ``workers`` processes (``shared_pool``), shut down on return.
    """
    logging.getLogger("dagster").setLevel(logging.ERROR)
    resources = build_resources(data_dir, engines, clip, workers=workers)
    summary = RunSummary()
    with shared_pool(workers), sigint_watch() as sigint:
        _execute_steps(instance, steps, resources, summary, sigint, on_step)
    summary.interrupted = summary.interrupted or STOP.is_set()
    return summary


def _execute_steps(
    instance: DagsterInstance,
    steps: Sequence[PlanStep],
    resources: dict,
    summary: RunSummary,
    sigint: Callable[[], bool],
    on_step: Callable[[PlanStep], None] | None,
) -> None:
    """``execute``'s loop: one ``materialize`` per step, into ``summary``, until Ctrl-C."""
    for step in steps:
        if STOP.is_set():
            summary.interrupted = True
            break
        tags = {
            ASSET_PARTITION_RANGE_START_TAG: step.keys[0],
            ASSET_PARTITION_RANGE_END_TAG: step.keys[-1],
            **_owner_tags(),
        }
        try:
            result = materialize(
                ASSETS,
                instance=instance,
                resources=resources,
                selection=step.assets,
                tags=tags,
                run_config=SILENT_RUN_CONFIG,
                raise_on_error=False,
            )
        except (KeyboardInterrupt, DagsterExecutionInterruptedError):
            summary.interrupted = True
            break
        if sigint():  # Ctrl-C during the run, even if Dagster's exception for it was lost
            STOP.set()
        summary.runs += 1
        if not result.success and STOP.is_set():
            # Ctrl-C landed in Dagster's own bookkeeping, outside the worker pool's shield.
            summary.interrupted = True
            break
        if not result.success:
            summary.failed[result.run_id] = step_failures(result)
            continue
        # A GIF found bad after registration was quarantined by the asset; its partition goes.
        quarantined = sorted(_metadata_values(result, QUARANTINED_KEY))
        for k in quarantined:
            instance.delete_dynamic_partition(gifs_partitions.name, k)
        summary.quarantined.extend(quarantined)
        summary.partitions += len(step.keys) * len(step.assets)
        if on_step:
            on_step(step)


def step_failures(result) -> list[str]:
    """``"step: message"`` for each failed step of an execution result (messages, no traces)."""
    lines = []
    for event in result.all_events:
        if event.is_step_failure:
            data = event.step_failure_data
            failure = data.user_failure_data  # a deliberate ``Failure``: its description
            message = failure.description if failure and failure.description else None
            lines.append(f"{event.step_key}: {(message or data.error.message).strip()}")
    return lines


def materialize_unpartitioned(
    instance: DagsterInstance,
    selection: Sequence[str],
    *,
    data_dir: str,
    run_config: dict | None = None,
    **resource_overrides,
):
    """One run materialising the unpartitioned assets ``selection`` (dataset, models, reports).

    Returns Dagster's execution result; raises nothing on step failure (``result.success``;
    ``step_failures`` says why: the run prints nothing itself).
    """
    logging.getLogger("dagster").setLevel(logging.ERROR)
    resources = build_resources(data_dir, **resource_overrides)
    config = {**SILENT_RUN_CONFIG, **(run_config or {})}
    return materialize(
        ASSETS,
        instance=instance,
        resources=resources,
        selection=list(selection),
        tags=_owner_tags(),
        run_config=config,
        raise_on_error=False,
    )


if __name__ == "__main__":  # python -m giflab_assets.runner DAGSTER_HOME (scripts/setup.sh)
    import sys

    # Create the instance (dagster.yaml and its storage) once, before dagster dev, the sensor
    # and the CLI may all open it at the same time: a process that finds no dagster.yaml uses
    # Dagster's default storage, which creates its files without GifLab's lock.
    open_instance(Path(sys.argv[1])).dispose()
