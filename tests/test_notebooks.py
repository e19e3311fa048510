"""The notebooks as people run them: real kernels on a real database and real trained models.

One test builds the data directory (the training database and ``giflab train``) and runs every
notebook against it, so xdist does not build it once per worker. The models notebook runs first
without models (before training starts: a race otherwise), the dataset notebook while the models
train, then the models notebook with models, and again with the test GIFs removed (no test split).
"""

from __future__ import annotations

import re
import shutil
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import nbformat
from nbclient import NotebookClient

from giflab.dataset import table_summary
from giflab.dataset.splits import split_of
from tests.conftest import REPO
from tests.test_cli import giflab
from tests.training_db import training_db, training_table

NOTEBOOKS = REPO / "notebooks"
CELL_TIMEOUT = 120


def run_notebook(name: str) -> tuple[str, int]:
    """Execute ``notebooks/<name>`` in a fresh kernel (cwd: the repository); return the text
    of all its outputs and the number of PNG images. A cell that raises fails the test."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb, timeout=CELL_TIMEOUT, kernel_name="python3", resources={"metadata": {"path": REPO}}
    )
    client.execute()
    texts, pngs = [], 0
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            assert out.output_type != "error", out
            if out.output_type == "stream":
                texts.append(out.text)
            elif "data" in out:
                texts.append(out.data.get("text/plain", ""))
                pngs += "image/png" in out.data
    return "\n".join(texts), pngs


def test_notebooks_are_saved_without_outputs():
    for path in sorted(NOTEBOOKS.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert nb.metadata.kernelspec.name == "python3", path
        for cell in nb.cells:
            if cell.cell_type == "code":
                assert cell.outputs == [] and cell.execution_count is None, path


def test_notebooks_run_on_a_trained_data_directory(tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(training_db(), data / "giflab.db")
    summary = table_summary(training_table())
    monkeypatch.setenv("GIFLAB_DATA_DIR", str(data))
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel's inline backend draws PNGs

    untrained, _ = run_notebook("02_models.ipynb")  # before training starts: no models yet
    with ThreadPoolExecutor(1) as pool:
        training = pool.submit(giflab, "train", data_dir=data)
        dataset, dataset_pngs = run_notebook("01_dataset.ipynb")
        proc = training.result()

    assert f"{summary['gifs']} GIFs, {summary['rows']} renders" in dataset
    assert f"GIFs per split: {summary['gifs_per_split']}" in dataset
    assert "exclusions: none" in dataset
    assert "features without any value (6): clip_screen_capture" in dataset  # no CLIP weights
    assert "content type: color_complexity tertile" in dataset  # one platform, no CLIP
    assert dataset_pngs == 3  # features, size ratio, curves
    assert "No exported models in" in untrained and "skipped: no models" in untrained

    trained, trained_pngs = run_notebook("02_models.ipynb")
    cli = re.search(r"gifsicle +test median ([\d.]+)% p90 ([\d.]+)%", proc.stdout)
    assert cli, proc.stdout
    n_test = summary["gifs_per_split"]["test"]
    assert "models: gifsicle" in trained
    assert f"test: {n_test} GIFs" in trained
    assert f"model median {cli[1]}% p90 {cli[2]}%" in trained  # the numbers `giflab train` printed
    assert "The test split is empty" not in trained and "train:" not in trained
    assert "model_median_ape" in trained and "entropy" in trained
    assert trained_pngs == 2  # error by level, importance

    with sqlite3.connect(data / "giflab.db") as conn:
        shas = [s for (s,) in conn.execute("SELECT gif_sha FROM gif_metadata")]
        test_shas = [(s,) for s in shas if split_of(s) == "test"]
        conn.executemany("DELETE FROM gif_metadata WHERE gif_sha = ?", test_shas)
    untested, untested_pngs = run_notebook("02_models.ipynb")
    assert "The test split is empty" in untested
    for split in ("train", "val"):
        assert f"{split}: {summary['gifs_per_split'][split]} GIFs" in untested
    assert "test:" not in untested
    assert untested_pngs == 3
