"""Latency lookup tables: signatures follow pruning exactly, every reachable width is in a built table,
save/load, on-demand entries, the platform check, and latency budgets in NetAdapt."""

import copy
import json
import math
import shutil

import pytest
import torch
from torch import nn

import prunekit
from prunekit import NetAdapt
from prunekit.algorithms.netadapt.search import MAX_SHIFT_SHARE
from prunekit.cli.main import main
from prunekit.errors import PrunekitError
from prunekit.io import save_checkpoint
from prunekit.latency import LatencyTable, build_lut
from prunekit.latency.metric import LatencyMetric
from prunekit.latency.sites import ProbeCache, probe_sites, reachable_removals, trace_sites
from prunekit.structure import analyze, pruned_copy


def fake_time(self, module, input_shape, seconds=None):
    """A deterministic stand-in for timing: cost grows with the layer's work (fast, noise-free tests)."""
    work = math.prod(input_shape) * (1 + sum(p.numel() for p in module.parameters()) / 1000)
    return 0.001 + work * 1e-6


@pytest.fixture
def fake_timer(monkeypatch):
    monkeypatch.setattr(LatencyTable, "time_layer", fake_time)


def fake_measure_model(table, model, x):
    """What the fake timer says the whole network costs: its layers' sum, plus a fixed 0.05 ms."""
    return sum(fake_time(table, s.module, s.input_shape) for s in trace_sites(model, x)) + 0.05


class FakeResult:
    def __init__(self, ms, batch_size=1):
        self.median_ms, self.noise = ms, 0.0
        self.platform = {"name": "torch-cpu", "fake": True, "batch_size": batch_size}


@pytest.fixture
def fake_platform(fake_timer, monkeypatch):
    """Fake layer timings and whole-network measurements for calibration, consistent with each other."""
    import prunekit.latency.metric as metric_module
    import prunekit.latency.table as table_module

    fake = lambda m, x, *a, **k: FakeResult(fake_measure_model(None, m, x), x.shape[0])  # noqa: E731
    monkeypatch.setattr(table_module, "measure_latency", fake)
    monkeypatch.setattr(metric_module, "measure_latency", fake)  # NetAdapt's measured check at the end


def convnet():
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 24, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(24, 10)).eval()


MODELS = {
    "convnet": (convnet, (1, 3, 16, 16)),
    "resnet20": (lambda: prunekit.create_model("resnet20", 10, 3, 16, width=8).eval(), (2, 3, 16, 16)),
    "mobilenet_v2": (lambda: prunekit.create_model("mobilenet_v2", 10, 3, 16, width_mult=0.25).eval(), (1, 3, 16, 16)),
    "lenet": (lambda: prunekit.create_model("lenet", 10, 1, 8).eval(), (1, 1, 8, 8)),
}


@pytest.mark.parametrize("name", MODELS)
def test_predicted_signatures_equal_those_of_the_really_pruned_network(name):
    build, shape = MODELS[name]
    torch.manual_seed(0)
    model, x = build(), torch.randn(shape)
    s = analyze(model, x, round_to=4)
    sites = probe_sites(s, x)
    gen = torch.Generator().manual_seed(1)
    for trial in range(3):
        removed = {}
        for g in s.groups:
            options = reachable_removals(s, g.name)
            removed[g.name] = options[int(torch.randint(len(options), (1,), generator=gen))]
        real = [site.signature() for site in trace_sites(pruned_copy(s, removed).model, x)]
        assert [site.signature(removed) for site in sites] == real


@pytest.mark.parametrize("name", MODELS)
def test_probes_learnt_on_the_wider_network_still_give_the_exact_signatures(name):
    build, shape = MODELS[name]
    torch.manual_seed(0)
    model, x = build(), torch.randn(shape)
    s = analyze(model, x, round_to=4)
    cache = ProbeCache()
    probe_sites(s, x, cache)
    gen = torch.Generator().manual_seed(2)
    for step in range(3):  # a few NetAdapt-like steps: one group shrinks, the cached probes are reused
        g = s.groups[int(torch.randint(len(s.groups), (1,), generator=gen))]
        options = reachable_removals(s, g.name)[1:]
        if options:
            s.prune(g.name, list(range(options[0])))
        cached = probe_sites(s, x, cache)
        removed = {g.name: reachable_removals(s, g.name)[-1] for g in s.groups}
        real = [site.signature() for site in trace_sites(pruned_copy(s, removed).model, x)]
        assert [site.signature(removed) for site in cached] == real


