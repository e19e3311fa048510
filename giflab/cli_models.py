"""Command line for the dataset and the models: ``train``, ``export`` and ``predict``.

``train`` and ``export`` materialise Dagster assets on the persistent instance (so the UI shows
the runs and lineage); ``predict`` reads only the exported files in ``DATA_DIR/models``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from giflab.config import Settings

TRAIN_ASSETS = (
    "training_table",
    "feature_scaler",
    "curve_models",
    "model_evaluation",
    "outlier_report",
    "correlation_report",
)
EXPORT_ASSETS = ("training_table", "dataset_export")


def add_parsers(sub, common) -> None:
    """Add ``train``, ``export`` and ``predict`` to the subcommand parsers."""
    train = sub.add_parser(
        "train", help="build the training table, fit the scaler, train and evaluate the models"
    )
    common(train)
    train.add_argument(
        "--formulation",
        choices=["auto", "joint", "per_level"],
        default="auto",
        help="curve-model formulation (default: auto, chosen per engine on the val split)",
    )
    train.add_argument(
        "--mlflow-uri", help="MLflow tracking URI (default: sqlite:///DATA_DIR/mlflow.db)"
    )
    train.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="also score K-fold cross-validation by GIF (every GIF held out once; small corpora)",
    )

    export = sub.add_parser(
        "export", help="write the dataset (CSV, Parquet) and verify the exported models"
    )
    common(export)
    export.add_argument("--out", type=Path, help="also copy the model files here")

    predict = sub.add_parser("predict", help="predicted size curves of a GIF from its pixels")
    common(predict)
    predict.add_argument("gif", type=Path, help="the GIF file")
    predict.add_argument("--engine", action="append", help="engine(s) to predict (default: all)")
    predict.add_argument("--target-kb", type=float, help="pick the settings that meet this size")
    predict.add_argument("--models", type=Path, help="exported models (default: DATA_DIR/models)")
    predict.add_argument(
        "--json", action="store_true", help="JSON: one object (one --engine) or a list of them"
    )


def _run(settings: Settings, selection, run_config=None, **resources):
    import os
    import warnings

    # Dagster's beta/preview notices are for asset authors, not for people running the CLI;
    # MLflow's INFO lines (creating tables, validating the input example) are noise here too.
    warnings.filterwarnings("ignore", module="dagster")
    warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    from giflab_assets.runner import materialize_unpartitioned, open_instance, step_failures

    if not settings.db_path.exists():
        print(f"giflab: {settings.db_path}: no database; run `giflab run` first", file=sys.stderr)
        return None
    with open_instance(settings.dagster_home) as instance:
        result = materialize_unpartitioned(
            instance, selection, data_dir=str(settings.data_dir), run_config=run_config, **resources
        )
    if not result.success:
        for line in step_failures(result):
            print(f"giflab: {line}", file=sys.stderr)
    return result


def _metadata(result, asset: str) -> dict:
    events = result.asset_materializations_for_node(asset)
    return {k: v.value for k, v in events[-1].metadata.items()} if events else {}


# Below this many train GIFs (and none derived), `train` suggests `run --augment`.
AUGMENT_HINT_BELOW = 500


def cmd_train(args: argparse.Namespace, settings: Settings) -> int:
    """Materialise the dataset, scaler, models, evaluation and reports; print the scores."""
    from resources import MlflowResource

    mlflow = MlflowResource(data_dir=str(settings.data_dir), tracking_uri=args.mlflow_uri)
    run_config = {"ops": {"curve_models": {"config": {"formulation": args.formulation}}}}
    result = _run(settings, TRAIN_ASSETS, run_config, mlflow=mlflow)
    if result is None or not result.success:
        return 1
    table = _metadata(result, "training_table")
    derived = table.get("derived_gifs") or 0
    print(
        f"training table: {table.get('rows')} rows, {table.get('gifs')} GIFs"
        + (f" ({derived} derived by --augment)" if derived else "")
    )
    train_gifs = table.get("train_gifs") or 0
    if not derived and train_gifs < AUGMENT_HINT_BELOW:
        print(
            f"hint: only {train_gifs} train GIFs; `giflab run --augment 4` cuts 4 more from each"
            " (on the corpus it lowered gifsicle's and ffmpeg's errors; docs/models.md)"
        )
    evaluation = _metadata(result, "model_evaluation")
    for line in evaluation.get("lines", "").splitlines():
        print(line)
    print(f"models in {settings.models_dir}; MLflow: {mlflow.resolved_tracking_uri()}")
    if args.cv:
        print_cross_validation(settings, args.cv, args.formulation)
    return 0


def print_cross_validation(settings: Settings, folds: int, formulation: str) -> None:
    """Print out-of-fold errors per engine and lossy level, model against baseline."""
    from giflab.dataset import build_training_table, load_tables
    from giflab.prediction.config import TrainConfig
    from giflab.prediction.crossval import cross_validate

    table = build_training_table(*load_tables(settings.db_path))
    result = cross_validate(table, TrainConfig(formulation=formulation), folds)
    print(f"{folds}-fold cross-validation by GIF (median / p90 absolute % error):")
    errors = result.errors.pivot_table(
        index=["engine", "lossy"], columns="predictor", values=["median_ape", "p90_ape"]
    )
    for (engine, lossy), row in errors.iterrows():
        print(
            f"  {engine:<20} lossy {lossy:>3}  model {row[('median_ape', 'model')]:5.1f} / "
            f"{row[('p90_ape', 'model')]:6.1f}   baseline {row[('median_ape', 'baseline')]:5.1f}"
            f" / {row[('p90_ape', 'baseline')]:6.1f}"
        )
    for engine, s in result.summary["engines"].items():
        print(
            f"  {engine:<20} all levels: model {s['model_median_ape']:.1f} / "
            f"{s['model_p90_ape']:.1f}, baseline {s['baseline_median_ape']:.1f} / "
            f"{s['baseline_p90_ape']:.1f}, hit rate {s['hit_rate']:.2f} "
            f"(baseline {s['baseline_hit_rate']:.2f}), {s['n_gifs']} GIFs"
        )


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """Write the dataset files; verify the exported models (and copy them to ``--out``)."""
    from giflab.prediction.load import load_models

    result = _run(settings, EXPORT_ASSETS)
    if result is None or not result.success:
        return 1
    files = _metadata(result, "dataset_export")
    print(f"dataset: {files['csv']} and {files['parquet']} ({files['rows']} rows)")
    card = settings.models_dir / "model_card.json"
    if not card.exists():
        print(f"no models in {settings.models_dir} yet: run `giflab train`", file=sys.stderr)
        return 0
    models = load_models(settings.models_dir)  # refuses any file whose sha256 differs
    names = ["model_card.json", *sorted(models.card.files)]
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        for name in names:
            shutil.copy2(settings.models_dir / name, args.out / name)
    where = args.out or settings.models_dir
    print(f"models: {', '.join(sorted(models.bundles))} verified; {len(names)} files in {where}")
    return 0


def _clip_scorer():
    """The CLIP scorer ``run`` uses (same model and weights), or None when CLIP is switched off;
    without weights the scores are NaN, as in the training rows of such a dataset."""
    from giflab.features import ClipScorer
    from resources import ClipResource

    config = ClipResource().scorer_config()
    return None if config is None else ClipScorer(**config)


def cmd_predict(args: argparse.Namespace, settings: Settings) -> int:
    """Print the predicted curve per engine and the settings meeting ``--target-kb``."""
    from giflab.prediction.load import load_models
    from giflab.prediction.predict import predict_gif

    model_dir = args.models or settings.models_dir
    if not (model_dir / "model_card.json").exists():
        print(f"giflab: {model_dir}: no exported models; run `giflab train`", file=sys.stderr)
        return 1
    models = load_models(model_dir, engines=args.engine)
    predictions = predict_gif(
        args.gif, models, engines=args.engine, target_kb=args.target_kb, clip=_clip_scorer()
    )
    for note in dict.fromkeys(n for p in predictions for n in p.notes):
        print(f"giflab: warning: {note}", file=sys.stderr)
    if args.json:
        docs = [p.to_json() for p in predictions]
        # One engine asked for: its object; otherwise a list of them, one per engine.
        print(json.dumps(docs[0] if args.engine and len(args.engine) == 1 else docs))
        return 0
    for p in predictions:
        doc = p.to_json()
        print(f"{doc['engine']}:")
        by_setting: dict[tuple, list] = {}
        for point in doc["curve"]:
            key = (point["colors"], point["frame_keep"])
            by_setting.setdefault(key, []).append(point)
        for (colors, keep), points in sorted(by_setting.items(), reverse=True):
            sizes = "  ".join(f"{pt['lossy']}:{pt['kilobytes']:.1f}" for pt in points)
            print(f"  colors {colors:>3} keep {keep:.1f}  lossy:kB  {sizes}")
        if args.target_kb is not None:
            pick = doc["pick"]
            chosen = (
                f"lossy {pick['lossy']}, colors {pick['colors']}, frame_keep "
                f"{pick['frame_keep']:g} (~{pick['kilobytes']:.1f} kB)"
                if pick
                else "no setting is predicted to meet it"
            )
            print(f"  pick for <= {args.target_kb:g} kB: {chosen}")
    return 0
