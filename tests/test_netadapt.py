"""NetAdapt: the schedule, the loop on real (tiny) data, resume, errors, zoo models with residual and depthwise groups."""

import json

import pytest
import torch

import prunekit
from prunekit import NetAdapt
from prunekit.algorithms.netadapt import NetAdaptConfig, target_schedule
from prunekit.data import load_dataset
from prunekit.errors import PrunekitError
from prunekit.pipeline.netadapt_step import DataEvaluate, DataFinetune
from prunekit.resources import count

OPTS = dict(short_term_iters=10, min_channels_step=2, init_reduction_ratio=0.08, reduction_decay=0.9, seed=0,
            step_mode="resource")  # the paper's procedure: each iteration's target, met by one cut


def _netadapt(model, data, work_dir, **kw):
    opts = {**OPTS, **kw}
    return NetAdapt(model, data.example_inputs(), finetune=DataFinetune(data, lr=0.01),
                    evaluate=DataEvaluate(data), work_dir=work_dir, progress=False, log=lambda s: None, **opts)


def test_schedule_lowers_the_target_and_lands_on_the_budget():
    assert target_schedule(100, 1, 10, 0.5, 50) == 90
    assert target_schedule(90, 2, 10, 0.5, 50) == 85
    assert target_schedule(52, 3, 10, 0.5, 50) == 50


def test_lenet_to_half_the_macs(lenet, digits, tmp_path):
    result = _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.5).run()
    base = count(lenet, digits.example_inputs()).macs
    history = result.history
    resources = [h["resource"] for h in history]
    assert resources == sorted(resources, reverse=True) and len(set(resources)) == len(resources)
    assert resources[-1] <= 0.5 * base and result.metrics["macs"] <= 0.5 * base
    for h in history:
        assert {"iteration", "target", "resource", "accuracy", "group", "channels", "candidates", "seconds"} <= set(h)
        assert h["resource"] <= h["target"]
        assert all({"group", "resource", "accuracy", "seconds"} <= set(c) for c in h["candidates"])
    lines = (tmp_path / "w" / "history.jsonl").read_text().splitlines()
    assert [json.loads(line)["iteration"] for line in lines] == list(range(1, len(history) + 1))
    metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert {"macs", "params", "val_accuracy"} <= set(metrics)
    assert (tmp_path / "w" / "iterations" / f"{len(history):03d}" / "model.safetensors").exists()
    assert result.metrics["val_accuracy"] > 0.8


def test_resume_ends_with_the_same_choices(lenet, digits, tmp_path):
    full = _netadapt(lenet, digits, tmp_path / "full", budget_ratio=0.6).run().history
    part = _netadapt(lenet, digits, tmp_path / "part", budget_ratio=0.6, max_iters=2).run().history
    assert len(part) == 2
    resumed = _netadapt(lenet, digits, tmp_path / "part", resume=True, max_iters=1000).run().history
    assert [(h["group"], h["resource"]) for h in resumed] == [(h["group"], h["resource"]) for h in full]
    assert [h["accuracy"] for h in resumed] == [h["accuracy"] for h in full]
    log = (tmp_path / "part" / "log.txt").read_text().splitlines()  # what the run printed, kept in its folder
    assert sum("iter " in line for line in log) == len(full) and sum("resuming" in line for line in log) == 1
    assert all(line.startswith("[20") for line in log)


def test_settings_refused_at_construction_leave_no_temporary_folder(lenet, digits, tmp_path, monkeypatch):
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    with pytest.raises(PrunekitError):
        NetAdapt(lenet, digits.example_inputs(), finetune=lambda m, i: None, evaluate=lambda m: 0.0,
                 budget_ratio=0.5, resource="watts", progress=False, log=lambda s: None)
    with pytest.raises(PrunekitError, match="--budget-ratio"):
        NetAdapt(lenet, digits.example_inputs(), finetune=lambda m, i: None, evaluate=lambda m: 0.0,
                 budget_ratio=5, progress=False, log=lambda s: None)
    assert list(tmp_path.iterdir()) == []


def test_a_target_no_single_group_can_reach_stops_the_run_and_keeps_it_resumable(lenet, digits, tmp_path):
    stuck = _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.3, init_reduction_ratio=0.65,
                      short_term_iters=0).run()
    assert not stuck.metrics["reached_budget"] and "no single group" in stuck.metrics["stopped"]
    done = _netadapt(lenet, digits, tmp_path / "w", resume=True, init_reduction_ratio=0.1, short_term_iters=0).run()
    assert done.metrics["reached_budget"] and "stopped" not in done.metrics
    assert len(done.history) > len(stuck.history)


def test_a_started_folder_needs_resume(lenet, digits, tmp_path):
    _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.9, max_iters=1).run()
    with pytest.raises(PrunekitError, match="--resume"):
        _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.9).run()


@pytest.mark.parametrize("kwargs,message", [
    (dict(budget=1000, budget_ratio=0.5), "exactly one"),
    (dict(budget=10**12), "not below"),
    (dict(budget=10), "cannot be reached"),
    (dict(budget_ratio=0.5, criterion="taylor"), "data-free"),
    (dict(budget_ratio=0.5, resource="watts"), "unknown resource"),
])
def test_bad_budgets_fail_before_any_work(lenet, digits, tmp_path, kwargs, message):
    calls = []
    with pytest.raises(PrunekitError, match=message):
        NetAdapt(lenet, digits.example_inputs(), finetune=lambda m, i: calls.append(i),
                 evaluate=lambda m: calls.append(0) or 0.0, work_dir=tmp_path / "w", progress=False,
                 log=lambda s: None, **kwargs).run()
    assert not calls and not (tmp_path / "w" / "config.json").exists()