@pytest.mark.filterwarnings("ignore:latency table not calibrated")
def test_a_built_table_covers_every_reachable_width(fake_timer):
    torch.manual_seed(0)
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    table = build_lut(model, x, min_channels_step=4, calibrate=False, progress=False)
    assert table.entries and table.info["builds"][0]["measured"] == len(table.entries)
    for ratio in (0.25, 0.5, 0.7):
        pruned = prunekit.prune(model, x, ratio=ratio, criterion="l1", round_to=4)
        table.predict(pruned, x, on_demand=False)  # raises if any layer is missing
    s = analyze(copy.deepcopy(model), x, round_to=4)
    cost = table.what_if(s, x)
    assert cost({g.name: reachable_removals(s, g.name)[-1] for g in s.groups}) < cost({})


def test_calibration_fits_whole_network_measurements(fake_platform):
    table = LatencyTable("torch-cpu", 1)
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    fit = table.calibrate(model, x, round_to=4)
    assert len(fit["points"]) == 4 and fit["scale"] == pytest.approx(1, rel=1e-6)
    assert fit["offset"] == pytest.approx(0.05, rel=1e-4)
    pruned = prunekit.prune(model, x, ratio=0.5, round_to=4)
    assert table.predict(pruned, x) == pytest.approx(fake_measure_model(table, pruned, x), rel=1e-6)


def test_save_load_and_a_second_build_reuses_the_table(fake_timer, tmp_path):
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    table = build_lut(model, x, min_channels_step=4, calibrate=False, progress=False)
    table.calibration["1x3x16x16"] = {"scale": 1.1, "offset": 0.01, "points": []}
    path = table.save(tmp_path / "t.json")
    loaded = LatencyTable.load(path)
    assert loaded.entries == table.entries and loaded.calibration == table.calibration
    assert loaded.record == table.record
    again = build_lut(model, x, min_channels_step=4, table=loaded, progress=False)
    assert again.info["builds"][-1]["measured"] == 0
    assert again.predict(model, x) == pytest.approx(table.predict(model, x))


def test_an_interrupted_build_keeps_what_it_measured_and_continues(fake_timer, tmp_path, monkeypatch):
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    calls = []

    def stop_after_40(self, module, input_shape, seconds=None):
        calls.append(1)
        if len(calls) > 40:
            raise KeyboardInterrupt
        return fake_time(self, module, input_shape)

    monkeypatch.setattr(LatencyTable, "time_layer", stop_after_40)
    with pytest.raises(KeyboardInterrupt):
        build_lut(model, x, min_channels_step=4, calibrate=False, progress=False, save_to=tmp_path / "t.json")
    stopped = LatencyTable.load(tmp_path / "t.json")
    assert len(stopped.entries) == 40
    passes = stopped.backend.table_trials
    assert passes > 1 and stopped.unfinished == dict.fromkeys(stopped.entries, 1)  # stopped in the first pass
    calls.clear()
    monkeypatch.setattr(LatencyTable, "time_layer", lambda *a, **k: calls.append(1) or fake_time(*a, **k))
    full = build_lut(model, x, min_channels_step=4, calibrate=False, progress=False, table=stopped,
                     save_to=tmp_path / "t.json")
    # the 40 entries get their remaining passes, the others all of theirs: each entry is the lowest of `passes`
    assert len(calls) == passes * len(full.entries) - 40
    assert not full.unfinished and "unfinished" not in json.loads((tmp_path / "t.json").read_text())
    again = build_lut(model, x, min_channels_step=4, calibrate=False, progress=False, table=full)
    assert again.info["builds"][-1]["measured"] == 0


