"""Registration, stats, planning and the UI's partition query as the corpus grows. Run by hand.

    python benchmarks/bench_scale.py [--steps 1000,2500,5000,10000] [--max 10000]
        [--no-materialize] [--no-ui] [--keep]

Derives small GIFs (<= 64 px, 2-6 frames) from the corpus (``../shared/corpus/gifs``, never its
``bad/`` folder; else ``tests/corpus``) by cropping, scaling, trimming frames and re-timing,
deterministically, each with a unique comment so every file is a distinct GIF; they go into a
temp data dir's ``raw/`` in folders of 1000. At each growth step it adds the new files, then
measures, each in a fresh process so its peak memory (max RSS) is its own:

- **sensor**: ``raw_gifs_sensor`` evaluated with ``build_sensor_context`` against the real
  ``DagsterInstance`` on ``DATA/dagster_home``, its dynamic-partition request applied as the daemon
  does, tick after tick until a tick finds nothing new (a tick validates at most
  ``MAX_FILES_PER_TICK`` = 500 new files); then one idle tick over the whole folder. The run
  requests are not launched. Target: every tick <= 5 s.
- **plan**: ``plan_pipeline`` over all partitions with the default engines (what ``giflab run``
  does before its first run), and ``get_dynamic_partitions`` + ``get_materialized_partitions``.
- **metadata**: ``gif_metadata`` materialised for the new partitions (``runner.execute``, runs of
  1000 partitions, 2 workers), so the UI and planning see materialised partitions
  (``--no-materialize`` skips it; features and sweeps are never run here).
- **stats**: ``python -m giflab stats`` wall time and max RSS. Target: <= 2 s at 10 000 GIFs.
- **dry-run**: ``python -m giflab run RAW --dry-run`` wall time (a rescan: every file unchanged).
- **UI**: the GraphQL query of the Dagster UI's asset partitions page (``PartitionHealthQuery``:
  partition keys and materialised / failed partitions of ``gif_metadata``) POSTed to a
  ``dagster-webserver`` on 127.0.0.1 running the project's workspace on the same instance
  (median of 3); ``--no-ui`` skips it.

Prints a table per step, then the ratios against the targets, with memory "flat in corpus size"
read as max RSS at the last step / the first (sensor process and ``stats``).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

TARGET_TICK_S = 5.0
TARGET_STATS_S = 2.0
PER_FOLDER = 1000
MATERIALIZE_BATCH = 1000

PARTITION_HEALTH_QUERY = """
query PartitionHealthQuery($assetKey: AssetKeyInput!) {
  assetNodeOrError(assetKey: $assetKey) {
    ... on AssetNode {
      id
      partitionKeysByDimension { name type partitionKeys }
      assetPartitionStatuses {
        ... on DefaultPartitionStatuses {
          materializedPartitions
          materializingPartitions
          failedPartitions
        }
      }
    }
  }
}
"""


# --- corpus derivation ---------------------------------------------------------------------------


def load_seeds(max_frames: int = 8, side: int = 96) -> list[list]:
    """Up to ``max_frames`` RGB frames of each good corpus GIF, shrunk to at most ``side`` px."""
    from PIL import Image, ImageSequence

    from tests.conftest import good_corpus_gifs

    seeds = []
    for path in good_corpus_gifs():
        try:
            with Image.open(path) as im:
                frames = []
                for k, frame in enumerate(ImageSequence.Iterator(im)):
                    if k >= max_frames:
                        break
                    f = frame.convert("RGB")
                    f.thumbnail((side, side))
                    frames.append(f)
        except Exception:  # odd corpus files are simply not used as seeds
            continue
        if frames and min(frames[0].size) >= 4:
            seeds.append(frames)
    return seeds


def derive_gif(seeds: list[list], i: int, out: Path) -> None:
    """GIF number ``i``: a crop, scale, frame trim and re-timing of one seed (deterministic)."""
    rng = random.Random(i)
    frames = seeds[i % len(seeds)]
    w, h = frames[0].size
    cw, ch = rng.randint(max(2, w // 2), w), rng.randint(max(2, h // 2), h)
    x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
    scale = rng.uniform(0.4, 1.0)
    size = (max(2, min(64, int(cw * scale))), max(2, min(64, int(ch * scale))))
    start = rng.randrange(len(frames))
    count = rng.randint(2, 6)
    picked = [frames[(start + k) % len(frames)] for k in range(count)]
    shown = [f.crop((x, y, x + cw, y + ch)).resize(size) for f in picked]
    durations = [rng.choice((20, 40, 50, 70, 100, 150, 200)) for _ in shown]
    shown[0].save(
        out,
        save_all=True,
        append_images=shown[1:],
        duration=durations,
        loop=0,
        comment=f"giflab bench_scale {i}".encode(),
    )


def grow(seeds: list[list], raw: Path, start: int, stop: int) -> float:
    t0 = time.perf_counter()
    for i in range(start, stop):
        folder = raw / f"{i // PER_FOLDER:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        derive_gif(seeds, i, folder / f"derived_{i:05d}.gif")
    return time.perf_counter() - t0


# --- measured subprocesses -------------------------------------------------------------------------


def measured(cmd: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Run ``cmd``; its wall seconds, its own max RSS in MiB, its stdout (exit if it failed)."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=err)  # noqa: S603
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        text = out.read()
        if proc.returncode != 0:
            sys.exit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{text}\n{err.read()}")
    return wall, usage.ru_maxrss / 1024, text


def child_env(data: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["GIFLAB_DATA_DIR"] = str(data)
    env["DAGSTER_HOME"] = str(data / "dagster_home")
    return env


def child_tick(data: Path) -> dict:
    """In a child process: sensor ticks until nothing is new, an idle tick, planning reads."""
    import warnings

    warnings.filterwarnings("ignore")
    from dagster import AssetKey, SensorResult, build_sensor_context

    from giflab_assets.ingest.sensors import raw_gifs_sensor
    from giflab_assets.runner import open_instance, plan_pipeline
    from resources import EnginesResource, GifLabResource

    def tick(instance) -> tuple[float, bool]:
        t0 = time.perf_counter()
        ctx = build_sensor_context(
            instance=instance,
            resources={"giflab": GifLabResource(data_dir=str(data)), "engines": EnginesResource()},
        )
        result = raw_gifs_sensor(ctx)
        added = isinstance(result, SensorResult)
        if added:  # what the daemon does with the result
            for req in result.dynamic_partitions_requests or []:
                instance.add_dynamic_partitions(req.partitions_def_name, list(req.partition_keys))
        return time.perf_counter() - t0, added

    out: dict = {"ticks": []}
    with open_instance(data / "dagster_home") as instance:
        while True:
            secs, added = tick(instance)
            if not added:
                out["last_empty_tick"] = secs
                break
            out["ticks"].append(secs)
        out["idle_tick"] = tick(instance)[0]
        t0 = time.perf_counter()
        keys = instance.get_dynamic_partitions("gifs")
        done = instance.get_materialized_partitions(AssetKey("gif_metadata"))
        out["partition_reads"] = time.perf_counter() - t0
        out["partitions"], out["materialized"] = len(keys), len(done)
        t0 = time.perf_counter()
        steps, _ = plan_pipeline(instance, data / "giflab.db", EnginesResource(), True, 64, 2)
        out["plan"] = time.perf_counter() - t0
        out["plan_runs"] = len(steps)
    out["maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return out


def child_materialize(data: Path) -> dict:
    """In a child process: ``gif_metadata`` for every partition that lacks it."""
    import warnings

    warnings.filterwarnings("ignore")
    from giflab_assets.runner import execute, open_instance, plan

    with open_instance(data / "dagster_home") as instance:
        t0 = time.perf_counter()
        steps = plan(instance, ["gif_metadata"], True, lambda _: MATERIALIZE_BATCH)
        summary = execute(instance, steps, data_dir=str(data), workers=2)
        secs = time.perf_counter() - t0
    if summary.failed:
        raise SystemExit(f"metadata runs failed: {summary.failed}")
    return {"secs": secs, "runs": summary.runs, "partitions": summary.partitions}


# --- the UI --------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_webserver(data: Path, log: Path) -> tuple[subprocess.Popen, str]:
    """``dagster-webserver`` on the project's workspace and this instance; waits until loaded."""
    import requests

    port = free_port()
    exe = Path(sys.executable).with_name("dagster-webserver")
    cmd = [str(exe) if exe.exists() else "dagster-webserver", "-h", "127.0.0.1", "-p", str(port)]
    # The project's workspace.yaml, from a folder of its own: Dagster reads ``.env`` from the
    # current folder, and the repo's would point the webserver at the repo's data dir.
    workspace = log.parent / "workspace.yaml"
    workspace.write_text(
        "load_from:\n  - python_module:\n      module_name: giflab_assets.definitions\n"
        f"      working_directory: {REPO}\n"
    )
    cmd += ["-w", str(workspace)]
    with open(log, "w") as f:
        proc = subprocess.Popen(  # noqa: S603 - argument list, no shell
            cmd, cwd=log.parent, env=child_env(data), stdout=f, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}/graphql"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"dagster-webserver exited ({proc.returncode}); see {log}")
        try:
            body = ui_query(url)
            if body.get("data", {}).get("assetNodeOrError", {}).get("id"):
                return proc, url
        except (requests.RequestException, ValueError):
            pass
        time.sleep(1)
    proc.terminate()
    sys.exit(f"dagster-webserver did not load the workspace in 240 s; see {log}")


