"""NetAdapt's per-group share step (``--step-mode share --group-share``, the "Pruning" tool's ``delta_crop``)
and the final rounding of widths (``--final-round-to``, its ``resize_alf``), through the API and the CLI."""

from __future__ import annotations

import json

import pytest
import yaml

import prunekit
from prunekit import NetAdapt
from prunekit.algorithms.netadapt import NetAdaptConfig
from prunekit.cli.main import main
from prunekit.pipeline.netadapt_step import DataEvaluate, DataFinetune
from prunekit.resources import count
from prunekit.structure import analyze
from prunekit.training import evaluate

QUICK = dict(short_term_iters=2, seed=0, cuts_per_iteration=1, cut_share=0.0)  # one cut per iteration


def _netadapt(model, data, work_dir, log=lambda s: None, **kw):
    return NetAdapt(model, data.example_inputs(), finetune=DataFinetune(data, lr=0.01), evaluate=DataEvaluate(data),
                    work_dir=work_dir, progress=False, log=log, **{**QUICK, **kw})


def widths(model, data) -> dict[str, int]:
    """Channel group -> width."""
    return {g.name: g.channels for g in analyze(model, data.example_inputs()).groups}


def test_share_mode_removes_that_share_of_the_chosen_group_each_iteration(lenet, digits, tmp_path):
    result = _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.5, step_mode="share", group_share=0.25,
                       min_channels_step=1).run()
    budget = 0.5 * count(lenet, digits.example_inputs()).macs
    history = result.history
    assert len(history) > 2
    for h in history:
        before = h["channels"] + h["removed"]
        assert h["removed"] == max(1, round(0.25 * before)), h
        for c in h["candidates"]:  # every group's candidate removes its own share, whatever the target
            if c["status"] == "ok":
                assert c["removed"] == max(1, round(0.25 * (c["channels"] + c["removed"]))), c
    resources = [h["resource"] for h in history]
    assert resources == sorted(resources, reverse=True)
    assert resources[-1] <= budget < resources[-2]  # it stops at the budget, not before
    assert result.metrics["reached_budget"] and result.metrics["macs"] <= budget


def test_share_mode_keeps_the_channel_step(lenet, digits, tmp_path):
    result = _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.8, step_mode="share", group_share=0.1,
                       min_channels_step=4, max_iters=3).run()
    for h in result.history:
        assert h["removed"] >= 4 and h["channels"] % 4 == 0, h  # 10 % of 16 is 2: one step of 4 is removed


def test_resource_mode_is_unchanged_by_group_share(lenet, digits, tmp_path):
    a = _netadapt(lenet, digits, tmp_path / "a", budget_ratio=0.9, min_channels_step=2, max_iters=2,
                  step_mode="resource").run()
    b = _netadapt(lenet, digits, tmp_path / "b", budget_ratio=0.9, min_channels_step=2, max_iters=2,
                  step_mode="resource", group_share=0.5).run()
    assert [(h["group"], h["removed"]) for h in a.history] == [(h["group"], h["removed"]) for h in b.history]


def test_final_round_to_leaves_every_width_a_multiple_and_reports_both_accuracies(lenet, digits, tmp_path):
    lines = []
    result = _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.7, step_mode="share", group_share=0.25,
                       min_channels_step=1, final_round_to=4, exclude=["9"], log=lines.append).run()
    last = prunekit.load(tmp_path / "w" / "iterations" / f"{len(result.history):03d}")
    before, after = widths(last, digits), widths(result.model, digits)
    assert any(w % 4 for w in before.values())  # the search alone leaves odd widths (LeNet's first conv has 6)
    for name, w in after.items():
        if name == "9":
            assert w == before["9"]  # excluded layers keep their width
        else:
            assert w % 4 == 0 and before[name] - 4 < w <= before[name], (name, before[name], w)
    m = result.metrics
    assert {"before_rounding_accuracy", "before_rounding_resource"} <= set(m)
    assert m["before_rounding_accuracy"] == result.history[-1]["accuracy"]
    assert m["val_accuracy"] == pytest.approx(evaluate(result.model, digits.val)["accuracy"])
    assert m["macs"] < m["before_rounding_resource"] == result.history[-1]["resource"]
    assert json.loads((tmp_path / "w" / "metrics.json").read_text())["before_rounding_accuracy"] == \
        m["before_rounding_accuracy"]
    assert any(line.startswith("widths rounded down to multiples of 4: macs") and
               f"val acc {m['before_rounding_accuracy']:.4f} -> {m['val_accuracy']:.4f}" in line for line in lines)


