"""The Dagster UI and the MLflow registry in a real browser (headless Chromium via Selenium).

One module fixture builds a data directory with real content — ``giflab run`` on two sample GIFs
(the ``FAST`` flags) and ``giflab train`` on ``tests/training_db.py``'s database merged in —
starts ``dagster-webserver`` and ``mlflow server`` on 127.0.0.1, and one Chromium for every
test. Each page is screenshotted into ``tmp_path`` and, when ``GIFLAB_SCREENSHOTS=DIR`` is set,
into DIR. Chromium and chromedriver come from the system (``scripts/setup.sh``); nothing is
downloaded: the driver's path is explicit and Selenium Manager runs offline. Without them the
tests skip, except under ``CI=true``, where they fail.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from PIL import Image

from tests.conftest import REPO, SAMPLES, screenshot_dir
from tests.test_cli import FAST
from tests.training_db import training_db

WINDOW = (1400, 1000)
CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
# Tables training_db() fills; the run's own rows for the same GIF win.
MERGED_TABLES = ("gif_metadata", "gif_features", "compression_runs_gifsicle")
# Onboarding pop-ups that would cover the pages, dismissed as a first visit's click would.
DAGSTER_STORAGE = {"communityNux": '"1"'}
MLFLOW_STORAGE = {
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.assistant.panelOpen_v1": "false",
    "_mlflow_model_registry_promo_modal_dismissed_v1": "true",
}
ENGINE_MODEL = "giflab-curve-gifsicle"
METRIC = "test_model_median_ape"
# One worker builds the site when xdist distributes by group (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("browser")


def _unavailable(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI installs them with scripts/setup.sh)")
    pytest.skip(reason)


def _browser_binaries() -> tuple[str, str]:
    try:
        import selenium  # noqa: F401
    except ImportError:
        _unavailable("selenium is not installed (pip install -e '.[dev]')")
    chromium = next((p for p in map(shutil.which, CHROMIUM) if p), None)
    driver = shutil.which("chromedriver")
    if not chromium or not driver:
        _unavailable("chromium and chromedriver are not installed (apt: chromium chromium-driver)")
    for tool in ("dagster-webserver", "mlflow"):
        if not shutil.which(tool):
            _unavailable(f"{tool} is not on PATH")
    return chromium, driver


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], log: Path, **kw) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, **kw
        )


def _stop(proc: subprocess.Popen) -> None:
    """End the server's whole process group (workers too); SIGKILL if it lingers."""
    for sig, wait in ((signal.SIGTERM, 15), (signal.SIGKILL, 10)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"{url}: server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.25)
    pytest.fail(f"{url} did not answer in {timeout} s:\n{log.read_text()[-3000:]}")


def _merge_training_rows(db: Path, training: Path) -> None:
    """Add training_db()'s GIFs (no partitions: only the run's two GIFs have them)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("ATTACH DATABASE ? AS training", (str(training),))
        for table in MERGED_TABLES:
            cols = ", ".join(
                f'"{r[1]}"' for r in conn.execute(f'PRAGMA training.table_info("{table}")')
            )
            conn.execute(
                f'INSERT INTO main."{table}" ({cols}) SELECT {cols} FROM training."{table}" '
                f'WHERE gif_sha NOT IN (SELECT gif_sha FROM main."{table}")'
            )
        conn.commit()
    finally:
        conn.close()


def _giflab(*args: str, data: Path, log: Path) -> subprocess.Popen:
    env = os.environ | {"GIFLAB_DATA_DIR": str(data)}
    env.pop("DAGSTER_HOME", None)
    return _start([sys.executable, "-m", "giflab", *args], log, cwd=REPO, env=env)


def _finish(proc: subprocess.Popen, log: Path, what: str) -> None:
    if proc.wait() != 0:
        pytest.fail(f"{what} exited {proc.returncode}:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """Data directory, both servers and their URLs; the servers stop after the module."""
    _browser_binaries()
    root = tmp_path_factory.mktemp("browser")
    data, raw, cwd, logs = root / "data", root / "raw", root / "cwd", root / "logs"
    for d in (raw, cwd, logs):
        d.mkdir()
    gifs = sorted(SAMPLES.glob("*.gif"), key=lambda p: p.stat().st_size)[:2]
    for gif in gifs:
        shutil.copy(gif, raw / gif.name)
    dagster_port, mlflow_port = _free_port(), _free_port()
    dagster, mlflow = f"http://127.0.0.1:{dagster_port}", f"http://127.0.0.1:{mlflow_port}"
    server_env = os.environ | {
        "DAGSTER_HOME": str(data / "dagster_home"),
        "GIFLAB_DATA_DIR": str(data),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS": "false",
    }
    mlflow_cmd = ["mlflow", "server", "--host", "127.0.0.1", "--port", str(mlflow_port)]
    mlflow_cmd += ["--backend-store-uri", f"sqlite:///{data / 'mlflow.db'}"]
    mlflow_cmd += ["--artifacts-destination", str(data / "mlruns"), "--workers", "1"]
    dagster_cmd = ["dagster-webserver", "-h", "127.0.0.1", "-p", str(dagster_port)]
    dagster_cmd += ["-m", "giflab_assets.definitions"]

    # Everything overlaps: training_db() (a thread of this process), the run, the MLflow
    # server (it creates the empty store) and, once the run has set up the instance, Dagster's.
    procs: list[subprocess.Popen] = []
    pool = ThreadPoolExecutor(1)
    try:
        training = pool.submit(training_db)
        procs.append(_giflab("run", str(raw), "--no-progress", "--no-clip", *FAST,
                             data=data, log=logs / "run.log"))  # fmt: skip
        data.mkdir(exist_ok=True)
        procs.append(_start(mlflow_cmd, logs / "mlflow.log", cwd=cwd, env=server_env))
        _finish(procs[0], logs / "run.log", "giflab run")
        procs.append(_start(dagster_cmd, logs / "dagster.log", cwd=cwd, env=server_env))
        _merge_training_rows(data / "giflab.db", training.result())
        _wait_http(f"{mlflow}/health", procs[1], logs / "mlflow.log")
        procs.append(_giflab("train", data=data, log=logs / "train.log"))
        _finish(procs[3], logs / "train.log", "giflab train")
        _wait_http(f"{dagster}/server_info", procs[2], logs / "dagster.log")
        yield {
            "data": data,
            "dagster": dagster,
            "mlflow": mlflow,
            "shas": [hashlib.sha256(g.read_bytes()).hexdigest() for g in gifs],
        }
    finally:
        pool.shutdown(cancel_futures=True)
        for proc in procs:
            _stop(proc)


@pytest.fixture(scope="module")
def browser(site, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    chromium, chromedriver = _browser_binaries()
    options = Options()
    options.binary_location = chromium
    for arg in (
        "--headless=new",
        "--no-sandbox",
        "--disable-dev-shm-usage",
        f"--window-size={WINDOW[0]},{WINDOW[1]}",
        f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SE_OFFLINE", "true")  # Selenium Manager never downloads anything
        driver = webdriver.Chrome(service=Service(chromedriver), options=options)
    try:
        driver.set_page_load_timeout(120)
        pages = ((f"{site['dagster']}/server_info", DAGSTER_STORAGE),
                 (f"{site['mlflow']}/health", MLFLOW_STORAGE))  # fmt: skip
        for page, items in pages:  # localStorage is per origin: set it on a plain page of each
            driver.get(page)
            for key, value in items.items():
                driver.execute_script(
                    "localStorage.setItem(arguments[0], arguments[1])", key, value
                )
        yield driver
    finally:
        driver.quit()


def show(driver, url: str, *texts: str, timeout: float = 120) -> str:
    """Open ``url`` and wait until the page's visible text holds every one of ``texts``."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    driver.get(url)
    seen = {"text": ""}

    def ready(d) -> bool:
        seen["text"] = d.find_element(By.TAG_NAME, "body").text
        return all(t in seen["text"] for t in texts)

    wait = WebDriverWait(driver, timeout, 0.5, (StaleElementReferenceException,))
    try:
        wait.until(ready)
    except TimeoutException:
        missing = [t for t in texts if t not in seen["text"]]
        pytest.fail(f"{url}: {missing} not shown in {timeout} s; page text:\n{seen['text'][:3000]}")
    return seen["text"]


def screenshot(driver, name: str, tmp_path: Path) -> Path:
    """Save the window as ``name.png`` in tmp_path and in ``screenshot_dir()`` (printed at the end
    of the test session, for CI to keep); check it is a real, window-sized, non-blank PNG."""
    path = tmp_path / f"{name}.png"
    assert driver.save_screenshot(str(path))
    out = screenshot_dir()
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, out / path.name)
    width, height, ratio = driver.execute_script(
        "return [window.innerWidth, window.innerHeight, window.devicePixelRatio]"
    )
    assert width == WINDOW[0]
    with Image.open(path) as im:
        assert im.format == "PNG"
        assert im.size == (round(width * ratio), round(height * ratio))
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 20, f"{name}.png looks blank"
    return path


