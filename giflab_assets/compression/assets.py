"""One compression asset per engine, built from the engine registry by one factory.

Per-engine assets rather than GIF x engine multi-partitions: Dagster advises about 100 000
partitions per asset, GIF x 7 engines would pass that at ~14 000 GIFs, and per-engine assets show
each engine's lineage (a new engine is a new asset). Only variants missing from the database are
rendered; the partition's existing rows are kept. Each GIF's rows are stored as its sweep
finishes, so a kill, a failure or Ctrl-C later in the step loses no finished sweep.
"""

import shutil

from dagster import AssetExecutionContext, AssetsDefinition, BackfillPolicy, Failure, asset

from giflab.compression import SweepTask, sweep_gif
from giflab.db import open_db
from giflab.engines import DEFAULT_ENGINES, Variant
from giflab.engines.registry import all_engine_classes
from giflab.ingest import files_for_gif
from giflab.schemas import CompressionRunV1
from giflab.scratch import owned_dir, remove_stale
from giflab_assets.batch import run_per_gif, save_partitions
from giflab_assets.ingest.assets import gif_metadata
from giflab_assets.owners import OWNERS
from giflab_assets.partitions import gifs_partitions
from io_managers.sqlite_io_manager import read_rows, to_records
from resources import EnginesResource, GifLabResource


def asset_name(engine: str) -> str:
    """``compression_runs_<engine>`` with ``-`` as ``_`` (Dagster names are identifiers)."""
    return f"compression_runs_{engine.replace('-', '_')}"


def existing_runs(db_path, table: str, keys: list[str]) -> dict[str, list[CompressionRunV1]]:
    """Rows already stored for ``keys``, by GIF."""
    by_gif: dict[str, list[CompressionRunV1]] = {k: [] for k in keys}
    df = read_rows(db_path, table, "gif_sha", keys)
    for r in to_records(df):
        r.pop("schema_version", None)
        by_gif[r["gif_sha"]].append(CompressionRunV1(**r))
    return by_gif


def missing_variants(rows: list[CompressionRunV1], matrix: list[Variant]) -> tuple[Variant, ...]:
    """The variants of ``matrix`` with no stored row (``rows`` as kept, see ``kept_rows``)."""
    have = {(r.lossy, r.colors, r.frame_keep) for r in rows}
    return tuple(v for v in matrix if (v.lossy, v.colors, v.frame_keep) not in have)


def kept_rows(rows: list[CompressionRunV1], retry_failed: bool) -> list[CompressionRunV1]:
    """The stored rows that stand: all of them, or only the ``ok`` ones when failures are to
    be rendered again (their replacements take their place in the partition's rows)."""
    return [r for r in rows if r.status == "ok"] if retry_failed else rows


def build_compression_asset(engine: str) -> AssetsDefinition:
    """The compression asset of ``engine``."""

    @asset(
        owners=OWNERS,
        name=asset_name(engine),
        partitions_def=gifs_partitions,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[gif_metadata],
        io_manager_key="sqlite_io_manager",
        metadata={"partition_expr": "gif_sha", "engine": engine},
        group_name="compression" if engine in DEFAULT_ENGINES else "compression_extra",
        kinds={"python", "sqlite"},
        description=f"Renders of each GIF by {engine} over the variant matrix, with quality metrics.",
    )
    def _compression(
        context: AssetExecutionContext, giflab: GifLabResource, engines: EnginesResource
    ) -> list[CompressionRunV1]:
        status = engines.status(engine)
        if not status.ok:  # the partitions stay missing, and run when the binary appears
            raise Failure(f"{engine} unavailable: {status.reason}")
        settings = giflab.settings()
        keys = list(context.partition_keys)
        stored = {
            k: kept_rows(rows, engines.retry_failed)
            for k, rows in existing_runs(settings.db_path, asset_name(engine), keys).items()
        }
        matrix = engines.matrix()
        remove_stale(settings.tmp_dir)
        scratch = owned_dir(settings.tmp_dir, f"{asset_name(engine)}-{context.run_id[:8]}")
        tasks = []
        with open_db(settings.db_path) as conn:
            for k in keys:
                todo = missing_variants(stored[k], matrix)
                files = [p for p, _ in files_for_gif(conn, k) if p.is_file()]
                if todo and files:
                    tasks.append(
                        SweepTask(
                            k,
                            str(files[0]),
                            engine,
                            engines.config(),
                            todo,
                            str(scratch),
                            engines.timeout_s,
                            engines.max_metric_frames,
                        )
                    )

        def save_gif(i: int, rows: list[CompressionRunV1]) -> None:
            key = tasks[i].sha256
            save_partitions(context, stored[key] + rows, [key])

        try:
            done = run_per_gif(giflab, sweep_gif, tasks, save_each=save_gif)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        new = [row for i in sorted(done.results) for row in done.results[i]]
        for i, err in done.errors.items():
            raise Failure(f"{tasks[i].source}: {engine}: {err}") from err
        failed = sum(r.status == "failed" for r in new)
        context.add_output_metadata(
            {
                "engine_version": status.version or "",
                "new_renders": len(new),
                "failed_renders": failed,
            }
        )
        return [r for k in keys for r in stored[k]] + new

    return _compression


# The default seven, then tier 2 (Pillow GIF/WebP/AVIF) and engines other packages register:
# `python -m giflab run --engines pillow-webp` or the UI materialises those on demand.
COMPRESSION_ASSETS = [
    build_compression_asset(e) for e in dict.fromkeys([*DEFAULT_ENGINES, *all_engine_classes()])
]


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
