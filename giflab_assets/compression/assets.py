"""One compression asset per engine, all computed by one multi-asset step.

Per-engine assets rather than GIF x engine multi-partitions: Dagster advises about 100 000
partitions per asset, GIF x 7 engines would pass that at ~14 000 GIFs, and per-engine assets show
each engine's lineage (a new engine is a new asset). One step renders every selected engine's
sweeps (``can_subset``: the UI, ``dagster asset materialize --select`` and the CLI pick any
engines): all (GIF, engine) sweeps of a run go to one worker pool together, largest first, so
workers never idle at the end of one engine's step while the next engine waits for its own.

Only variants missing from the database are rendered; the partition's existing rows are kept.
Each (GIF, engine)'s rows are stored through the SQLite IO manager as its sweep finishes, so a
kill, a failure or Ctrl-C later in the step loses no finished sweep, and nothing is written twice.
An engine whose binary is missing, or a GIF whose sweep raised, fails the step after the other
engines' partitions are recorded; those partitions stay missing and run again next time.
"""

import shutil

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    Failure,
    MaterializeResult,
    ResourceParam,
    multi_asset,
)

from giflab.compression import SweepTask, longest_first, sweep_gif
from giflab.db import open_db
from giflab.engines import DEFAULT_ENGINES, Variant
from giflab.engines.registry import all_engine_classes
from giflab.ingest import files_for_gif
from giflab.schemas import CompressionRunV1
from giflab.scratch import owned_dir, remove_stale
from giflab_assets.batch import PARTITION_COLUMN, run_per_gif
from giflab_assets.ingest.assets import gif_metadata
from giflab_assets.owners import OWNERS
from giflab_assets.partitions import gifs_partitions
from io_managers import SqliteIOManager
from io_managers.sqlite_io_manager import read_records, read_rows
from resources import EnginesResource, GifLabResource


def asset_name(engine: str) -> str:
    """``compression_runs_<engine>`` with ``-`` as ``_`` (Dagster names are identifiers)."""
    return f"compression_runs_{engine.replace('-', '_')}"


def existing_runs(db_path, table: str, keys: list[str]) -> dict[str, list[CompressionRunV1]]:
    """Rows already stored for ``keys``, by GIF."""
    by_gif: dict[str, list[CompressionRunV1]] = {k: [] for k in keys}
    for row in read_records(db_path, table, CompressionRunV1, PARTITION_COLUMN, keys):
        by_gif[row.gif_sha].append(row)
    return by_gif


def missing_variants(rows: list[CompressionRunV1], matrix: list[Variant]) -> tuple[Variant, ...]:
    """The variants of ``matrix`` with no stored row (``rows`` as kept, see ``kept_rows``)."""
    have = {(r.lossy, r.colors, r.frame_keep) for r in rows}
    return tuple(v for v in matrix if (v.lossy, v.colors, v.frame_keep) not in have)


def kept_rows(rows: list[CompressionRunV1], retry_failed: bool) -> list[CompressionRunV1]:
    """The stored rows that stand: all of them, or only the ``ok`` ones when failures are to
    be rendered again (their replacements take their place in the partition's rows)."""
    return [r for r in rows if r.status == "ok"] if retry_failed else rows


def compression_spec(engine: str) -> AssetSpec:
    """The asset of ``engine``'s renders: table ``compression_runs_<engine>``, one partition
    per GIF."""
    return AssetSpec(
        asset_name(engine),
        partitions_def=gifs_partitions,
        deps=[gif_metadata],
        skippable=True,  # an unavailable engine's partitions stay missing; the others go on
        owners=OWNERS,
        metadata={"partition_expr": PARTITION_COLUMN, "engine": engine},
        group_name="compression" if engine in DEFAULT_ENGINES else "compression_extra",
        kinds={"python", "sqlite"},
        description=f"Renders of each GIF by {engine} over the variant matrix, with quality metrics.",
    )


# The default seven, then tier 2 (Pillow GIF/WebP/AVIF) and engines other packages register:
# `python -m giflab run --engines pillow-webp` or the UI materialises those on demand.
ENGINES = list(dict.fromkeys([*DEFAULT_ENGINES, *all_engine_classes()]))