def test_missing_entries_are_measured_on_demand_and_saved(fake_timer, tmp_path):
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    table = LatencyTable("torch-cpu", 1)
    table.save(tmp_path / "t.json")
    with pytest.raises(PrunekitError, match="no entry"), pytest.warns(UserWarning, match="not calibrated"):
        table.predict(model, x, on_demand=False)
    with pytest.warns(UserWarning, match="not calibrated"):
        ms = table.predict(model, x)
    assert ms > 0 and table.measured_on_demand == len(table.entries) == len({s.signature() for s in trace_sites(model, x)})
    table.save_if_changed()
    assert len(LatencyTable.load(tmp_path / "t.json").entries) == len(table.entries)


def test_a_table_from_another_platform_is_refused_unless_forced(fake_timer, tmp_path):
    table = LatencyTable("torch-cpu", 1)
    table.entries["Conv2d(x)@1"] = 1.0
    path = table.save(tmp_path / "t.json")
    doc = json.loads(path.read_text())
    doc["platform"]["device"] = "Some Other CPU"
    path.write_text(json.dumps(doc))
    with pytest.raises(PrunekitError, match="another platform.*Some Other CPU"):
        LatencyTable.load(path)
    assert LatencyTable.load(path, force=True).entries == {"Conv2d(x)@1": 1.0}
    with pytest.raises(PrunekitError, match="another platform"):
        LatencyTable.load(tmp_path / "t.json", "torch-cpu", threads=1)


@pytest.mark.parametrize("content", ["{not json", json.dumps({"some": "thing"}), "\x00\x01"])
def test_a_corrupt_table_is_one_clear_error_and_is_left_as_it_is(tmp_path, content):
    path = tmp_path / "t.json"
    path.write_text(content)
    with pytest.raises(PrunekitError, match="latency table|not a prunekit latency table"):
        LatencyTable.load(path)
    assert path.read_text() == content


def test_a_copy_sent_to_a_worker_does_not_write_the_file(tmp_path):
    import pickle

    table = LatencyTable("torch-cpu", 1)
    table.save(tmp_path / "t.json")
    copy_ = pickle.loads(pickle.dumps(table))
    assert copy_.path is None and not copy_.autosave and table.path is not None


def test_real_timings_predict_a_small_network(tmp_path):
    """One build with real timings (small, so the suite stays fast): positive entries, a calibration, a prediction."""
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    table = build_lut(model, x, min_channels_step=8, threads=1, entry_time_s=0.002, progress=False)
    assert all(v > 0 for v in table.entries.values())
    assert table.is_calibrated(x) and len(table.calibration["1x3x16x16"]["points"]) == 4
    assert table.predict(model, x) > 0


def test_unknown_platform_lists_the_valid_ones():
    with pytest.raises(PrunekitError, match="valid platforms: .*onnxruntime-cpu.*torch-cpu, torch-cuda"):
        LatencyTable("npu")
    with pytest.raises(PrunekitError, match="unknown latency mode"):
        LatencyMetric(mode="guess")


# -- NetAdapt with a latency budget ---------------------------------------------------------------


def _param_score(model):
    return float(sum(p.detach().abs().sum() for p in model.parameters()))


def test_netadapt_with_a_latency_budget_records_the_measured_latency(fake_platform, tmp_path):
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    lut = tmp_path / "lut.json"
    options = dict(budget_ratio=0.6, resource="latency", finetune=lambda m, n: None, evaluate=_param_score,
                   short_term_iters=0, min_channels_step=4, init_reduction_ratio=0.15, lut=str(lut),
                   latency_batch=2, progress=False, log=lambda s: None)
    result = NetAdapt(model, x, work_dir=tmp_path / "w", max_iters=1, **options).run()
    assert lut.exists() and json.loads(lut.read_text())["calibration"].keys() == {"2x3x16x16"}
    saved = json.loads((tmp_path / "w" / "config.json").read_text())["netadapt"]
    assert (saved["latency"]["lut"], saved["latency"]["latency_batch"]) == (str(lut), 2)
    assert len(result.history) == 1
    result = NetAdapt(model, x, work_dir=tmp_path / "w", resume=True, max_iters=50, **options).run()
    m = result.metrics
    assert m["reached_budget"] and m["latency"] <= m["budget"]
    assert m["latency_predicted_ms"] == pytest.approx(m["latency"])
    assert m["latency_measured_ms"] > 0 and m["base_latency_measured_ms"] > 0
    assert m["latency_platform"]["batch_size"] == 2
    resources = [h["resource"] for h in result.history]
    assert resources == sorted(resources, reverse=True)


