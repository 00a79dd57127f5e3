"""bench/peers.py never replaces a report or plot that another cache wrote (a committed one) unless told to."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
DEPENDENCIES = ("torch", "torchvision", "torch_pruning", "transformers", "timm", "ultralytics", "onnx", "onnxruntime",
                "openvino", "ray", "safetensors", "tqdm", "matplotlib", "yaml", "numpy", "sklearn", "pytest")


@pytest.fixture()
def bench(monkeypatch):
    """bench/ on sys.path for this test only (the scripts import each other as top-level modules)."""
    monkeypatch.syspath_prepend(str(BENCH))
    return importlib.import_module


def test_no_bench_script_shadows_a_dependency() -> None:
    # every bench script puts bench/ first on sys.path: a script named like a package would be imported instead of it
    assert not {p.stem for p in BENCH.glob("*.py")} & set(DEPENDENCIES)


def test_a_file_this_cache_did_not_write_is_refused_in_one_line(bench, tmp_path: Path) -> None:
    refuse_foreign_outputs = bench("common").refuse_foreign_outputs
    cache, report = tmp_path / "cache", tmp_path / "peers-full.md"
    cache.mkdir()
    report.write_text("cells from another machine\n")
    with pytest.raises(SystemExit) as stop:
        refuse_foreign_outputs(cache, [report, tmp_path / "absent.png"], overwrite=False)
    message = str(stop.value)
    assert str(report) in message and "--overwrite" in message and "\n" not in message
    refuse_foreign_outputs(cache, [report], overwrite=True)  # asked for: no refusal


def test_what_the_cache_wrote_may_be_replaced_until_someone_edits_it(bench, tmp_path: Path) -> None:
    common = bench("common")
    foreign_outputs, record_outputs = common.foreign_outputs, common.record_outputs
    cache, report = tmp_path / "cache", tmp_path / "peers-full.md"
    cache.mkdir()
    report.write_text("written from this cache\n")
    record_outputs(cache, [report, tmp_path / "never-written.png"])
    assert foreign_outputs(cache, [report]) == []
    report.write_text("edited by hand\n")
    assert foreign_outputs(cache, [report]) == [report]


def test_peers_stops_before_any_work(bench, tmp_path: Path) -> None:
    peers = bench("peers")

    report = tmp_path / "committed.md"
    report.write_text("the committed report\n")
    with pytest.raises(SystemExit, match="not written from this cache"):
        peers.main(["--profile", "quick", "--report-only", "--no-latency", "--out", str(tmp_path / "cache"),
                    "--report", str(report), "--plots-dir", str(tmp_path / "plots")])
    assert report.read_text() == "the committed report\n"
    assert not (tmp_path / "cache").exists()


def test_peers_replaces_its_own_report(bench, tmp_path: Path) -> None:
    peers = bench("peers")

    report = tmp_path / "mine.md"
    argv = ["--profile", "quick", "--report-only", "--no-latency", "--out", str(tmp_path / "cache"),
            "--report", str(report), "--plots-dir", str(tmp_path / "plots")]
    peers.main(argv)
    assert report.is_file()
    peers.main(argv)  # written from this cache: replaced without --overwrite
    assert report.is_file()


def test_the_report_says_when_netadapt_ran_with_other_options(bench) -> None:
    import json

    from prunekit.algorithms.netadapt import NetAdaptConfig

    netadapt_line = bench("peers_report").netadapt_line
    defaults = NetAdaptConfig().to_dict()
    assert "prunekit's default options" in netadapt_line([(json.dumps(defaults), 3)])
    share = defaults["group_share"]
    changed = json.dumps({**defaults, "group_share": share / 2})
    line = netadapt_line([(json.dumps(defaults), 2), (changed, 1)])
    assert f"not this prunekit's default options** in 1 of 3 searches: group_share {share / 2!r} (default {share!r})" in line


def test_only_what_was_written_becomes_the_caches(bench, tmp_path: Path) -> None:
    peers, common = bench("peers"), bench("common")
    plots = tmp_path / "plots"
    plots.mkdir()
    foreign_plot = plots / "peers-resnet20-digits-quick.png"  # a model this cache has no base for: never plotted
    foreign_plot.write_bytes(b"another cache's plot")
    argv = ["--profile", "quick", "--dataset", "digits", "--report-only", "--no-latency", "--overwrite",
            "--out", str(tmp_path / "cache"), "--report", str(tmp_path / "mine.md"), "--plots-dir", str(plots)]
    peers.main(argv)
    assert foreign_plot.read_bytes() == b"another cache's plot"
    assert common.foreign_outputs(tmp_path / "cache", [foreign_plot, tmp_path / "mine.md"]) == [foreign_plot]