@pytest.mark.parametrize("name,kwargs", [("resnet20", {"width": 8}), ("mobilenet_v2", {"width_mult": 0.25})])
def test_residual_and_depthwise_models(digits, tmp_path, name, kwargs):
    data = load_dataset("digits", train_subset=256)
    model = prunekit.create_model(name, 10, 1, 8, **kwargs).eval()
    result = _netadapt(model, data, tmp_path / "w", budget_ratio=0.85, short_term_iters=2, max_iters=3,
                       min_channels_step=4, init_reduction_ratio=0.05).run()
    assert result.history
    resources = [h["resource"] for h in result.history]
    assert resources == sorted(resources, reverse=True)
    with torch.no_grad():
        assert result.model(data.example_inputs(2)).shape == (2, 10)
    loaded = prunekit.load(tmp_path / "w" / "iterations" / f"{len(resources):03d}")
    x = data.example_inputs(2) + torch.randn(2, 1, 8, 8)
    with torch.no_grad():
        assert torch.allclose(loaded(x), result.model.eval()(x), atol=1e-5)


def test_user_functions_and_tinynn_aliases(lenet, digits, tmp_path):
    cfg = NetAdaptConfig.from_dict({"budget_ratio": 0.7, "budget_type": "params", "netadapt_lr": 0.02,
                                    "netadapt_max_iter": 5, "netadapt_max_rounds": 3, "netadapt_min_feature_size": 4,
                                    "budget_reduce_rate_init": 0.1, "budget_reduce_rate_decay": 0.9})
    assert (cfg.resource, cfg.finetune_lr, cfg.short_term_iters, cfg.max_iters, cfg.min_channels_step) == ("params", 0.02, 5, 3, 4)
    seen = []

    def finetune(model, iters):
        seen.append(iters)

    def evaluate(model):
        return -count(model, digits.example_inputs()).params / 1e6  # prefer the smallest

    result = NetAdapt(lenet, digits.example_inputs(), budget_ratio=0.7, resource="params", finetune=finetune,
                      evaluate=evaluate, work_dir=tmp_path / "w", short_term_iters=5, max_iters=2, progress=False,
                      log=lambda s: None).run()
    assert seen and set(seen) == {5} and len(result.history) == 2


def test_save_interval_keeps_every_candidate(lenet, digits, tmp_path):
    result = _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.8, max_iters=2, save_interval=2).run()
    assert not (tmp_path / "w" / "candidates" / "001").exists()
    saved = sorted(p.name for p in (tmp_path / "w" / "candidates" / "002").iterdir())
    tried = sorted(c["group"] for c in result.history[1]["candidates"] if c["status"] == "ok")
    assert saved == tried and len(saved) > 1
    assert prunekit.load(tmp_path / "w" / "candidates" / "002" / saved[0]) is not None


def test_ray_executor_without_ray_says_how_to_install(monkeypatch):
    import sys

    from prunekit.executors import make_executor

    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(PrunekitError, match=r"pip install 'prunekit\[ray\]'"):
        make_executor("ray")


def test_resume_with_the_other_budget_form_replaces_the_saved_budget(lenet, digits, tmp_path):
    _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.9, max_iters=1).run()
    base = count(lenet, digits.example_inputs()).macs
    result = _netadapt(lenet, digits, tmp_path / "w", resume=True, budget=0.8 * base, max_iters=1000).run()
    saved = json.loads((tmp_path / "w" / "config.json").read_text())["netadapt"]
    assert (saved["budget"], saved["budget_ratio"]) == (0.8 * base, None)
    assert result.metrics["macs"] <= 0.8 * base


def test_the_api_refuses_what_it_cannot_use_in_one_line_and_leaves_no_folder(tmp_path, monkeypatch):
    import glob
    import tempfile

    import prunekit
    from prunekit import NetAdapt
    from prunekit.errors import PrunekitError

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where a run without work_dir makes its folder
    model, x = prunekit.create_model("lenet", 10, 1, 8), torch.zeros(2, 1, 8, 8)
    (tmp_path / "afile").write_text("x")
    for evaluate, kwargs, fault in [
        (lambda m: None, {}, "evaluate/score must return a finite number"),
        (lambda m: float("nan"), {}, "got nan"),
        (lambda m: {"loss": 1.0}, {}, "mapping with 'accuracy'"),
        (lambda m: 0.5, {"work_dir": tmp_path / "afile"}, "afile is a file, not a folder"),
    ]:
        with pytest.raises(PrunekitError, match=fault):
            NetAdapt(model, x, finetune=lambda m, i: None, evaluate=evaluate, budget_ratio=0.7, progress=False,
                     log=lambda s: None, **kwargs).run()
    with pytest.raises(PrunekitError, match="example_inputs must be one tensor"):
        prunekit.prune(model, (x, x), ratio=0.3)
    assert not glob.glob(str(tmp_path / "netadapt-*"))  # failed starts leave no temporary folder

    from prunekit.algorithms.netadapt.candidate import split_score

    np = pytest.importorskip("numpy")
    assert split_score(np.float32(0.5)) == (0.5, None) and split_score({"accuracy": np.float64(0.25), "loss": 1}) == (0.25, 1.0)