def test_netadapt_by_direct_measurement_runs(tmp_path, monkeypatch):
    import prunekit.latency.metric as metric_module

    monkeypatch.setattr(metric_module, "measure_latency", lambda m, x, *a, **k: FakeResult(fake_measure_model(None, m, x)))
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    result = NetAdapt(model, x, budget_ratio=0.8, resource="latency", latency_mode="measure", threads=1,
                      finetune=lambda m, n: None, evaluate=_param_score, short_term_iters=0, min_channels_step=4,
                      init_reduction_ratio=0.1, max_iters=1, work_dir=tmp_path / "w", progress=False,
                      log=lambda s: None).run()
    assert len(result.history) == 1 and result.metrics["latency_mode"] == "measure"
    assert "latency_predicted_ms" not in result.metrics


def test_latency_settings_without_a_latency_budget_are_an_error(tmp_path):
    with pytest.raises(PrunekitError, match="need --resource latency"):
        NetAdapt(convnet(), torch.randn(1, 3, 16, 16), budget_ratio=0.5, resource="macs", lut="x.json",
                 finetune=lambda m, n: None, evaluate=_param_score, work_dir=tmp_path / "w")


# -- CLI -------------------------------------------------------------------------------------------


@pytest.fixture
def checkpoint(tmp_path):
    model = prunekit.create_model("resnet20", 10, 3, 16, width=8)
    save_checkpoint(tmp_path / "ck", model, input_shape=(3, 16, 16))
    return tmp_path / "ck"


def test_cli_builds_reuses_and_checks_a_table(fake_platform, checkpoint, tmp_path, capsys):
    out = tmp_path / "t.json"
    args = ["lut", "build", "--checkpoint", str(checkpoint), "--out", str(out), "--min-channels-step", "4",
            "--threads", "1", "--quiet"]
    assert main(args) == 0
    first = json.loads(out.read_text())
    assert first["entries"] and first["calibration"]
    assert main(args) == 0
    assert "0 layers timed" in capsys.readouterr().out
    assert main(["lut", "check", "--checkpoint", str(checkpoint), "--lut", str(out), "--threads", "1"]) == 0
    assert "predicted ms" in capsys.readouterr().out


def test_cli_refuses_to_overwrite_a_corrupt_table(checkpoint, tmp_path, capsys):
    out = tmp_path / "t.json"
    out.write_text("{broken")
    assert main(["lut", "build", "--checkpoint", str(checkpoint), "--out", str(out)]) == 2
    assert "not readable JSON" in capsys.readouterr().err and out.read_text() == "{broken"


def test_cli_one_shot_prune_rejects_a_latency_budget(checkpoint, tmp_path, capsys):
    assert main(["prune", "--checkpoint", str(checkpoint), "--out", str(tmp_path / "p"), "--budget-ratio", "0.5",
                 "--resource", "latency"]) == 2
    assert "needs NetAdapt" in capsys.readouterr().err


