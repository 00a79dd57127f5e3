"""NetAdapt's share cuts on a resource that falls in steps as a group narrows (latency on block-wise kernels)."""

import math

import pytest
import torch
from torch import nn

import prunekit
from prunekit.algorithms.netadapt import NetAdaptConfig
from prunekit.algorithms.netadapt.candidate import stepwise_removal
from prunekit.pipeline.netadapt_task import data_task
from prunekit.structure import analyze


def _structure(width=12):
    model = nn.Sequential(nn.Conv2d(1, width, 3), nn.ReLU(), nn.Conv2d(width, 4, 3)).eval()
    structure = analyze(model, torch.zeros(1, 1, 8, 8))
    (group,) = [g.name for g in structure.groups]
    return structure, group


class _Calls:
    """A what-if over one group's width, recording the counts it was asked about."""

    def __init__(self, group, width, of_width):
        self.group, self.width, self.of_width, self.asked = group, width, of_width, []

    def __call__(self, removed):
        c = removed.get(self.group, 0)
        self.asked.append(c)
        return self.of_width(self.width - c)


def test_a_cut_that_saves_nothing_grows_to_the_next_step():
    structure, group = _structure(12)
    cost = _Calls(group, 12, lambda w: math.ceil(w / 4))  # 12 -> 3 steps; 9..11 cost the same as 12
    k, resource = stepwise_removal(structure, group, 2, cost, current=3.0, every_count=True)
    assert (k, resource) == (4, 2)


def test_a_cut_grows_to_at_most_half_the_group():
    structure, group = _structure(12)
    cliff = lambda w: 1.0 if w <= 4 else 2.0  # only a cut to 4 of 12 channels saves
    assert stepwise_removal(structure, group, 2, _Calls(group, 12, cliff), 2.0, every_count=True)[0] is None
    structure, group = _structure(16)
    assert stepwise_removal(structure, group, 2, _Calls(group, 16, lambda w: 1.0 if w <= 8 else 2.0), 2.0,
                            every_count=True) == (8, 1.0)


def test_a_smooth_resource_keeps_the_share():
    structure, group = _structure(12)
    k, resource = stepwise_removal(structure, group, 2, _Calls(group, 12, float), current=12.0, every_count=True)
    assert (k, resource) == (2, 10.0)


def test_a_group_whose_cuts_save_nothing_has_no_candidate():
    structure, group = _structure(12)
    assert stepwise_removal(structure, group, 2, _Calls(group, 12, lambda w: 5.0), 5.0, every_count=True)[0] is None


def test_measured_what_ifs_try_aligned_widths_only_when_the_share_saves_nothing():
    structure, group = _structure(30)
    cost = _Calls(group, 30, lambda w: math.ceil(w / 8))
    k, _ = stepwise_removal(structure, group, 4, cost, current=4.0, every_count=False)
    assert sorted(cost.asked) == [4, 6]  # the share (26 channels) and 24, the first multiple of 4, 8 (16, 32: beyond 2x)
    assert k == 6
    saves = _Calls(group, 30, float)  # the share's own cut saves: nothing else is measured
    assert stepwise_removal(structure, group, 4, saves, current=30.0, every_count=False) == (4, 26.0)
    assert saves.asked == [4]


class _Staircase:
    """Latency-like: each convolution's width costs ``of_width(width)`` (what block-wise kernels do)."""

    name, stepwise, cheap_what_if = "latency", True, True

    def __init__(self, of_width):
        self.of_width = of_width

    def _cost(self, widths):
        return float(sum(self.of_width(w) for w in widths))

    def of_model(self, model, example_inputs):
        return self._cost(m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d))

    def what_if(self, structure, example_inputs):
        def cost(removed):
            widths = {g.name: g.channels - removed.get(g.name, 0) for g in structure.groups}
            fixed = self.of_model(structure.model, example_inputs) - self._cost(g.channels for g in structure.groups)
            return fixed + self._cost(widths.values())
        return cost