def test_without_final_round_to_the_last_iteration_is_the_result(lenet, digits, tmp_path):
    result = _netadapt(lenet, digits, tmp_path / "w", budget_ratio=0.8, min_channels_step=2).run()
    assert "before_rounding_accuracy" not in result.metrics
    last = prunekit.load(tmp_path / "w" / "iterations" / f"{len(result.history):03d}")
    assert widths(last, digits) == widths(result.model, digits)


def test_pruning_tool_names_in_yaml():
    cfg = NetAdaptConfig.from_dict({"budget_ratio": 0.5, "step_mode": "share", "delta_crop": 0.2, "resize_alf": 8})
    assert (cfg.group_share, cfg.final_round_to) == (0.2, 8)
    with pytest.raises(prunekit.PrunekitError, match="group-share"):
        NetAdaptConfig(budget_ratio=0.5, group_share=1.5).validate()
    with pytest.raises(prunekit.PrunekitError, match="final-round-to"):
        NetAdaptConfig(budget_ratio=0.5, final_round_to=0).validate()


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A LeNet checkpoint trained 2 epochs on digits, through the CLI."""
    out = tmp_path_factory.mktemp("base") / "lenet"
    assert main(["train", "--model", "lenet", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    return out


def test_cli_netadapt_share_and_final_rounding(base, digits, tmp_path, capsys):
    config = tmp_path / "pruning-tool.yaml"  # the "Pruning" tool's names for the two settings
    config.write_text(yaml.safe_dump({"delta_crop": 0.25, "resize_alf": 4}))
    code = main(["netadapt", "--checkpoint", str(base), "--work-dir", str(tmp_path / "w"), "--out",
                 str(tmp_path / "final"), "--budget-ratio", "0.7", "--step-mode", "share", "--min-channels-step", "1",
                 "--short-term-iters", "2", "--config", str(config), "--quiet"])
    assert code == 0
    saved = json.loads((tmp_path / "w" / "config.json").read_text())["netadapt"]
    assert (saved["step_mode"], saved["group_share"], saved["final_round_to"]) == ("share", 0.25, 4)
    for line in (tmp_path / "w" / "history.jsonl").read_text().splitlines():
        h = json.loads(line)
        assert h["removed"] == max(1, round(0.25 * (h["channels"] + h["removed"])))
    final = prunekit.load(tmp_path / "final")
    assert all(w % 4 == 0 for w in widths(final, digits).values())
    metrics = json.loads((tmp_path / "final" / "metrics.json").read_text())
    assert {"before_rounding_accuracy", "val_accuracy", "test_accuracy"} <= set(metrics)


def test_cli_run_keeps_the_rounded_network(tmp_path, digits, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code = main(["run", "--model", "lenet", "--epochs", "1", "--method", "netadapt", "--percent", "0.3",
                 "--step-mode", "share", "--group-share", "0.25", "--min-channels-step", "1", "--short-term-iters",
                 "2", "--final-round-to", "4", "--finetune-epochs", "1", "--cuts-per-iteration", "1", "--cut-share", "0",
                 "--out", "r", "--quiet"])
    assert code == 0
    for step in ("pruned", "finetuned"):
        model = prunekit.load(tmp_path / "r" / step)
        assert all(w % 4 == 0 for w in widths(model, digits).values()), step
    pruned = json.loads((tmp_path / "r" / "pruned" / "metrics.json").read_text())
    assert "before_rounding_accuracy" in pruned
    assert pruned["macs"] == count(prunekit.load(tmp_path / "r" / "pruned"), digits.example_inputs()).macs


@pytest.mark.parametrize("setting, value, flag", [
    ("group_share", 0.0, "--group-share"), ("bn_batches", -1, "--bn-batches"), ("score_samples", 0, "--score-samples"),
    ("reduction_decay", float("nan"), "--reduction-decay"), ("init_reduction_ratio", 0.0, "--init-reduction-ratio"),
    ("cut_share", 1.5, "--cut-share"), ("max_iters", -2, "--max-iters"), ("short_term_iters", -1, "--short-term-iters"),
    ("finetune_lr", 0.0, "--finetune-lr"), ("save_interval", -1, "--save-interval"),
    ("budget", float("nan"), "--budget"), ("init_reduction", float("inf"), "--init-reduction"),
    ("finetune_lr", float("nan"), "--finetune-lr"),
])
def test_a_setting_out_of_range_is_named_alone_with_its_value(setting, value, flag):
    with pytest.raises(prunekit.PrunekitError) as err:
        NetAdaptConfig(budget_ratio=0.5, **{setting: value}).validate()
    message = str(err.value)
    assert message.startswith(f"{flag} must be") and message.endswith(f"got {value}")
    assert message.count("--") == 1  # no other option blamed