def test_cli_netadapt_with_a_latency_budget(fake_platform, tmp_path, capsys):
    model = prunekit.create_model("resnet20", 10, 1, 16, width=8)
    save_checkpoint(tmp_path / "ck", model, input_shape=(1, 16, 16))
    lut = tmp_path / "lut.json"
    args = ["netadapt", "--checkpoint", str(tmp_path / "ck"), "--dataset", "digits", "--image-size", "16",
            "--val-size", "50", "--resource", "latency", "--budget-ratio", "0.8", "--lut", str(lut),
            "--latency-batch", "2", "--threads", "1", "--short-term-iters", "1", "--min-channels-step", "4",
            "--max-iters", "1", "--work-dir", str(tmp_path / "w"), "--quiet"]
    assert main(args) in (0, 3)  # 3: one iteration may end above the budget as measured (a busy machine)
    saved = json.loads((tmp_path / "w" / "config.json").read_text())["netadapt"]
    assert saved["resource"] == "latency" and (saved["latency"]["lut"], saved["latency"]["latency_batch"], saved["latency"]["threads"]) == (str(lut), 2, 1)
    metrics = json.loads((tmp_path / "w" / "metrics.json").read_text())
    assert metrics["latency_measured_ms"] > 0 and "latency_predicted_ms" in metrics and lut.exists()


def test_a_latency_metric_travels_to_another_process(fake_timer, tmp_path):
    """Ray pickles NetAdapt's shared input, metric included: the copy predicts and never writes the driver's file."""
    import pickle

    model, x = convnet(), torch.randn(1, 3, 16, 16)
    metric = LatencyMetric(lut=tmp_path / "t.json", threads=1, min_channels_step=4, progress=False)
    metric.table = build_lut(model, x, min_channels_step=4, threads=1, calibrate=False, progress=False)
    metric.table.calibration["1x3x16x16"] = {"scale": 1.0, "offset": 0.0, "points": []}  # no real runs here
    here = metric.of_model(model, x)
    copy_ = pickle.loads(pickle.dumps(metric))
    assert copy_.of_model(model, x) == pytest.approx(here) and copy_.table.path is None


def test_entries_keep_the_lowest_of_the_platforms_trials_taken_in_separate_passes(monkeypatch):
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    calls = []

    def slow_sometimes(self, module, input_shape, seconds=None):
        call = (tuple(input_shape), repr(module), seconds)
        calls.append(call)
        slow = calls.count(call) < 3  # a layer's first two timings are slow, its third is not
        return fake_time(self, module, input_shape) * (3.0 if slow else 1.0)

    monkeypatch.setattr(LatencyTable, "time_layer", slow_sometimes)
    table = build_lut(model, x, min_channels_step=4, calibrate=False, progress=False)
    trials, n = table.backend.table_trials, len(table.entries)
    assert trials == 3 and len(calls) == trials * n
    assert calls[:n] == calls[n:2 * n]  # pass after pass over the whole table, not one entry's trials in a row
    assert all(c[2] == pytest.approx(table.entry_time_s / trials) for c in calls)
    fresh = LatencyTable("torch-cpu", 1)
    monkeypatch.setattr(LatencyTable, "time_layer", fake_time)
    reference = build_lut(model, x, min_channels_step=4, calibrate=False, progress=False, table=fresh)
    assert table.entries == pytest.approx(reference.entries)  # the slow timings never count

    calls.clear()
    monkeypatch.setattr(LatencyTable, "time_layer", slow_sometimes)
    on_demand = LatencyTable("torch-cpu", 1)
    with pytest.warns(UserWarning, match="not calibrated"):
        on_demand.predict(model, x)
    assert len(calls) == trials * len(on_demand.entries)
    assert on_demand.entries == pytest.approx({k: reference.entries[k] for k in on_demand.entries})


