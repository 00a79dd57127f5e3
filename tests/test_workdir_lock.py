"""One NetAdapt working folder, one process: a run and a resume started beside it would interleave their
iterations in one history, and the second's tidying would delete the first's files being written."""

import subprocess
import sys
import shutil
import textwrap
from pathlib import Path

import pytest

from prunekit.cli.main import main
from prunekit.pipeline.workdir import WorkDir
from tests.conftest import file_hashes as _files

fcntl = pytest.importorskip("fcntl")

Q = ["--quiet"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lock")
    assert main(["train", "--model", "lenet", "--epochs", "0.2", "--out", str(root / "lenet"), *Q]) == 0
    assert main(["netadapt", "--checkpoint", str(root / "lenet"), "--work-dir", str(root / "na"), "--budget-ratio",
                 "0.9", "--short-term-iters", "1", "--min-channels-step", "2", "--max-iters", "1", *Q]) in (0, 3)
    return root


def _held_elsewhere(folder: Path):
    """Another process holding ``folder`` (as a running NetAdapt would) until its stdin closes."""
    code = textwrap.dedent(f"""
        import sys
        from prunekit.pipeline.workdir import WorkDir
        with WorkDir({str(folder)!r}).held():
            print("held", flush=True)
            sys.stdin.read()
    """)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


@pytest.mark.parametrize("extra", [["--resume"], ["--overwrite", "--checkpoint", "{root}/lenet"]])
def test_a_folder_in_use_is_refused_in_one_line_and_left_as_it_was(run, tmp_path, capsys, extra):
    work = tmp_path / "na"
    shutil.copytree(run / "na", work)
    (work / "iterations" / "001" / ".model.json.qwer_123.tmp").write_text("{")  # the other run's file being written
    before = _files(work)
    holder = _held_elsewhere(work)
    try:
        args = [a.replace("{root}", str(run)) for a in extra]
        assert main(["netadapt", "--work-dir", str(work), "--max-iters", "2", *args, *Q]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(work) in err[0] and "in use by another prunekit run" in err[0]
        assert _files(work) == before and sorted(p.name for p in tmp_path.iterdir()) == ["na"]
    finally:
        holder.communicate("")
    # once the other process has ended (however it ended, the lock goes with it), the resume runs
    assert main(["netadapt", "--work-dir", str(work), "--resume", "--max-iters", "2", *Q]) in (0, 3)


def _free_elsewhere(folder: Path) -> bool:
    """Whether another process can claim ``folder`` now."""
    code = f"from prunekit.pipeline.workdir import WorkDir\nWorkDir({str(folder)!r}).claim()"
    return subprocess.run([sys.executable, "-c", code], capture_output=True).returncode == 0


def test_claims_in_one_process_are_counted_and_released(tmp_path):
    outer, inner = WorkDir(tmp_path), WorkDir(tmp_path)
    with outer.held():
        with inner.held():  # the pipeline and NetAdapt hold the same folder in one process
            pass
        assert not _free_elsewhere(tmp_path)  # the outer claim still holds it
    assert _free_elsewhere(tmp_path)


def test_no_command_replaces_a_folder_in_use_even_with_overwrite(run, tmp_path, capsys):
    """--out (or any output) naming a running search's folder is refused: --overwrite replaces finished work only."""
    work = tmp_path / "na"
    shutil.copytree(run / "na", work)
    before = _files(work)
    holder = _held_elsewhere(work)
    try:
        for command in (["netadapt", "--checkpoint", str(run / "lenet"), "--work-dir", str(tmp_path / "other"),
                         "--budget-ratio", "0.9", "--out", str(work)],
                        ["train", "--model", "lenet", "--epochs", "0.1", "--out", str(work)]):
            assert main([*command, "--overwrite", *Q]) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"--out {work} is in use by another prunekit run" in err[0]
        assert _files(work) == before and sorted(p.name for p in tmp_path.iterdir()) == ["na"]
    finally:
        holder.communicate("")


@pytest.mark.parametrize("case", ["out-is-input", "work-dir-holds-input", "out-is-work-dir", "quantize-into-input"])
def test_outputs_never_replace_a_commands_inputs(run, tmp_path, capsys, case):
    box = tmp_path / "box"
    shutil.copytree(run / "lenet", box / "ck")
    ck = box / "ck"
    command = {"out-is-input": ["netadapt", "--checkpoint", str(ck), "--work-dir", str(tmp_path / "w"), "--out", str(ck)],
               "work-dir-holds-input": ["netadapt", "--checkpoint", str(ck), "--work-dir", str(box)],
               "out-is-work-dir": ["netadapt", "--checkpoint", str(ck), "--work-dir", str(tmp_path / "w"),
                                   "--out", str(tmp_path / "w")],
               "quantize-into-input": ["quantize", "--checkpoint", str(ck), "--out", str(box)]}[case]
    before = _files(box)
    budget = ["--budget-ratio", "0.9"] if command[0] == "netadapt" else []
    assert main([*command, *budget, "--overwrite", *Q]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "writing it would replace that input" in err[0]
    assert _files(box) == before and not (tmp_path / "w").exists()
