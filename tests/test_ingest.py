"""Ingest on real files: dedup by content, quarantine with sidecars, nothing lost, dry runs."""

from __future__ import annotations

import json
import shutil

import pytest

from giflab.db import open_db
from giflab.ingest import register_folder, scan_gif_files, sha256_file
from tests.conftest import bad_corpus_files, good_corpus_gifs

GOOD = good_corpus_gifs()[:6]


@pytest.fixture
def raw(tmp_path):
    raw = tmp_path / "raw"
    (raw / "nested" / "deeper").mkdir(parents=True)
    for i, p in enumerate(GOOD):
        shutil.copy(p, (raw if i % 2 else raw / "nested" / "deeper") / p.name)
    for p in bad_corpus_files():
        shutil.copy(p, raw / p.name)
    return raw


def _register(tmp_path, raw, **kw):
    with open_db(tmp_path / "giflab.db") as conn:
        report = register_folder(conn, raw, tmp_path / "bad", **kw)
        files = conn.execute("SELECT rel_path, sha256 FROM gif_files ORDER BY rel_path").fetchall()
        bad = conn.execute("SELECT orig_path, error_class FROM bad_gifs").fetchall()
    return report, files, bad


def test_good_registered_bad_quarantined_nothing_lost(tmp_path, raw):
    before = {p.name: sha256_file(p) for p in scan_gif_files(raw)}
    report, files, bad = _register(tmp_path, raw, workers=2)
    assert len(report.new_gifs) == len({sha256_file(p) for p in GOOD})
    assert {rel.split("/")[-1] for rel, _ in files} == {p.name for p in GOOD}
    assert any(rel.startswith("nested/deeper/") for rel, _ in files)
    # every bad file moved (not copied, not deleted), with a sidecar naming the reason
    moved = sorted((tmp_path / "bad").glob("*.gif"))
    assert sorted(p.name for p in moved) == sorted(p.name for p in bad_corpus_files())
    for p in moved:
        side = json.loads(p.with_name(p.name + ".json").read_text())
        assert side["sha256"] == before[p.name] == sha256_file(p)
        assert side["error_class"] and side["message"] and side["quarantined_at"]
        assert not (raw / p.name).exists()
    assert len(bad) == len(moved)
    # no good file moved
    assert all((raw / rel).exists() for rel, _ in files)


def test_same_bytes_under_two_names_is_one_gif(tmp_path, raw):
    shutil.copy(GOOD[0], raw / "copy with space.gif")
    report, files, _ = _register(tmp_path, raw)
    sha = sha256_file(GOOD[0])
    names = sorted(rel for rel, s in files if s == sha)
    assert len(names) == 2 and "copy with space.gif" in names
    assert report.new_gifs.count(sha) == 1
    assert len(report.duplicates) == 1


def test_second_pass_reads_nothing_and_finds_nothing_new(tmp_path, raw):
    _register(tmp_path, raw)
    report, _, _ = _register(tmp_path, raw)
    assert report.new_gifs == [] and report.quarantined == []
    assert report.unchanged == len(GOOD)


def test_fail_dir_inside_raw_is_never_ingested_and_clashes_never_overwrite(tmp_path, raw):
    fail = raw / "bad_gifs"
    bad = bad_corpus_files()[0]
    with open_db(tmp_path / "giflab.db") as conn:
        register_folder(conn, raw, fail)
        shutil.copy(bad, raw / bad.name)  # the same bad file arrives again
        report = register_folder(conn, raw, fail)
    assert [q[0].name for q in report.quarantined] == [bad.name]
    copies = sorted(p for p in fail.glob("*.gif") if p.name.split(".")[0] == bad.stem)
    assert len(copies) == 2  # the second got a new name; nothing overwritten
    assert all(p.with_name(p.name + ".json").exists() for p in copies)


def test_bytes_quarantined_before_are_quarantined_again_under_any_name(tmp_path, raw):
    sha = sha256_file(GOOD[0])
    with open_db(tmp_path / "giflab.db") as conn:  # e.g. found bad after registration
        conn.execute(
            "INSERT INTO bad_gifs (sha256, orig_path, quarantined_path, error_class, message,"
            " quarantined_at) VALUES (?, 'x.gif', 'bad/x.gif', 'truncated', 'test', 'now')",
            (sha,),
        )
    shutil.copy(GOOD[0], raw / "renamed.gif")
    report, files, _ = _register(tmp_path, raw)
    kinds = {q[0].name: q[1] for q in report.quarantined}
    assert kinds["renamed.gif"] == "previously_quarantined"
    assert sha not in {s for _, s in files}
    assert not (raw / "renamed.gif").exists()


def test_dry_run_changes_nothing(tmp_path, raw):
    listing = sorted(p.relative_to(raw) for p in raw.rglob("*"))
    report, files, bad = _register(tmp_path, raw, dry_run=True)
    assert len(report.quarantined) == len(bad_corpus_files())
    assert all(dest is None for *_, dest in report.quarantined)
    assert files == [] and bad == []
    assert sorted(p.relative_to(raw) for p in raw.rglob("*")) == listing
    assert not (tmp_path / "bad").exists()


def test_every_good_corpus_gif_is_registered_and_none_is_moved(tmp_path):
    raw = tmp_path / "raw"
    raw.mkdir()
    good = good_corpus_gifs()
    for p in good:
        shutil.copy(p, raw / p.name)
    report, files, bad = _register(tmp_path, raw, workers=2)
    assert report.quarantined == [] and bad == []
    assert sorted(rel for rel, _ in files) == sorted(p.name for p in good)
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name for p in good)
    assert len(report.new_gifs) == len({sha256_file(p) for p in good})


def test_a_file_still_being_written_is_refused_not_quarantined(tmp_path, monkeypatch):
    """A GIF that grows while ingest reads it (copied into raw/ under a running sensor) was
    judged on its first bytes and moved to bad_gifs as truncated. Its size and mtime change
    during the check, so it is refused (left in place, looked at again) and the next pass,
    once the copy is done, registers it."""
    import giflab.ingest as ingest

    source = max(good_corpus_gifs(), key=lambda p: p.stat().st_size)
    data = source.read_bytes()
    raw = tmp_path / "raw"
    raw.mkdir()
    target = raw / source.name
    target.write_bytes(data[: len(data) // 2])
    real_validate = ingest.validate_gif

    def validate_while_the_copy_finishes(path, limits):
        try:
            return real_validate(path, limits)
        finally:
            target.write_bytes(data)  # the rest of the copy lands meanwhile

    monkeypatch.setattr(ingest, "validate_gif", validate_while_the_copy_finishes)
    with open_db(tmp_path / "giflab.db") as conn:
        first = register_folder(conn, raw, tmp_path / "bad")
        assert first.quarantined == [] and first.registered == []
        assert [(p.name, why) for p, why in first.refused] == [
            (
                target.name,
                "changed while it was being read (still being written?); checked again next run",
            )
        ]
        assert target.read_bytes() == data and not (tmp_path / "bad").exists()
        monkeypatch.setattr(ingest, "validate_gif", real_validate)
        second = register_folder(conn, raw, tmp_path / "bad")
    assert [p.name for p in second.registered] == [target.name] and second.quarantined == []