@pytest.mark.parametrize("ratio_budget", [True, False])
def test_a_latency_budget_is_judged_against_the_start_network_measured_alongside(fake_platform, tmp_path,
                                                                                 monkeypatch, ratio_budget):
    # the machine got slower during the run: the final network reads 0.45 of the start network measured beside
    # it, but more milliseconds than the budget worked out when the run began
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    monkeypatch.setattr(LatencyMetric, "final_report", lambda self, m, x, base=None: {
        "latency_measured_ms": 1e3, "base_latency_measured_ms": 1e3 / 0.45, "latency_measured_ratio": 0.45})
    budget = dict(budget_ratio=0.8) if ratio_budget else dict(budget=0.08)
    result = NetAdapt(model, x, resource="latency", finetune=lambda m, n: None, evaluate=_param_score,
                      short_term_iters=0, min_channels_step=4, progress=False, log=lambda s: None,
                      work_dir=tmp_path / "w", **budget).run()
    m = result.metrics
    assert m["met_as_measured"] is ratio_budget  # 1000 ms is over a budget given in milliseconds
    if ratio_budget:
        assert m["reached_budget"] and "prediction_corrections" not in m
    else:  # 1000 ms against a prediction under a millisecond: the search goes on, its predictions raised by a
        # quarter of the base only (a gap that large is noise or a table that does not describe the network)
        (correction,) = m["prediction_corrections"]
        assert correction["capped"] and correction["readings"] == [1e3, 1e3]
        assert correction["shift"] == pytest.approx(MAX_SHIFT_SHARE * m["base_resource"])


def test_a_noisy_reading_over_the_budget_is_confirmed_before_it_sends_the_search_on(fake_platform, tmp_path,
                                                                                     monkeypatch):
    # the end-of-search check first reads the network 21 % slower than its base (another job ran), then 0.6 of it
    readings = iter([1.21, 0.6])
    monkeypatch.setattr(LatencyMetric, "final_report", lambda self, m, x, base=None: (
        lambda r: {"latency_measured_ms": r, "base_latency_measured_ms": 1.0, "latency_measured_ratio": r})(
        next(readings)))
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    kept = NetAdapt(model, x, resource="latency", budget_ratio=0.8, finetune=lambda m, n: None, evaluate=_param_score,
                    short_term_iters=0, min_channels_step=4, progress=False, log=lambda s: None,
                    work_dir=tmp_path / "w").run()
    m = kept.metrics
    assert m["met_as_measured"] and m["latency_measured_ratio"] == 0.6 and "prediction_corrections" not in m
    assert m["reached_budget"] and m["latency"] <= 0.8 * m["base_resource"]  # where the table put the budget


def test_widths_between_measured_ones_are_interpolated_not_timed(monkeypatch):
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    monkeypatch.setattr(LatencyTable, "time_layer", fake_time)
    table = build_lut(model, x, min_channels_step=4, calibrate=False, progress=False)
    exact = build_lut(model, x, min_channels_step=1, calibrate=False, progress=False, table=LatencyTable("torch-cpu", 1))
    s = analyze(copy.deepcopy(model), x, round_to=1)
    timed = []
    monkeypatch.setattr(LatencyTable, "time_layer", lambda *a, **k: timed.append(a) or fake_time(*a, **k))
    cost, truth = table.what_if(s, x), exact.what_if(s, x)
    assert [g.name for g in s.groups] == ["0", "6"]
    for removed in ({"0": 2}, {"0": 5, "6": 3}, {"6": 7}):  # widths 14, 11 / 21, 17: between multiples of 4
        assert cost(removed) == pytest.approx(truth(removed), rel=0.02)
    assert timed == [] and table.interpolator.count > 0
    below = {g.name: g.channels - 2 for g in s.groups}  # 2 channels: below the narrowest width measured (4)
    cost(below)
    assert timed  # outside the measured range a layer is still timed on demand