def ui_query(url: str) -> dict:
    import requests

    payload = {
        "operationName": "PartitionHealthQuery",
        "query": PARTITION_HEALTH_QUERY,
        "variables": {"assetKey": {"path": ["gif_metadata"]}},
    }
    resp = requests.post(url, json=payload, timeout=300)
    resp.raise_for_status()
    return resp.json()


def time_ui(url: str) -> tuple[float, int, int]:
    """Median seconds of 3 queries; partition keys and materialised partitions returned."""
    times = []
    for _ in range(3):
        t0 = time.perf_counter()
        body = ui_query(url)
        times.append(time.perf_counter() - t0)
    node = body["data"]["assetNodeOrError"]
    keys = node["partitionKeysByDimension"][0]["partitionKeys"]
    return (
        statistics.median(times),
        len(keys),
        len(node["assetPartitionStatuses"]["materializedPartitions"]),
    )


def rss_mib(pid: int) -> float:
    """Current RSS of ``pid`` and its children (webserver + code server), MiB."""
    total = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(c) for c in children]
    except OSError:
        pass
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            pass
    return total / 1024


# --- driver --------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", default="1000,2500,5000,10000", help="corpus sizes, comma-separated")
    ap.add_argument("--max", type=int, default=None, help="stop at this many GIFs")
    ap.add_argument("--no-materialize", action="store_true", help="skip gif_metadata runs")
    ap.add_argument("--no-ui", action="store_true", help="skip the dagster-webserver query")
    ap.add_argument("--keep", action="store_true", help="keep the temp data dir and print it")
    ap.add_argument("--child", choices=["tick", "materialize"], help=argparse.SUPPRESS)
    ap.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        fn = child_tick if args.child == "tick" else child_materialize
        print(json.dumps(fn(args.data)))
        return

    steps = sorted({int(s) for s in args.steps.split(",") if s.strip()})
    if args.max is not None:
        steps = [s for s in steps if s < args.max] + [args.max]
    tmp = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    data, raw = tmp / "data", tmp / "data" / "raw"
    raw.mkdir(parents=True)
    env = child_env(data)
    me = [sys.executable, str(Path(__file__).resolve()), "--data", str(data), "--child"]
    giflab = [sys.executable, "-m", "giflab"]
    web = None
    rows = []
    try:
        t0 = time.perf_counter()
        seeds = load_seeds()
        print(f"{len(seeds)} seed GIFs loaded in {time.perf_counter() - t0:.1f} s")
        have = 0
        for n in steps:
            gen = grow(seeds, raw, have, n)
            have = n
            row: dict = {"n": n, "generate": gen}
            wall, rss, text = measured([*me, "tick"], env)
            tick = json.loads(text)
            row |= {"tick_proc": wall, "tick_rss": rss, **tick}
            if not args.no_materialize:
                wall, rss, text = measured([*me, "materialize"], env)
                row |= {"materialize": json.loads(text)["secs"], "materialize_rss": rss}
            wall, rss, text = measured([*giflab, "stats", "--data-dir", str(data), "--json"], env)
            row |= {"stats": wall, "stats_rss": rss, "stats_gifs": json.loads(text)["gifs"]}
            cmd = [*giflab, "run", str(raw), "--data-dir", str(data), "--dry-run", "-j", "1"]
            wall, rss, _ = measured([*cmd, "--no-progress"], env)
            row |= {"dry_run": wall, "dry_run_rss": rss}
            if not args.no_ui:
                if web is None:
                    web, url = start_webserver(data, tmp / "webserver.log")
                secs, nkeys, nmat = time_ui(url)
                row |= {"ui": secs, "ui_keys": nkeys, "ui_materialized": nmat}
                row["ui_rss"] = rss_mib(web.pid)
            rows.append(row)
            print_step(row)
    finally:
        if web is not None:
            web.terminate()
            try:
                web.wait(30)
            except subprocess.TimeoutExpired:
                web.kill()
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    print_summary(rows)