@multi_asset(
    name="compression_runs",
    specs=[compression_spec(e) for e in ENGINES],
    can_subset=True,
    backfill_policy=BackfillPolicy.single_run(),
)
def compression_runs(
    context: AssetExecutionContext,
    giflab: GifLabResource,
    engines: EnginesResource,
    sqlite_io_manager: ResourceParam[SqliteIOManager],
):
    """Every selected engine's sweeps over the run's GIFs, on one pool, largest first."""
    selected = [e for e in ENGINES if AssetKey(asset_name(e)) in context.selected_asset_keys]
    statuses = {e: engines.status(e) for e in selected}
    usable = [e for e in selected if statuses[e].ok]
    settings = giflab.settings()
    keys = list(context.partition_keys)
    matrix = engines.matrix()
    stored = {
        e: {
            k: kept_rows(rows, engines.retry_failed)
            for k, rows in existing_runs(settings.db_path, asset_name(e), keys).items()
        }
        for e in usable
    }
    remove_stale(settings.tmp_dir)
    scratch = owned_dir(settings.tmp_dir, f"compression_runs-{context.run_id[:8]}")
    tasks = []
    with open_db(settings.db_path) as conn:
        sources = {k: [p for p, _ in files_for_gif(conn, k) if p.is_file()] for k in keys}
    for e in usable:
        for k in keys:
            todo = missing_variants(stored[e][k], matrix)
            if todo and sources[k]:
                tasks.append(
                    SweepTask(
                        k,
                        str(sources[k][0]),
                        e,
                        engines.config(),
                        todo,
                        str(scratch),
                        engines.timeout_s,
                        engines.max_metric_frames,
                    )
                )
    tasks = longest_first(tasks, gif_pixels(settings.db_path, keys))

    def save_sweep(i: int, rows: list[CompressionRunV1]) -> None:
        task = tasks[i]
        sqlite_io_manager.write_partitions(
            asset_name(task.engine),
            stored[task.engine][task.sha256] + rows,
            PARTITION_COLUMN,
            [task.sha256],
        )

    try:
        done = run_per_gif(giflab, sweep_gif, tasks, save_each=save_sweep)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    errors = dict(sorted(done.errors.items()))
    failed_engines = {tasks[i].engine for i in errors}
    for e in usable:
        if e in failed_engines:
            continue
        new = [r for i, rows in done.results.items() if tasks[i].engine == e for r in rows]
        yield MaterializeResult(
            asset_key=asset_name(e),
            metadata={
                "engine_version": statuses[e].version or "",
                "new_renders": len(new),
                "failed_renders": sum(r.status == "failed" for r in new),
                "rows": sum(len(stored[e][k]) for k in keys) + len(new),
                "table": asset_name(e),
                "db_path": sqlite_io_manager.db_path,
            },
        )
    reasons = [f"{tasks[i].source}: {tasks[i].engine}: {err}" for i, err in errors.items()]
    reasons += [f"{e} unavailable: {statuses[e].reason}" for e in selected if not statuses[e].ok]
    if reasons:  # the engines above are recorded; these partitions stay missing
        raise Failure("; ".join(reasons)) from next(iter(errors.values()), None)


def gif_pixels(db_path, keys: list[str]) -> dict[str, int]:
    """Width x height x frames of each GIF of ``keys`` with metadata (the sweep-cost proxy)."""
    df = read_rows(db_path, gif_metadata.key.path[-1], PARTITION_COLUMN, keys)
    if df.empty:
        return {}
    return {
        sha: int(w) * int(h) * int(n)
        for sha, w, h, n in zip(df.gif_sha, df.width, df.height, df.n_frames, strict=True)
    }


def incomplete_gifs(
    db_path, engine: str, keys: list[str], matrix: list[Variant], retry_failed: bool = False
) -> set[str]:
    """GIFs among ``keys`` missing at least one variant of ``matrix`` for ``engine`` (a failed
    render counts as missing when ``retry_failed``)."""
    from giflab.db import connect_readonly, table_exists

    wanted = {(v.lossy, v.colors, v.frame_keep) for v in matrix}
    have: dict[str, set] = {}
    if db_path.exists():
        conn = connect_readonly(db_path)
        try:
            if table_exists(conn, asset_name(engine)):
                sql = f'SELECT gif_sha, lossy, colors, frame_keep FROM "{asset_name(engine)}"'
                if retry_failed:
                    sql += " WHERE status = 'ok'"
                for sha, lo, c, f in conn.execute(sql):
                    have.setdefault(sha, set()).add((lo, c, f))
        finally:
            conn.close()
    return {k for k in keys if not wanted <= have.get(k, set())}
