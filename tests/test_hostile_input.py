"""Hostile input, all of it: every bad file quarantined or refused with a reason, nothing else hurt."""

import json
import os
import shutil
import sqlite3
import sys

import pytest

from giflab.db import open_db
from giflab.ingest import register_folder
from tests.conftest import bad_corpus_files, good_corpus_gifs
from tests.hostile import make_filesystem_traps, make_hostile_set, make_tricky_good_set, pixel_flips
from tests.test_cli import giflab

POSIX = os.name == "posix"


@pytest.fixture
def raw(tmp_path):
    raw = tmp_path / "raw"
    hostile = make_hostile_set(raw / "hostile")
    tricky = make_tricky_good_set(raw / "tricky")
    traps = make_filesystem_traps(raw / "traps") if POSIX else {}
    for p in bad_corpus_files():
        shutil.copy(p, raw / "hostile" / p.name)
        hostile[p.name] = "corpus bad/ file"
    good = sorted(good_corpus_gifs(), key=lambda p: p.stat().st_size)[:3]
    for p in good:
        shutil.copy(p, raw / p.name)
    return raw, hostile, tricky, traps, good


def test_every_hostile_file_is_quarantined_with_a_reason(raw, tmp_path):
    raw, hostile, tricky, traps, good = raw
    fail = tmp_path / "bad"
    with open_db(tmp_path / "giflab.db") as conn:
        report = register_folder(conn, raw, fail, workers=2)
        registered = {r[0] for r in conn.execute("SELECT rel_path FROM gif_files")}
        bad_rows = conn.execute("SELECT orig_path, error_class, message FROM bad_gifs").fetchall()

    quarantined = {p.name: (kind, reason) for p, kind, reason, _ in report.quarantined}
    assert set(quarantined) == set(hostile), set(hostile) ^ set(quarantined)
    for name, (kind, reason) in quarantined.items():
        assert kind and reason, name
        assert not (raw / "hostile" / name).exists()  # moved, not copied
        sidecar = json.loads((fail / f"{name}.json").read_text())
        assert sidecar["error_class"] == kind and sidecar["message"] == reason
        assert (fail / name).is_file()  # never deleted
    assert len(bad_rows) == len(hostile)

    expected_good = {p.name for p in good} | {f"tricky/{n}" for n in tricky}
    if POSIX and os.geteuid() == 0:  # root reads a mode-000 file: it is a fine GIF then
        expected_good.add("traps/unreadable.gif")
    assert registered == expected_good
    for p in good:
        assert (raw / p.name).is_file()  # no good file moved

    if POSIX:
        refused = {p.relative_to(raw).as_posix(): why for p, why in report.refused}
        assert set(refused) >= {"traps/loop.gif", "traps/dangling.gif", "traps/fifo.gif"}
        assert "symbolic links" in refused["traps/loop.gif"]
        assert refused["traps/fifo.gif"] == "not a regular file"
        assert os.path.islink(raw / "traps" / "loop.gif")  # refused entries stay where they are
        assert (raw / "traps" / "dir.gif" / "inside.txt").is_file()


def test_pixel_flips_are_either_valid_gifs_or_quarantined(tmp_path):
    flips = pixel_flips(tmp_path / "raw")
    with open_db(tmp_path / "giflab.db") as conn:
        report = register_folder(conn, tmp_path / "raw", tmp_path / "bad")
    bad = {p for p, *_ in report.quarantined}
    assert len(report.registered) + len(bad) == len(flips)
    for p in flips:
        assert p.exists() != (p in bad)


def test_the_whole_pipeline_survives_a_hostile_folder(raw, tmp_path):
    raw, hostile, tricky, traps, good = raw
    data = tmp_path / "data"
    out = giflab("run", str(raw), "-j", "2", "--no-progress", data_dir=data)
    for name in hostile:
        assert f"{name}: " in out.stderr  # one line per bad file, naming it and why
    if POSIX:
        assert "refused: " in out.stderr and "loop.gif" in out.stderr
    stats = json.loads(giflab("stats", "--json", data_dir=data).stdout)
    n_good = len(good) + len(tricky) + int(POSIX and os.geteuid() == 0)
    assert stats["gifs"] == stats["metadata"] == stats["features"] == n_good
    assert stats["bad_gifs"] == len(hostile)
    assert stats["renders"] == {"gifsicle": n_good}
    with sqlite3.connect(data / "giflab.db") as conn:
        frames = dict(conn.execute("SELECT orig_filename, n_frames FROM gif_metadata"))
    assert frames["ten-thousand-1x1.gif"] == 10_000
    again = giflab("run", str(raw), "--no-progress", data_dir=data)
    assert "0 asset partitions to materialise" in again.stdout


@pytest.mark.skipif(sys.platform == "win32", reason="no FIFOs")
def test_fifo_never_blocks_the_scan(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    os.mkfifo(raw / "pipe.gif")
    with open_db(tmp_path / "giflab.db") as conn:
        report = register_folder(conn, raw, tmp_path / "bad")
    assert [p.name for p, _ in report.refused] == ["pipe.gif"]
