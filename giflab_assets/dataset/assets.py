"""Dataset assets: the training table, the feature scaler, the exported dataset and the reports.

Thin wrappers over ``giflab.dataset``: the training table is built from every stored partition
of the per-GIF assets (read straight from the database, so an engine that is not installed simply
contributes no rows) and stored through the SQLite IO manager; everything downstream loads it
from there, so Dagster marks them stale when metadata, features or renders change.
"""

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    Output,
    asset,
)

from giflab import dataset
from giflab.dataset.columns import GIF_FEATURES
from giflab.features import CLIP_FEATURES
from giflab.schemas import MetricRecordV1
from giflab_assets.compression.assets import compression_runs
from giflab_assets.features.assets import gif_features
from giflab_assets.ingest.assets import gif_metadata
from giflab_assets.owners import OWNERS
from giflab_assets.plots import markdown_table, png_markdown, write_png
from resources import GifLabResource

NO_NAN_CHECK = "features_have_no_nan"
ENGINES_CHECK = "every_engine_has_rows"
SCHEMA_CHECK = "rows_match_metric_record_v1"


@asset(
    owners=OWNERS,
    deps=[gif_metadata, gif_features, *compression_runs.keys],
    io_manager_key="sqlite_io_manager",
    group_name="dataset",
    kinds={"pandas", "sqlite"},
    check_specs=[
        AssetCheckSpec(
            SCHEMA_CHECK,
            asset="training_table",
            description=(
                "Every row was validated against MetricRecordV1 (an invalid row fails the asset) "
                "and the table has all of its columns, tagged with its schema version."
            ),
        ),
        AssetCheckSpec(
            NO_NAN_CHECK,
            asset="training_table",
            description=(
                "No feature but the CLIP scores (NULL without weights) is missing in any row."
            ),
        ),
        AssetCheckSpec(
            ENGINES_CHECK,
            asset="training_table",
            description=("Every engine with a compression table contributes rows."),
        ),
    ],
)
def training_table(context: AssetExecutionContext, giflab: GifLabResource):
    """One validated row (MetricRecordV1) per successful render, joined with its GIF's metadata
    and features, with its split and the dataset and code versions (docs/dataset.md)."""
    tables = dataset.load_tables(giflab.settings().db_path)
    table = dataset.build_training_table(*tables)
    summary = dataset.table_summary(table)
    yield Output(
        table,
        metadata={
            "rows": len(table),
            "gifs": summary["gifs"],
            "train_gifs": summary["gifs_per_split"]["train"],
            "derived_gifs": summary["derived_gifs"],
            "dataset_version": summary["dataset_version"] or "",
            "code_version": summary["code_version"] or "",
            "gifs_per_split": markdown_table(("split", "GIFs"), summary["gifs_per_split"].items()),
            "rows_per_engine": markdown_table(
                ("engine", "rows"), summary["rows_per_engine"].items()
            ),
            "excluded_rows": summary["excluded_rows"],
            "exclusions": MetadataValue.json(summary["exclusions"]),
        },
    )
    missing_columns = [c for c in MetricRecordV1.model_fields if c not in table.columns]
    version = table.attrs.get("schema_version")
    yield AssetCheckResult(
        check_name=SCHEMA_CHECK,
        passed=not missing_columns and version == MetricRecordV1.SCHEMA_VERSION,
        metadata={
            "schema": f"MetricRecordV{MetricRecordV1.SCHEMA_VERSION}",
            "table_schema_version": str(version),
            "rows_validated": len(table),
            "missing_columns": MetadataValue.json(missing_columns),
        },
    )
    plain = [c for c in GIF_FEATURES if c not in CLIP_FEATURES]
    nan_counts = {c: int(n) for c, n in table[plain].isna().sum().items() if n}
    yield AssetCheckResult(
        check_name=NO_NAN_CHECK,
        passed=not nan_counts,
        metadata={"missing": MetadataValue.json(nan_counts)},
    )
    empty = sorted(
        engine
        for engine, runs in tables.runs.items()
        if len(runs) and engine.replace("_", "-") not in set(table["engine"])
    )
    yield AssetCheckResult(
        check_name=ENGINES_CHECK,
        passed=not empty,
        severity=AssetCheckSeverity.WARN,
        metadata={"engines_without_rows": MetadataValue.json(empty)},
    )


@asset(owners=OWNERS, group_name="dataset", kinds={"scikitlearn"})
def feature_scaler(giflab: GifLabResource, training_table: pd.DataFrame) -> MaterializeResult:
    """``models/scaler.pkl``: a StandardScaler over the GIF features, fitted on train GIFs only;
    rewritten only when the train data or the feature set changed."""
    table = training_table
    path = giflab.settings().models_dir / "scaler.pkl"
    path.parent.mkdir(parents=True, exist_ok=True)
    saved = dataset.save_scaler(dataset.fit_scaler(table), path, dataset.scaler_fingerprint(table))
    return MaterializeResult(
        metadata={
            "path": MetadataValue.path(str(saved.path)),
            "sha256": saved.sha256,
            "rewritten": saved.rewritten,
            "fingerprint": saved.fingerprint,
            "train_gifs": int(table.loc[table["split"] == "train", "gif_sha"].nunique()),
        }
    )


@asset(owners=OWNERS, group_name="dataset", kinds={"parquet", "csv"})
def dataset_export(giflab: GifLabResource, training_table: pd.DataFrame) -> MaterializeResult:
    """``export/giflab_dataset.csv`` and ``.parquet``: the training table with the seed
    dataset's columns first (docs/dataset.md, Export)."""
    files = dataset.export_dataset(training_table, giflab.settings().data_dir / "export")
    return MaterializeResult(
        metadata={
            "csv": MetadataValue.path(str(files.csv)),
            "parquet": MetadataValue.path(str(files.parquet)),
            "rows": files.rows,
            "columns": len(files.columns),
        }
    )


@asset(
    owners=OWNERS,
    io_manager_key="sqlite_io_manager",
    group_name="reports",
    kinds={"pandas", "sqlite"},
)
def outlier_report(training_table: pd.DataFrame) -> Output[pd.DataFrame]:
    """Renders and GIFs that stand out from their peers, each with the reason (docs/dataset.md)."""
    report = dataset.outlier_report(training_table)
    counts = report["check"].value_counts().sort_index().to_dict() if len(report) else {}
    summary = dataset.outlier_summary(report) if len(report) else None
    return Output(
        report,
        metadata={
            "findings": len(report),
            "per_check": markdown_table(("check", "findings"), counts.items()),
            "summary": markdown_table(summary.columns, summary.head(30).itertuples(index=False))
            if summary is not None
            else MetadataValue.md("no outliers"),
        },
    )


@asset(owners=OWNERS, group_name="reports", kinds={"pandas"})
def correlation_report(giflab: GifLabResource, training_table: pd.DataFrame) -> MaterializeResult:
    """Spearman correlations of the GIF features and each engine's median size ratio:
    ``reports/correlation.csv`` and a heatmap PNG shown here."""
    matrix, png = dataset.correlation_report(training_table)
    out = giflab.settings().data_dir / "reports"
    out.mkdir(parents=True, exist_ok=True)
    matrix.to_csv(out / "correlation.csv")
    path = write_png(out / "correlation.png", png)
    return MaterializeResult(
        metadata={
            "heatmap": png_markdown(png, "correlation heatmap"),
            "png": MetadataValue.path(str(path)),
            "csv": MetadataValue.path(str(out / "correlation.csv")),
            "columns": len(matrix.columns),
            "dropped": MetadataValue.json([str(c) for c in matrix.attrs.get("dropped", [])]),
        }
    )