def test_interpolation_reads_only_its_own_layer_kind():
    from prunekit.latency.interpolate import Interpolator

    entries = {}
    conv = nn.Conv2d(8, 8, 3, padding=1)
    for cin in (4, 8):
        for cout in (4, 8):
            entries[f"Conv2d({cin},{cout},k=(3,3),s=(1,1),p=(1,1),d=(1,1),g=1,bias=True)@1x{cin}x8x8"] = cin * cout
    entries["Conv2d(6,6,k=(3,3),s=(2,2),p=(1,1),d=(1,1),g=1,bias=True)@1x6x8x8"] = 1000.0  # another stride
    interpolate = Interpolator(entries)
    assert interpolate.estimate(conv, (1, 6, 8, 8), (1, 6, 8, 8)) == pytest.approx(36)  # bilinear: exact here
    assert interpolate.estimate(conv, (1, 8, 8, 8), (1, 6, 8, 8)) == pytest.approx(48)  # one count measured
    assert interpolate.estimate(conv, (1, 2, 8, 8), (1, 6, 8, 8)) is None  # below the measured widths
    assert interpolate.estimate(nn.BatchNorm2d(6), (1, 6, 8, 8), (1, 6, 8, 8)) is None  # nothing of its kind
    entries["Conv2d(12,4,k=(3,3),s=(1,1),p=(1,1),d=(1,1),g=1,bias=True)@1x12x8x8"] = 48.0
    entries["Conv2d(12,8,k=(3,3),s=(1,1),p=(1,1),d=(1,1),g=1,bias=True)@1x12x8x8"] = 96.0
    assert interpolate.estimate(conv, (1, 10, 8, 8), (1, 6, 8, 8)) == pytest.approx(60)  # entries added later


def test_a_search_whose_table_predicts_too_low_goes_on_until_it_meets_the_budget_as_measured(fake_platform, tmp_path,
                                                                                              monkeypatch):
    # the network really runs 15 % slower than its table says wherever it has been pruned
    def measured(self, model, x, base=None):
        x = self._batch(x)
        ratio = 1.15 * self.table.predict(model, x) / self.table.predict(base, x)
        return {"latency_measured_ms": ratio, "base_latency_measured_ms": 1.0, "latency_measured_ratio": ratio}

    monkeypatch.setattr(LatencyMetric, "final_report", measured)
    model, x = convnet(), torch.randn(1, 3, 16, 16)
    options = dict(budget_ratio=0.8, resource="latency", finetune=lambda m, n: None, evaluate=_param_score,
                   short_term_iters=0, min_channels_step=1, progress=False, log=lambda s: None)
    m = NetAdapt(model, x, work_dir=tmp_path / "w", **options).run().metrics
    assert m["reached_budget"] and m["met_as_measured"] and m["latency_measured_ratio"] <= 0.8
    (correction,) = m["prediction_corrections"]
    assert correction["latency_measured_ratio"] > 0.8 and correction["shift"] > 0
    history = [json.loads(line) for line in (tmp_path / "w" / "history.jsonl").read_text().splitlines()]
    after = [h for h in history if h["iteration"] > correction["after_iteration"]]
    assert after and all(h["prediction_shift"] == pytest.approx(correction["shift"]) for h in after)

    # stopped after the correction and resumed: the shift is applied again, and the run ends the same way
    cut = correction["after_iteration"] + 1
    shutil.copytree(tmp_path / "w", tmp_path / "r")
    (tmp_path / "r" / "history.jsonl").write_text("".join(json.dumps(h) + "\n" for h in history[:cut]))
    shutil.rmtree(tmp_path / "r" / "iterations" / f"{cut + 1:03d}", ignore_errors=True)
    resumed = NetAdapt(model, x, work_dir=tmp_path / "r", resume=True, **options).run()
    assert resumed.metrics["met_as_measured"]
    # (a table rebuilt on resume lacks the entries timed on demand before: interpolation may differ a little)
    assert [h["resource"] for h in resumed.history] == pytest.approx([h["resource"] for h in history], rel=1e-2)


def test_a_table_path_that_is_a_folder_is_refused_up_front(checkpoint, tmp_path, capsys):
    folder = tmp_path / "lutdir"
    folder.mkdir()
    with pytest.raises(PrunekitError, match="is a folder, not a latency table file"):
        LatencyMetric(lut=folder)
    assert main(["lut", "build", "--checkpoint", str(tmp_path / "none"), "--out", str(folder)]) == 2
    assert main(["netadapt", "--checkpoint", str(checkpoint), "--resource", "latency", "--budget-ratio", "0.9",
                 "--lut", str(folder), "--work-dir", str(tmp_path / "w")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and all("is a folder, not a latency table file" in e for e in errors), errors
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck", "lutdir"] and not any(folder.iterdir())
