"""bench/peers.py never replaces a report or plot that another cache wrote (a committed one) unless told to."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))

from common import foreign_outputs, record_outputs, refuse_foreign_outputs  # noqa: E402


def test_a_file_this_cache_did_not_write_is_refused_in_one_line(tmp_path: Path) -> None:
    cache, report = tmp_path / "cache", tmp_path / "peers-full.md"
    cache.mkdir()
    report.write_text("cells from another machine\n")
    with pytest.raises(SystemExit) as stop:
        refuse_foreign_outputs(cache, [report, tmp_path / "absent.png"], overwrite=False)
    message = str(stop.value)
    assert str(report) in message and "--overwrite" in message and "\n" not in message
    refuse_foreign_outputs(cache, [report], overwrite=True)  # asked for: no refusal


def test_what_the_cache_wrote_may_be_replaced_until_someone_edits_it(tmp_path: Path) -> None:
    cache, report = tmp_path / "cache", tmp_path / "peers-full.md"
    cache.mkdir()
    report.write_text("written from this cache\n")
    record_outputs(cache, [report, tmp_path / "never-written.png"])
    assert foreign_outputs(cache, [report]) == []
    report.write_text("edited by hand\n")
    assert foreign_outputs(cache, [report]) == [report]


def test_peers_stops_before_any_work(tmp_path: Path) -> None:
    import peers

    report = tmp_path / "committed.md"
    report.write_text("the committed report\n")
    with pytest.raises(SystemExit, match="not written from this cache"):
        peers.main(["--profile", "quick", "--report-only", "--no-latency", "--out", str(tmp_path / "cache"),
                    "--report", str(report), "--plots-dir", str(tmp_path / "plots")])
    assert report.read_text() == "the committed report\n"
    assert not (tmp_path / "cache" / "results.json").exists()


def test_peers_replaces_its_own_report(tmp_path: Path) -> None:
    import peers

    report = tmp_path / "mine.md"
    argv = ["--profile", "quick", "--report-only", "--no-latency", "--out", str(tmp_path / "cache"),
            "--report", str(report), "--plots-dir", str(tmp_path / "plots")]
    peers.main(argv)
    assert report.is_file()
    peers.main(argv)  # written from this cache: replaced without --overwrite
    assert report.is_file()