def _run(model, data, tmp_path, of_width, metric=_Staircase, **kw):
    cfg = NetAdaptConfig().with_changes(short_term_iters=2, bn_batches=2, score_samples=60, seed=0, **kw)
    task = data_task(data, cfg, batch_size=32)
    messages = []
    search = prunekit.NetAdapt(model, data.example_inputs(), finetune=task.finetune, evaluate=task.evaluate,
                               score=task.score, calibration_data=task.calibration_data, work_dir=tmp_path / "w",
                               config=cfg, progress=False, log=messages.append)
    search.search.metric = metric(of_width)
    return search.run(), messages


def test_every_kept_cut_lowers_a_stepwise_resource(small, tmp_path):
    result, _ = _run(*small, tmp_path, lambda w: math.ceil(w / 4), budget_ratio=0.7, max_iters=30)
    resources = [h["resource"] for h in result.history]
    assert result.metrics["reached_budget"] and len(resources) > 1
    assert all(b < a for a, b in zip([result.metrics["base_resource"], *resources], resources))
    for h, before in zip(result.history, [result.metrics["base_resource"], *resources]):
        for c in h["candidates"]:
            assert c["status"] == "skipped" or c["resource"] < before
            assert c["status"] != "ok" or c["channels"] % 4 == 0 or c["channels"] < 4  # on a step


class _OnlyAllTogether(_Staircase):
    """Cheaper only when every group is at its narrowest (no one group's cut saves anything)."""

    def what_if(self, structure, example_inputs):
        floor = {g.name: structure.removable(g.name) for g in structure.groups}
        return lambda removed: 1.0 if all(removed.get(g, 0) >= k for g, k in floor.items()) else 2.0

    def of_model(self, model, example_inputs):
        return 2.0


def test_a_budget_no_cut_can_approach_stops_with_why(small, tmp_path):
    result, messages = _run(*small, tmp_path, None, budget_ratio=0.9, max_iters=5, metric=_OnlyAllTogether)
    assert result.history == [] and not result.metrics["reached_budget"]
    assert "no group's cut lowers the " in result.metrics["stopped"]
    assert any("the budget cannot be reached; give a larger budget" in m for m in messages)


class _DearTogether(_Staircase):
    """Each single cut saves, but a network with more than one convolution narrowed reads far slower (as a
    combination of cuts can on an int8 runtime, or on a busy machine)."""

    start = None

    def of_model(self, model, example_inputs):
        widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
        self.start = self.start or widths
        narrowed = sum(w < s for w, s in zip(widths, self.start))
        return self._cost(widths) + (1000.0 if narrowed > 1 else 0.0)


@pytest.mark.parametrize("metric, together", [(_Staircase, True), (_DearTogether, False)])
def test_cuts_that_cost_more_together_give_way_to_the_best_single_cut(small, tmp_path, metric, together):
    result, _ = _run(*small, tmp_path, float, budget_ratio=0.5, max_iters=1, metric=metric)
    (h,) = result.history
    assert (len(h["cuts"]) > 1) == together
    assert h["resource"] < result.metrics["base_resource"]


class _BusyOnce(_DearTogether):
    """The combined cuts' first reading is slow (another job ran during it); timed again they save."""

    busy = True

    def of_model(self, model, example_inputs):
        widths = [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
        self.start = self.start or widths
        combined = sum(w < s for w, s in zip(widths, self.start)) > 1
        slow, self.busy = (1000.0, False) if combined and self.busy else (0.0, self.busy)
        return self._cost(widths) + slow


def test_combined_cuts_that_read_slow_once_are_timed_again_beside_the_current_network(small, tmp_path):
    result, _ = _run(*small, tmp_path, float, budget_ratio=0.5, max_iters=1, metric=_BusyOnce)
    (h,) = result.history
    assert len(h["cuts"]) > 1 and h["resource"] < result.metrics["base_resource"]