def test_dagster_materialisation_shows_its_plot(site, browser, tmp_path):
    """model_evaluation's materialisation carries its plots as images: the metadata row
    ``error_by_level`` opens (``[Show Markdown]``) onto an <img> the browser decoded (a data:
    PNG with a real size), not a broken link."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    show(browser, f"{site['dagster']}/assets/model_evaluation", "error_by_level", "Show Markdown")
    row = browser.find_element(By.XPATH, "//tr[.//span[text()='error_by_level']]")
    row.find_element(By.XPATH, ".//a[contains(., 'Show Markdown')]").click()

    def decoded(d):
        images = d.find_elements(By.CSS_SELECTOR, "img[src^='data:image/png']")
        sizes = [
            d.execute_script("return [arguments[0].naturalWidth, arguments[0].complete]", i)
            for i in images
        ]
        return sizes if sizes and all(w > 100 and ok for w, ok in sizes) else False

    sizes = WebDriverWait(browser, 60, 0.5).until(decoded)
    assert len(sizes) == 1  # the dialog shows this one plot
    # The dialog fades in: shoot once no CSS transition or animation is running.
    WebDriverWait(browser, 10, 0.2).until(
        lambda d: d.execute_script("return document.getAnimations().length === 0")
    )
    screenshot(browser, "dagster_model_evaluation_error_by_level", tmp_path)


def _mlflow_run(data: Path) -> tuple[str, str, float]:
    """(experiment id, run id, METRIC) of the engine's training run, from the store itself."""
    with sqlite3.connect(data / "mlflow.db") as conn:
        return conn.execute(
            "SELECT r.experiment_id, r.run_uuid, m.value FROM runs r "
            "JOIN experiments e ON e.experiment_id = r.experiment_id "
            "JOIN tags t ON t.run_uuid = r.run_uuid "
            "JOIN latest_metrics m ON m.run_uuid = r.run_uuid "
            "WHERE e.name = 'giflab-curves' AND t.key = 'giflab.engine' "
            "AND t.value = 'gifsicle' AND m.key = ?",
            (METRIC,),
        ).fetchone()


