"""Command line: ``python -m giflab run|stats|doctor|train|export|predict``.

Heavy imports (Dagster, torch, mlflow) happen inside the commands that need them, so ``--help``
and ``stats`` start fast. Errors are one line naming the file; the process exits 130 after Ctrl-C
(or SIGTERM).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sqlite3
import sys
import warnings
from pathlib import Path

from giflab import cli_doctor, cli_models
from giflab.config import Settings

EXIT_INTERRUPTED = 130


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--data-dir", type=Path, help="all state lives here (default: $GIFLAB_DATA_DIR or ./data)"
    )


def _names(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _ints(text: str) -> list[int]:
    return [int(t) for t in _names(text)]


def _floats(text: str) -> list[float]:
    return [float(t) for t in _names(text)]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="giflab", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="ingest a folder of GIFs and materialise what is missing")
    _common(run)
    run.add_argument("raw_dir", nargs="?", type=Path, help="folder of GIFs (default: DATA_DIR/raw)")
    run.add_argument(
        "-j",
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        help="worker processes (default: CPU count)",
    )
    run.add_argument(
        "--resume",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="skip work already done (default: on)",
    )
    run.add_argument(
        "--fail-dir", type=Path, help="where bad files are moved (default: DATA_DIR/bad_gifs)"
    )
    run.add_argument("--dry-run", action="store_true", help="list the work; change nothing")
    run.add_argument(
        "--retry-failed",
        action="store_true",
        help="render again the variants whose earlier render failed (e.g. timed out)",
    )
    run.add_argument(
        "--batch-size", type=int, default=64, help="GIFs per Dagster run (default: 64)"
    )
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    run.add_argument(
        "--augment",
        type=int,
        default=0,
        metavar="K",
        help="also cut K training GIFs from each train-split GIF (crops, frame windows; "
        "docs/models.md) into DATA_DIR/augmented and sweep them (default: 0, none)",
    )
    run.add_argument("--engines", type=_names, help="comma-separated engines (default: all seven)")
    run.add_argument("--lossy", type=_ints, help="lossy levels for this run, e.g. 0,40,80")
    run.add_argument("--colors", type=_ints, help="colour counts for this run, e.g. 256,64")
    run.add_argument(
        "--frame-keep", type=_floats, help="frame-keep ratios for this run, e.g. 1.0,0.5"
    )

    run.add_argument(
        "--metric-frames",
        type=int,
        help="source frames compared per render, evenly spaced (default: 24)",
    )
    run.add_argument(
        "--clip-weights",
        type=Path,
        help="local open_clip checkpoint for the CLIP scores (default: $GIFLAB_CLIP_WEIGHTS or "
        "the open_clip cache; never downloaded)",
    )
    run.add_argument(
        "--no-clip", action="store_true", help="store the six CLIP scores as NULL (no model)"
    )

    stats = sub.add_parser("stats", help="counts straight from the database")
    _common(stats)
    stats.add_argument("--json", action="store_true", help="one JSON object for scripts")

    cli_doctor.add_parser(sub, _common)
    cli_models.add_parsers(sub, _common)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    kwargs = {}
    if getattr(args, "data_dir", None):
        kwargs["data_dir"] = args.data_dir
    if getattr(args, "raw_dir", None):
        kwargs["raw_dir"] = args.raw_dir
    if getattr(args, "fail_dir", None):
        kwargs["fail_dir"] = args.fail_dir
    return Settings(**kwargs)


def _install_sigint() -> None:
    """First Ctrl-C (or SIGTERM): finish active work, flush, exit 130. Second: stop at once."""
    from giflab.parallel import INTERRUPTS, STOP

    def handler(signum, frame):
        if STOP.is_set():
            raise KeyboardInterrupt
        STOP.set()
        print("\ninterrupted: finishing active work (Ctrl-C again to abort)", file=sys.stderr)

    for signum in INTERRUPTS:
        signal.signal(signum, handler)


def cmd_run(args: argparse.Namespace) -> int:
    from giflab.parallel import shared_pool

    settings = _settings(args)
    if not settings.raw.is_dir():
        print(f"giflab: {settings.raw}: not a folder", file=sys.stderr)
        return 2
    _install_sigint()
    # One pool for ingest and every run: workers import their modules once per `giflab run`.
    with shared_pool(args.workers):
        return _ingest_then_materialize(args, settings)


def _ingest_then_materialize(args: argparse.Namespace, settings: Settings) -> int:
    from giflab.db import REGISTRY_DDL, connect_readonly, open_db
    from giflab.ingest import register_folder
    from giflab.parallel import STOP, set_progress_hook

    raw = settings.raw
    bar = _bar(args, "ingest", unit="file")
    set_progress_hook(
        bar.update if bar is not None else None, _set_total(bar) if bar is not None else None
    )
    if args.dry_run:
        conn = (
            connect_readonly(settings.db_path)
            if settings.db_path.exists()
            else sqlite3.connect(":memory:")
        )
        if not settings.db_path.exists():
            conn.executescript(REGISTRY_DDL)
        with conn:
            report = register_folder(
                conn,
                raw,
                settings.bad_dir,
                limits=settings.limits(),
                workers=args.workers,
                dry_run=True,
            )
        conn.close()
    else:
        settings.ensure_dirs()
        with open_db(settings.db_path) as conn:
            report = register_folder(
                conn, raw, settings.bad_dir, limits=settings.limits(), workers=args.workers
            )
    if bar is not None:
        bar.close()
    set_progress_hook(None)
    verb = "would quarantine" if args.dry_run else "quarantined"
    for path, kind, reason, dest in report.quarantined:
        print(
            f"{verb}: {path}: {kind}: {reason}" + (f" -> {dest}" if dest else ""), file=sys.stderr
        )
    for path, reason in report.refused:
        print(f"refused: {path}: {reason} (left in place)", file=sys.stderr)
    print(
        f"{report.files_seen} files: {len(report.new_gifs)} new GIFs, {len(report.duplicates)} duplicate names,"
        f" {len(report.quarantined)} bad, {len(report.refused)} refused, {report.unchanged} unchanged"
    )
    if args.dry_run:
        for sha in report.new_gifs:
            print(f"would add partition {sha}")
        if args.augment > 0:
            print(f"would cut {args.augment} GIFs from each train GIF into {settings.augment_dir}")
        return 0
    if report.interrupted or STOP.is_set():
        return EXIT_INTERRUPTED
    if args.augment > 0:
        code = _augment(args, settings)
        if code:
            return code
    return _materialize(args, settings)


def _augment(args: argparse.Namespace, settings: Settings) -> int:
    """Cut ``--augment`` GIFs from each train GIF and register them (0, or an exit code)."""
    from giflab.augment import augment_folder
    from giflab.db import open_db
    from giflab.engines.config import EngineConfig
    from giflab.engines.registry import get_engine
    from giflab.ingest import register_folder
    from giflab.parallel import STOP

    config = EngineConfig()
    gifsicle = get_engine("gifsicle", config).binary()
    if gifsicle is None:
        print(
            f"giflab: --augment needs gifsicle: {get_engine('gifsicle', config).not_found_reason()}",
            file=sys.stderr,
        )
        return 2
    settings.augment_dir.mkdir(parents=True, exist_ok=True)
    with open_db(settings.db_path) as conn:
        made = augment_folder(
            conn,
            settings.augment_dir,
            args.augment,
            gifsicle,
            workers=args.workers,
            timeout_s=config.timeout_s,
        )
        for source, reason in made.failed:
            print(f"augment: {source}: {reason} (no derived GIFs from it)", file=sys.stderr)
        print(
            f"augment: {made.sources} train GIFs: {made.written} derived GIFs written,"
            f" {made.existing} already there, {len(made.failed)} failed"
        )
        if made.interrupted or STOP.is_set():
            return EXIT_INTERRUPTED
        report = register_folder(
            conn,
            settings.augment_dir,
            settings.bad_dir,
            limits=settings.limits(),
            workers=args.workers,
        )
    for path, kind, reason, dest in report.quarantined:
        print(f"quarantined: {path}: {kind}: {reason} -> {dest}", file=sys.stderr)
    if report.interrupted or STOP.is_set():
        return EXIT_INTERRUPTED
    return 0


def _materialize(args: argparse.Namespace, settings: Settings) -> int:
    # Dagster's beta/preview notices (raised while the assets are defined) are for asset authors.
    warnings.filterwarnings("ignore", module="dagster")
    from giflab.db import open_db
    from giflab.scratch import remove_stale
    from giflab_assets.runner import (
        add_partitions,
        execute,
        fail_orphan_runs,
        open_instance,
        plan_pipeline,
    )
    from resources import ClipResource, EnginesResource

    clip = ClipResource(
        enabled=not args.no_clip,
        weights_path=str(args.clip_weights.resolve()) if args.clip_weights else None,
    )
    overrides = {
        "engines": args.engines,
        "lossy": args.lossy,
        "colors": args.colors,
        "frame_keep": args.frame_keep,
        "max_metric_frames": args.metric_frames,
        "retry_failed": args.retry_failed,
    }
    engines = EnginesResource(**{k: v for k, v in overrides.items() if v})
    with open_db(settings.db_path) as conn:
        shas = [
            r[0]
            for r in conn.execute(
                "SELECT sha256 FROM gif_files GROUP BY sha256 ORDER BY MIN(registered_at), sha256"
            )
        ]
    remove_stale(settings.tmp_dir)
    with open_instance(settings.dagster_home) as instance:
        for run_id in fail_orphan_runs(instance):
            print(f"run {run_id} was cut off (process gone): marked failed", file=sys.stderr)
        added = add_partitions(instance, shas)
        steps, unavailable = plan_pipeline(
            instance, settings.db_path, engines, args.resume, args.batch_size, args.workers
        )
        for name, reason in unavailable.items():
            print(f"{name}: unavailable ({reason}); its renders stay missing", file=sys.stderr)
        total = sum(len(s.keys) * len(s.assets) for s in steps)
        print(
            f"{len(added)} partitions added; {total} asset partitions to materialise in {len(steps)} runs"
        )
        bar = _bar(args, "materialise", total=total, unit="partition")
        summary = execute(
            instance,
            steps,
            data_dir=str(settings.data_dir),
            workers=args.workers,
            engines=engines,
            clip=clip,
            on_step=(lambda s: bar.update(len(s.keys) * len(s.assets)))
            if bar is not None
            else None,
        )
        if bar is not None:
            bar.close()
    for sha in summary.quarantined:
        print(f"quarantined after ingest: {sha}", file=sys.stderr)
    for run_id, lines in summary.failed.items():
        print(f"giflab: run {run_id} failed (the Dagster UI shows its log):", file=sys.stderr)
        for line in lines:
            print(f"  {line}", file=sys.stderr)
    print(f"{summary.runs} runs, {summary.partitions} asset partitions materialised")
    if summary.interrupted:
        print("interrupted: finished work was saved; run again to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    return 1 if summary.failed else 0


def _set_total(bar):
    def set_total(n: int) -> None:
        bar.total = (bar.total or 0) + n
        bar.refresh()

    return set_total


def _bar(args: argparse.Namespace, desc: str, total: int | None = None, unit: str = "it"):
    if getattr(args, "no_progress", False):
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)


def cmd_stats(args: argparse.Namespace) -> int:
    from giflab.stats import collect_stats

    settings = _settings(args)
    stats = collect_stats(settings.db_path)
    from giflab.engines import DEFAULT_ENGINES, engine_statuses

    stats["unavailable_engines"] = {
        st.name: st.reason for st in engine_statuses(DEFAULT_ENGINES) if not st.ok
    }
    if args.json:
        print(json.dumps(stats, sort_keys=True))
    else:
        for k, v in stats.items():
            if isinstance(v, dict):
                for sub, n in v.items():
                    print(f"{k}.{sub:<24} {n}")
            else:
                print(f"{k:<24}  {v}")
    return 0


COMMANDS = {
    "run": cmd_run,
    "stats": cmd_stats,
    "doctor": lambda args: cli_doctor.cmd_doctor(args, _settings(args)),
    "train": lambda args: cli_models.cmd_train(args, _settings(args)),
    "export": lambda args: cli_models.cmd_export(args, _settings(args)),
    "predict": lambda args: cli_models.cmd_predict(args, _settings(args)),
}


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the command; returns the exit code."""
    args = build_parser().parse_args(argv)
    from giflab.errors import GifLabError

    try:
        return COMMANDS[args.command](args)
    except GifLabError as e:
        print(f"giflab: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("giflab: aborted", file=sys.stderr)
        return EXIT_INTERRUPTED
