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