# --- Dagster ------------------------------------------------------------------------------


def test_dagster_catalog_lists_the_engine_assets(site, browser, tmp_path):
    show(
        browser,
        f"{site['dagster']}/assets",
        "compression_runs_gifsicle",
        "Renders of each GIF by gifsicle over the variant matrix",
        "curve_models",
        "2 partitions",
    )
    screenshot(browser, "dagster_catalog", tmp_path)


def test_dagster_asset_graph_shows_the_pipeline(site, browser, tmp_path):
    # training_table's neighbours are every other asset: the whole graph on one screen.
    show(
        browser,
        f"{site['dagster']}/assets/training_table?view=lineage",
        "gif_metadata",
        "gif_features",
        "training_table",
        "feature_scaler",
        "curve_models",
        "model_evaluation",
        "correlation_report",
        "outlier_report",
        "dataset_export",
    )
    screenshot(browser, "dagster_asset_graph", tmp_path)


def test_dagster_partitions_of_gif_metadata(site, browser, tmp_path):
    show(
        browser,
        f"{site['dagster']}/assets/gif_metadata?view=partitions",
        "Materialized (2)",
        "Missing (0)",
        "Failed (0)",
        *(sha[:12] for sha in site["shas"]),  # keys are shown shortened in the middle
    )
    screenshot(browser, "dagster_gif_metadata_partitions", tmp_path)


def test_dagster_asset_page_and_check(site, browser, tmp_path):
    show(
        browser,
        f"{site['dagster']}/assets/gif_features",
        "CLIP content features of each GIF",  # the asset's description
        "clip_missing",  # metadata the asset emits
        "gif_metadata",  # upstream
        "training_table",  # downstream
    )
    screenshot(browser, "dagster_gif_features", tmp_path)
    show(
        browser,
        f"{site['dagster']}/assets/gif_features?view=checks",
        "clip_scores_present",
        "The six CLIP content scores were computed",
        "CLIP scores NULL for 2 of 2 GIFs",
    )
    screenshot(browser, "dagster_gif_features_checks", tmp_path)


# --- MLflow -------------------------------------------------------------------------------


def test_mlflow_registered_models_list_the_engine_model(site, browser, tmp_path):
    show(browser, f"{site['mlflow']}/#/models", ENGINE_MODEL, "champion")
    screenshot(browser, "mlflow_registered_models", tmp_path)


def test_mlflow_model_page_shows_version_1_with_its_aliases(site, browser, tmp_path):
    with sqlite3.connect(site["data"] / "mlflow.db") as conn:
        aliases = dict(conn.execute("SELECT alias, version FROM registered_model_aliases"))
    # A first version is the candidate and, with no champion to beat, the champion too.
    assert aliases == {"candidate": 1, "champion": 1}
    text = show(
        browser,
        f"{site['mlflow']}/#/models/{ENGINE_MODEL}",
        "Version 1",
        "candidate",
        "champion",
        "GifLab compression-curve model for gifsicle",  # the description registering writes
    )
    assert "Version 2" not in text
    screenshot(browser, "mlflow_model_versions", tmp_path)


def test_mlflow_run_page_shows_the_logged_metrics(site, browser, tmp_path):
    experiment, run, value = _mlflow_run(site["data"])
    show(
        browser,
        f"{site['mlflow']}/#/experiments/{experiment}/runs/{run}",
        "giflab-curves",
        "train-gifsicle",  # the training run keeps its name when the model is registered in it
        METRIC,
        repr(value),  # the UI prints the stored double in full
        ENGINE_MODEL,  # the registered model the run produced
    )
    screenshot(browser, "mlflow_training_run", tmp_path)