def print_step(r: dict) -> None:
    ticks = r["ticks"]
    print(f"\n== {r['n']} GIFs (generated {r['generate']:.1f} s) ==")
    print(f"  partitions {r['partitions']}, stats counts {r['stats_gifs']} GIFs")
    print(
        f"  sensor: {len(ticks)} ticks registering, max {max(ticks, default=0):.2f} s, "
        f"sum {sum(ticks):.2f} s; idle tick {r['idle_tick']:.2f} s; "
        f"process {r['tick_proc']:.1f} s, max RSS {r['tick_rss']:.0f} MiB"
    )
    print(
        f"  plan_pipeline {r['plan']:.2f} s ({r['plan_runs']} runs); "
        f"dynamic + materialised partition reads {r['partition_reads']:.3f} s"
    )
    if "materialize" in r:
        print(
            f"  gif_metadata materialised ({r['partitions']} total): {r['materialize']:.1f} s, "
            f"max RSS {r['materialize_rss']:.0f} MiB"
        )
    print(f"  stats {r['stats']:.2f} s, max RSS {r['stats_rss']:.0f} MiB")
    print(f"  run --dry-run {r['dry_run']:.2f} s, max RSS {r['dry_run_rss']:.0f} MiB")
    if "ui" in r:
        print(
            f"  UI PartitionHealthQuery {r['ui']:.3f} s ({r['ui_keys']} keys, "
            f"{r['ui_materialized']} materialised); webserver RSS {r['ui_rss']:.0f} MiB"
        )
    sys.stdout.flush()


