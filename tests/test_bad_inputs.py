"""Bad inputs to every command: each is refused with a non-zero exit and exactly one line on stderr that names
the option or file at fault, without a traceback, and leaves every input and earlier output byte-identical.

The commands run in-process (``prunekit.cli.main.main``) against one shared folder of tiny checkpoints, a
NetAdapt run, damaged copies of them, bad data sets and bad YAML files; every file under it is hashed before
and after each case. A few cases run in a real subprocess too.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch.utils.cpp_extension  # noqa: F401  (its one-time "no CUDA" log line must not land in a case's stderr)
import yaml

from prunekit.cli.main import main
from tests.conftest import write_json_dataset

QUIET = ["--quiet"]


def _train(out: Path, *args: str) -> None:
    assert main(["train", "--epochs", "0.3", "--out", str(out), *QUIET, *args]) == 0


def _damaged(world: Path, name: str, **files: bytes | str | None) -> None:
    """A copy of the lenet checkpoint with some files replaced (None: removed)."""
    shutil.copytree(world / "lenet", world / name)
    for file, content in files.items():
        path = world / name / file
        if content is None:
            path.unlink()
        else:
            path.write_bytes(content if isinstance(content, bytes) else content.encode())


def _edit_json(path: Path, change) -> None:
    doc = json.loads(path.read_text())
    change(doc)
    path.write_text(json.dumps(doc))


def _json_data(folder: Path, shape=(1, 8, 8), classes=3, edit=None) -> None:
    write_json_dataset(folder, n_train=40, n_test=20, shape=shape, classes=classes)
    if edit:
        _edit_json(folder / "train.json", edit)


@pytest.fixture(scope="session")
def world(tmp_path_factory):
    """Checkpoints, a NetAdapt run, damaged copies, bad data and bad config files, built once."""
    w = tmp_path_factory.mktemp("world")
    _train(w / "lenet", "--model", "lenet", "--dataset", "digits")
    _json_data(w / "data-6x6", shape=(1, 6, 6))
    _train(w / "hw-6x6", "--model", "helloworld", "--dataset", "json", "--data-dir", str(w / "data-6x6"),
           "--val-size", "5")
    assert main(["netadapt", "--checkpoint", str(w / "lenet"), "--work-dir", str(w / "na"), "--budget-ratio", "0.85",
                 "--short-term-iters", "2", "--min-channels-step", "2", "--init-reduction-ratio", "0.1",
                 "--max-iters", "2", *QUIET]) in (0, 3)
    weights = (w / "lenet" / "model.safetensors").read_bytes()
    for name, files in {
        "ck-garbage": {"model.safetensors": b"\xff" * 100},
        "ck-truncated": {"model.safetensors": weights[: len(weights) // 2]},
        "ck-json": {"model.json": "{not json"},
        "ck-metrics": {"metrics.json": "{"},
        "ck-wrong-weights": {"model.safetensors": (w / "hw-6x6" / "model.safetensors").read_bytes()},
    }.items():
        _damaged(w, name, **files)
    _damaged(w, "ck-noshape")
    _edit_json(w / "ck-noshape" / "model.json", lambda d: d.pop("input_shape"))
    _damaged(w, "ck-huge")  # a description asking for a model no memory holds
    _edit_json(w / "ck-huge" / "model.json", lambda d: d["model"].update(num_classes=10**12))
    _damaged(w, "ck-missing-bias")
    from safetensors.torch import load_file, save_file
    tensors = load_file(w / "ck-missing-bias" / "model.safetensors")
    tensors.pop("0.bias")
    save_file(tensors, w / "ck-missing-bias" / "model.safetensors")
    _damaged(w, "ck-meta")
    _edit_json(w / "ck-meta" / "model.json", lambda d: d["meta"]["data"].update(dataset=5))
    (w / "empty").mkdir()
    (w / "notes.txt").write_text("not a checkpoint\n")
    (w / "project").mkdir()
    (w / "project" / "train.py").write_text("print('my own work')\n")
    (w / "project" / "weights.bin").write_bytes(b"\x00\x01" * 64)
    shutil.copytree(w / "na", w / "na-config")
    _edit_json(w / "na-config" / "config.json", lambda d: d.pop("netadapt"))
    shutil.copytree(w / "na", w / "na-history")
    lines = (w / "na-history" / "history.jsonl").read_text().splitlines()
    first = json.loads(lines[0])
    first["resource"] = "a lot"
    (w / "na-history" / "history.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    _json_data(w / "data-nan", classes=10, edit=lambda d: d["data"][3].__setitem__(5, float("nan")))
    _json_data(w / "data-label15", classes=10, edit=lambda d: d["label"].__setitem__(0, 15))
    _json_data(w / "data-label-huge", classes=10, edit=lambda d: d["label"].__setitem__(0, 99999999999))
    _json_data(w / "data-label-name", classes=3, edit=lambda d: d["label"].__setitem__(1, "cat"))
    _json_data(w / "data-label2.5", classes=10, edit=lambda d: d["label"].__setitem__(0, 2.5))
    _json_data(w / "data-3class")
    _json_data(w / "data-12class", classes=12)
    _json_data(w / "data-rgb", shape=(3, 8, 8), classes=10)
    (w / "lut-corrupt.json").write_text('{"format": "prunekit-latency-table", "entries": ')
    (w / "lut-foreign.json").write_text(json.dumps({"format": "something else", "entries": {}}))
    configs = {
        "syntax.yaml": "epochs: [1, 2\n",
        "quoted-no.yaml": yaml.safe_dump({"augment": "no"}),
        "unknown.yaml": "epochz: 3\n",
        "list.yaml": "- epochs\n- 3\n",
        "epochs-word.yaml": "epochs: five\n",
        "tinynn-type.yaml": "budget_type: 5\n",
        "device.yaml": "device: tpu\n",
        "epochs-nan.yaml": "epochs: .nan\n",
        "model-list.yaml": "model: [1, 2]\n",
    }
    for name, text in configs.items():
        (w / name).write_text(text)
    return w


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
            for p in sorted(folder.rglob("*"))}


# (command line with {w} for the world folder, text the one error line must contain)
CASES = {
    # train
    "train-unknown-model": ("train --model no_such_net --out {w}/o", "no_such_net"),
    "train-epochs-0": ("train --model lenet --epochs 0 --out {w}/o", "--epochs"),
    "train-epochs-word": ("train --model lenet --epochs five --out {w}/o", "--epochs"),
    "train-batch-0": ("train --model lenet --batch-size 0 --out {w}/o", "--batch-size"),
    "train-lr-negative": ("train --model lenet --lr -1 --out {w}/o", "--lr"),
    "train-device": ("train --model lenet --device tpu --out {w}/o", "--device"),
    "train-image-size-0": ("train --model lenet --image-size 0 --out {w}/o", "--image-size"),
    "train-val-size": ("train --model lenet --val-size -1 --out {w}/o", "--val-size"),
    "train-lr-nan": ("train --model lenet --lr nan --out {w}/o", "--lr must be a finite number"),
    "train-epochs-inf": ("train --model lenet --epochs inf --out {w}/o", "--epochs must be a finite number"),
    "train-yaml-nan": ("train --config {w}/epochs-nan.yaml --model lenet --out {w}/o",
                       "epochs-nan.yaml: key 'epochs' must be a finite number"),
    "train-out-exists": ("train --model lenet --out {w}/lenet", "--out"),
    "train-out-project": ("train --model lenet --out {w}/project", "--out"),
    "train-out-file": ("train --model lenet --out {w}/notes.txt", "--out"),
    "train-model-arg-unknown": ("train --model lenet --model-arg foo=1 --out {w}/o", "foo"),
    "train-model-arg-form": ("train --model lenet --model-arg foo --out {w}/o", "--model-arg"),
    "train-model-arg-weights": ("train --model lenet --model-arg weights=\"DEFAULT\" --out {w}/o", "--weights FILE"),
    "train-unknown-dataset": ("train --model lenet --dataset no_such_data --out {w}/o", "--dataset"),
    "train-data-missing": ("train --model lenet --dataset json --data-dir {w}/nowhere --out {w}/o", "nowhere"),
    "train-data-nan": ("train --model lenet --dataset json --data-dir {w}/data-nan --out {w}/o", "train.json"),
    "train-label-15": ("train --model lenet --dataset json --data-dir {w}/data-label15 --out {w}/o", "label 15"),
    "train-label-huge": ("train --model lenet --dataset json --data-dir {w}/data-label-huge --out {w}/o",
                         "label 99999999999"),
    "train-label-name": ("train --model lenet --dataset json --data-dir {w}/data-label-name --out {w}/o",
                         "label 1 is 'cat'"),
    "train-label-2.5": ("train --model lenet --dataset json --data-dir {w}/data-label2.5 --out {w}/o", "label 2.5"),
    "train-yaml-syntax": ("train --config {w}/syntax.yaml --model lenet --out {w}/o", "syntax.yaml"),
    "train-yaml-quoted-no": ("train --config {w}/quoted-no.yaml --model lenet --out {w}/o",
                             "quoted-no.yaml: key 'augment'"),
    "train-yaml-unknown-key": ("train --config {w}/unknown.yaml --model lenet --out {w}/o", "'epochz'"),
    "train-yaml-list": ("train --config {w}/list.yaml --model lenet --out {w}/o", "list.yaml"),
    "train-yaml-word": ("train --config {w}/epochs-word.yaml --model lenet --out {w}/o", "'epochs'"),
    "train-yaml-device": ("train --config {w}/device.yaml --model lenet --out {w}/o", "--device"),
    "train-yaml-model-list": ("run --config {w}/model-list.yaml --step 1 --out {w}/o", "model-list.yaml: key 'model'"),
    "train-yaml-missing": ("train --config {w}/nowhere.yaml --model lenet --out {w}/o", "nowhere.yaml"),
    # eval
    "eval-missing": ("eval --checkpoint {w}/nowhere", "nowhere"),
    "eval-file": ("eval --checkpoint {w}/notes.txt", "notes.txt"),
    "eval-empty-folder": ("eval --checkpoint {w}/empty", "empty"),
    "eval-weights-garbage": ("eval --checkpoint {w}/ck-garbage", "ck-garbage/model.safetensors"),
    "eval-weights-truncated": ("eval --checkpoint {w}/ck-truncated", "ck-truncated/model.safetensors"),
    "eval-weights-other-model": ("eval --checkpoint {w}/ck-wrong-weights", "ck-wrong-weights"),
    "eval-model-json": ("eval --checkpoint {w}/ck-json", "ck-json/model.json"),
    "eval-model-json-huge": ("eval --checkpoint {w}/ck-huge", "ck-huge/model.json describes a lenet model "),
    "eval-weights-missing-key": ("eval --checkpoint {w}/ck-missing-bias", 'missing key "0.bias"'),
    "eval-no-input-shape": ("eval --checkpoint {w}/ck-noshape", "input_shape"),
    "eval-metrics-json": ("eval --checkpoint {w}/ck-metrics", "ck-metrics/metrics.json"),
    "eval-meta-data": ("eval --checkpoint {w}/ck-meta", "ck-meta/model.json"),
    "eval-image-size": ("eval --checkpoint {w}/lenet --image-size 16", "--image-size 8"),
    "eval-classes": ("eval --checkpoint {w}/lenet --dataset json --data-dir {w}/data-12class", "12 classes"),
    "eval-channels": ("eval --checkpoint {w}/lenet --dataset json --data-dir {w}/data-rgb", "3-channel"),
    "eval-device": ("eval --checkpoint {w}/lenet --device tpu", "--device"),
    # prune
    "prune-ratio": ("prune --checkpoint {w}/lenet --ratio 1.5 --out {w}/o", "ratio"),
    "prune-budget-ratio-1": ("prune --checkpoint {w}/lenet --budget-ratio 1 --out {w}/o", "budget_ratio"),
    "prune-budget-above": ("prune --checkpoint {w}/lenet --budget 1e12 --out {w}/o", "not below"),
    "prune-budget-unreachable": ("prune --checkpoint {w}/lenet --budget 5 --out {w}/o", "below what"),
    "prune-bn-scale-no-bn": ("prune --checkpoint {w}/lenet --criterion bn_scale --ratio 0.5 --out {w}/o",
                             "no BatchNorm"),
    "prune-no-amount": ("prune --checkpoint {w}/lenet --out {w}/o", "ratio"),
    "prune-budget-nan": ("prune --checkpoint {w}/lenet --budget nan --out {w}/o", "--budget must be a finite number"),
    "prune-gradient-batches-0": ("prune --checkpoint {w}/lenet --criterion taylor --ratio 0.5 --gradient-batches 0 "
                                 "--out {w}/o", "--gradient-batches"),
    "prune-latency": ("prune --checkpoint {w}/lenet --resource latency --budget-ratio 0.5 --out {w}/o", "NetAdapt"),
    "prune-criterion": ("prune --checkpoint {w}/lenet --criterion nope --ratio 0.5 --out {w}/o", "--criterion"),
    "prune-onto-input": ("prune --checkpoint {w}/lenet --ratio 0.5 --out {w}/lenet", "--out"),
    "prune-out-exists": ("prune --checkpoint {w}/lenet --ratio 0.5 --out {w}/hw-6x6", "--out"),
    "prune-data-fit": ("prune --checkpoint {w}/lenet --ratio 0.5 --image-size 16 --out {w}/o", "--image-size 8"),
    "prune-weights": ("prune --checkpoint {w}/ck-garbage --ratio 0.5 --out {w}/o", "model.safetensors"),
    # finetune
    "finetune-teacher-missing": ("finetune --checkpoint {w}/lenet --teacher {w}/nowhere --out {w}/o", "nowhere"),
    "finetune-teacher-other-data": ("finetune --checkpoint {w}/lenet --teacher {w}/hw-6x6 --out {w}/o", "--teacher"),
    "finetune-epochs-0": ("finetune --checkpoint {w}/lenet --epochs 0 --out {w}/o", "--epochs"),
    "finetune-out-exists": ("finetune --checkpoint {w}/lenet --out {w}/hw-6x6", "--out"),
    "finetune-data-fit": ("finetune --checkpoint {w}/lenet --dataset json --data-dir {w}/data-rgb --out {w}/o",
                          "3-channel"),
    "finetune-model-json": ("finetune --checkpoint {w}/ck-json --out {w}/o", "model.json"),
    # netadapt
    "netadapt-no-work-dir": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5", "--work-dir"),
    "netadapt-existing-run": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --work-dir {w}/na", "--resume"),
    "netadapt-other-files": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --work-dir {w}/project",
                             "--work-dir"),
    "netadapt-budget-ratio": ("netadapt --checkpoint {w}/lenet --budget-ratio 1.5 --work-dir {w}/w", "--budget-ratio"),
    "netadapt-budget-nan": ("netadapt --checkpoint {w}/lenet --budget nan --work-dir {w}/w",
                            "--budget must be a finite number"),
    "netadapt-save-interval": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --save-interval -1 --work-dir {w}/w",
                               "--save-interval"),
    "netadapt-budget-above": ("netadapt --checkpoint {w}/lenet --budget 1e12 --work-dir {w}/w", "not below"),
    "netadapt-two-budgets": ("netadapt --checkpoint {w}/lenet --budget 5 --budget-ratio 0.5 --work-dir {w}/w",
                             "--budget"),
    "netadapt-unreachable": ("netadapt --checkpoint {w}/lenet --budget 5 --work-dir {w}/w", "cannot be reached"),
    "netadapt-step-0": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --min-channels-step 0 --work-dir {w}/w",
                        "--min-channels-step"),
    "netadapt-gradient-criterion": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --criterion taylor "
                                    "--work-dir {w}/w", "taylor"),
    "netadapt-bn-scale-no-bn": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --criterion bn_scale --work-dir {w}/w",
                                "no BatchNorm layer"),
    "netadapt-device": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --device tpu --work-dir {w}/w",
                        "--device"),
    "netadapt-data-fit": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --image-size 16 --work-dir {w}/w",
                          "--image-size 8"),
    "netadapt-resume-other-data": ("netadapt --work-dir {w}/na --resume --dataset json --data-dir {w}/data-3class",
                                   "--resume"),
    "netadapt-resume-config": ("netadapt --work-dir {w}/na-config --resume", "na-config/config.json"),
    "netadapt-resume-history": ("netadapt --work-dir {w}/na-history --resume", "na-history/history.jsonl"),
    "netadapt-lut-corrupt": ("netadapt --checkpoint {w}/lenet --resource latency --budget-ratio 0.5 --lut "
                             "{w}/lut-corrupt.json --work-dir {w}/w", "lut-corrupt.json"),
    "netadapt-lut-foreign": ("netadapt --checkpoint {w}/lenet --resource latency --budget-ratio 0.5 --lut "
                             "{w}/lut-foreign.json --work-dir {w}/w", "lut-foreign.json"),
    "netadapt-latency-batch": ("netadapt --checkpoint {w}/lenet --resource latency --budget-ratio 0.5 "
                               "--latency-batch 0 --work-dir {w}/w", "--latency-batch"),
    "netadapt-platform": ("netadapt --checkpoint {w}/lenet --resource latency --budget-ratio 0.5 --platform tpu "
                          "--work-dir {w}/w", "tpu"),
    "netadapt-latency-options-without-latency": ("netadapt --checkpoint {w}/lenet --budget-ratio 0.5 --threads 2 "
                                                 "--work-dir {w}/w", "--resource latency"),
    # run
    "run-step": ("run --model lenet --step 4 --out {w}/r", "--step"),
    "run-step-2-first": ("run --step 2 --method l1 --percent 0.5 --out {w}/r", "run it first"),
    "run-step-input-not-made": ("run --model lenet --method l1 --percent 0.3 --step 13 --out {w}/r", "--step 123"),
    "run-percent": ("run --model lenet --method l1 --percent 1.5 --out {w}/r", "--percent"),
    "run-no-model": ("run --step 1 --out {w}/r", "--model"),
    "run-work-dir-project": ("run --model lenet --method netadapt --percent 0.5 --work-dir {w}/project --out {w}/r",
                             "--work-dir"),
    "run-work-dir-run": ("run --model lenet --method netadapt --percent 0.5 --work-dir {w}/na --out {w}/r",
                         "--resume"),
    "run-teacher-missing": ("run --model lenet --method l1 --percent 0.5 --teacher {w}/nowhere --out {w}/r",
                            "nowhere"),
    "run-yaml-tinynn-type": ("run --config {w}/tinynn-type.yaml --model lenet --method netadapt --percent 0.5 "
                             "--out {w}/r", "budget_type"),
    # pick
    "pick-iteration": ("pick {w}/na --iter 99 --out {w}/o", "--iter 99"),
    "pick-into-the-run": ("pick {w}/na --iter 0 --out {w}/na/iterations/001", "--out"),
    "pick-out-exists": ("pick {w}/na --iter 0 --out {w}/lenet", "--out"),
    "pick-not-a-run": ("pick {w}/lenet --iter 0 --out {w}/o", "lenet"),
    "pick-resource": ("pick {w}/na --resource 1 --out {w}/o", "--resource"),
    "pick-damaged-history": ("pick {w}/na-history --iter 0 --out {w}/o", "history.jsonl"),
    # export
    "export-out-exists": ("export --checkpoint {w}/lenet --format onnx --out {w}/notes.txt", "--out"),
    "export-over-weights": ("export --checkpoint {w}/lenet --format onnx --out {w}/lenet/model.safetensors", "--out"),
    "export-out-folder": ("export --checkpoint {w}/lenet --format onnx --out {w}/empty", "--out"),
    "export-under-a-file": ("export --checkpoint {w}/lenet --format onnx --out {w}/notes.txt/m.onnx", "notes.txt is a file"),
    "export-inside-checkpoint": ("export --checkpoint {w}/lenet --format onnx --out {w}/lenet/sub/m.onnx",
                                 "inside the checkpoint folder"),
    "history-plot-exists": ("history {w}/na --plot {w}/lenet/model.safetensors", "--plot"),
    "history-plot-folder": ("history {w}/na --plot {w}/empty", "is a folder"),
    "config-output-exists": ("config --output {w}/lenet/model.json", "--output"),
    "prune-num-classes-0": ("prune --model lenet --input-shape 1 8 8 --num-classes 0 --ratio 0.3 --out {w}/o",
                            "--num-classes"),
    "prune-input-shape-wrong": ("prune --model lenet --input-shape 3 16 --ratio 0.3 --out {w}/o", "--input-shape"),
    "prune-input-shape-and-dataset": ("prune --model lenet --input-shape 1 8 8 --dataset digits --ratio 0.3 "
                                      "--out {w}/o", "not both"),
    "export-format": ("export --checkpoint {w}/lenet --format tflite --out {w}/m.tflite", "--format"),
    "export-batch-0": ("export --checkpoint {w}/lenet --format onnx --batch-size 0 --out {w}/m.onnx", "--batch-size"),
    "export-weights": ("export --checkpoint {w}/ck-truncated --format onnx --out {w}/m.onnx", "model.safetensors"),
    # history
    "history-missing": ("history {w}/nowhere", "nowhere"),
    "history-checkpoint": ("history {w}/lenet", "lenet"),
    "history-file": ("history {w}/notes.txt", "notes.txt"),
    "history-config": ("history {w}/na-config", "na-config/config.json"),
    "history-edited": ("history {w}/na-history", "na-history/history.jsonl"),
    # latency
    "latency-platform": ("latency --checkpoint {w}/lenet --platform tpu", "tpu"),
    "latency-batch-0": ("latency --checkpoint {w}/lenet --batch-size 0", "--batch-size"),
    "latency-threads-0": ("latency --checkpoint {w}/lenet --threads 0", "--threads"),
    "latency-weights": ("latency --checkpoint {w}/ck-garbage", "model.safetensors"),
    "run-finetune-epochs-nan": ("run --model lenet --method l1 --percent 0.3 --finetune-epochs nan --out {w}/o",
                                "--finetune-epochs must be a finite number"),
    "quantize-data-does-not-fit": ("quantize --checkpoint {w}/hw-6x6 --dataset digits --out {w}/o", "hw-6x6"),
    "run-step2-budget-before-training": ("run --model lenet --method l1 --budget-ratio 1.5 --epochs 0.2 --out {w}/o",
                                         "budget_ratio must be in (0, 1)"),
    "run-netadapt-budget-before-training": ("run --model lenet --method netadapt --budget-ratio 1.5 --epochs 0.2 "
                                            "--out {w}/o", "--budget-ratio must be in (0, 1)"),
    # a resumed run keeps what its history measures, and the checkpoint it adapts
    "netadapt-resume-resource": ("netadapt --resume --work-dir {w}/na --resource params", "--resource"),
    "netadapt-resume-other-checkpoint": ("netadapt --resume --work-dir {w}/na --checkpoint {w}/hw-6x6", "--checkpoint"),
    "netadapt-out-is-checkpoint": ("netadapt --checkpoint {w}/lenet --work-dir {w}/na-new --budget-ratio 0.5 --out "
                                   "{w}/lenet --overwrite", "never overwritten"),
    # lut
    "lut-action": ("lut rebuild --checkpoint {w}/lenet", "rebuild"),
    "lut-build-no-out": ("lut build --checkpoint {w}/lenet", "--out"),
    "lut-build-corrupt-out": ("lut build --checkpoint {w}/lenet --out {w}/lut-corrupt.json", "lut-corrupt.json"),
    "lut-build-step-0": ("lut build --checkpoint {w}/lenet --min-channels-step 0 --out {w}/t.json",
                         "--min-channels-step"),
    "lut-build-out-folder": ("lut build --checkpoint {w}/lenet --out {w}/empty", "is a folder"),
    "netadapt-lut-folder": ("netadapt --checkpoint {w}/lenet --resource latency --budget-ratio 0.5 --lut {w}/empty "
                            "--work-dir {w}/w", "--lut"),
    "lut-check-no-lut": ("lut check --checkpoint {w}/lenet", "--lut"),
    "lut-check-missing": ("lut check --checkpoint {w}/lenet --lut {w}/nowhere.json", "nowhere.json"),
    "lut-check-foreign": ("lut check --checkpoint {w}/lenet --lut {w}/lut-foreign.json", "lut-foreign.json"),
}


def _argv(template: str, world: Path) -> list[str]:
    return [part.replace("{w}", str(world)) for part in template.split()]


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_is_refused_cleanly(name, world, capsys):
    template, fault = CASES[name]
    argv = _argv(template, world)
    before = _snapshot(world)
    capsys.readouterr()
    code = main(argv + QUIET)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code != 0, f"{name}: accepted"
    assert len(lines) == 1, f"{name}: stderr is not one line:\n{err}"
    assert "Traceback" not in err
    assert lines[0].startswith("prunekit: error: ") and "run with --debug" not in lines[0], lines[0]
    assert fault in lines[0], f"{name}: {lines[0]!r} does not name {fault!r}"
    assert _snapshot(world) == before, f"{name}: files changed"


def test_there_are_enough_cases():
    assert len(CASES) >= 60
    assert {t.split()[0] for t, _ in CASES.values()} >= {"train", "eval", "prune", "finetune", "netadapt", "run",
                                                         "pick", "export", "history", "latency", "lut"}


@pytest.mark.parametrize("name", ["eval-weights-garbage", "netadapt-resume-history", "train-yaml-quoted-no"])
def test_bad_input_in_a_real_process(name, world):
    template, fault = CASES[name]
    before = _snapshot(world)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parents[1] / "src"),
                                                        os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "prunekit.cli.main", *_argv(template, world), *QUIET],
                            capture_output=True, text=True, env=env, timeout=300)
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2
    assert len(lines) == 1 and fault in lines[0] and "Traceback" not in result.stderr, result.stderr
    assert _snapshot(world) == before