def print_summary(rows: list[dict]) -> None:
    if not rows:
        return
    print("\n   GIFs  max tick  idle tick  tick RSS  plan s  stats s  stats RSS  dry-run s  UI s")
    for r in rows:
        ui = f"{r['ui']:6.3f}" if "ui" in r else "     -"
        print(
            f"{r['n']:7d}  {max(r['ticks'], default=0):8.2f}  {r['idle_tick']:9.2f}  "
            f"{r['tick_rss']:8.0f}  {r['plan']:6.2f}  {r['stats']:7.2f}  {r['stats_rss']:9.0f}  "
            f"{r['dry_run']:9.2f}  {ui}"
        )
    first, last = rows[0], rows[-1]
    worst_tick = max(max(r["ticks"], default=0) for r in rows + [{"ticks": [last["idle_tick"]]}])
    print(f"\nat {last['n']} GIFs:")
    for label, value, target in [
        ("slowest sensor tick", worst_tick, TARGET_TICK_S),
        ("stats", last["stats"], TARGET_STATS_S),
    ]:
        verdict = "ok" if value <= target else "MISSED"
        print(f"  {label:28s} {value:6.2f} s  target <= {target} s: {verdict}")
    for label, key in [("sensor process max RSS", "tick_rss"), ("stats max RSS", "stats_rss")]:
        ratio = last[key] / first[key]
        print(
            f"  {label:28s} {first[key]:.0f} -> {last[key]:.0f} MiB, "
            f"last / first = {ratio:.2f} ({first['n']} -> {last['n']} GIFs)"
        )


if __name__ == "__main__":
    main()
