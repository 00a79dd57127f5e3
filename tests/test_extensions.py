"""Every extension point is a registry: a toy resource, latency platform, executor, scoring mode and pipeline step registered
from this file run through the CLI and the Python API with no other change."""

import json

import pytest
import torch

from prunekit.cli.main import main
from prunekit.io import save_checkpoint

NETADAPT = ["--short-term-iters", "2", "--min-channels-step", "2", "--init-reduction-ratio", "0.1", "--max-iters", "2",
            "--quiet"]


@pytest.fixture
def checkpoint(lenet, tmp_path):
    return save_checkpoint(tmp_path / "base", lenet, input_shape=(1, 8, 8), meta={"data": {"dataset": "digits"}})


@pytest.fixture
def registered(monkeypatch):
    """Register into a registry for one test only."""

    def add(registry, name, item):
        monkeypatch.setitem(registry._items, name, item)
        return item

    return add


def test_a_toy_resource(registered, checkpoint, lenet, tmp_path):
    from prunekit.resources import RESOURCES, count
    from prunekit.resources.counts import CountMetric

    class WeightBytes:
        """Bytes of float32 weights."""

        name = "weight_bytes"
        params = CountMetric("params")

        def of_model(self, model, example_inputs):
            return 4.0 * count(model, example_inputs).params

        def what_if(self, structure, example_inputs):
            params = self.params.what_if(structure, example_inputs)
            return lambda removed: 4.0 * params(removed)

    registered(RESOURCES, "weight_bytes", lambda context: WeightBytes())
    work = tmp_path / "w"
    assert main(["netadapt", "--checkpoint", str(checkpoint), "--work-dir", str(work), "--resource", "weight_bytes",
                 "--budget-ratio", "0.8", *NETADAPT]) == 0
    history = [json.loads(line) for line in (work / "history.jsonl").read_text().splitlines()]
    start = json.loads((work / "config.json").read_text())["start"]["resource"]
    assert start == 4 * count(lenet, torch.zeros(1, 1, 8, 8)).params
    assert history and all(h["resource"] <= h["target"] for h in history)


def test_a_toy_executor(registered, checkpoint, tmp_path):
    from prunekit.executors import EXECUTORS

    calls = []

    class Reversed:
        """Candidates in reverse order, in this process."""

        def map(self, fn, shared, jobs):
            calls.append(len(jobs))
            for job in reversed(jobs):
                yield fn(shared, job)

    registered(EXECUTORS, "reversed", lambda config: Reversed())
    args = ["netadapt", "--checkpoint", str(checkpoint), "--budget-ratio", "0.8", *NETADAPT]
    assert main([*args, "--work-dir", str(tmp_path / "a"), "--executor", "reversed"]) == 0
    assert main([*args, "--work-dir", str(tmp_path / "b")]) == 0
    assert calls
    read = lambda w: [(h["group"], h["resource"]) for h in map(json.loads, (w / "history.jsonl").read_text().splitlines())]  # noqa: E731
    assert read(tmp_path / "a") == read(tmp_path / "b")


def test_a_toy_scoring_mode(registered, lenet, digits, tmp_path):
    import prunekit
    from prunekit.algorithms.netadapt.modes import SCORING_MODES
    from prunekit.algorithms.netadapt.scoring import ScoredIteration
    from prunekit.pipeline.netadapt_task import data_task
    from prunekit.algorithms.netadapt import NetAdaptConfig

    def no_training(shared, planned, run):
        """Score the pruned candidates as they are."""
        return ScoredIteration(run(planned), kept_is_tuned=True)

    registered(SCORING_MODES, "as-is", no_training)
    cfg = NetAdaptConfig().with_changes(budget_ratio=0.8, scoring="as-is", min_channels_step=2, max_iters=1)
    task = data_task(digits, cfg)
    result = prunekit.NetAdapt(lenet, digits.example_inputs(), finetune=task.finetune, evaluate=task.evaluate,
                               work_dir=tmp_path / "w", config=cfg, progress=False, log=lambda s: None).run()
    assert result.history[0]["scoring"] == "as-is"
    assert all(c["steps"] == [] for c in result.history[0]["candidates"] if c["status"] == "ok")


def test_a_toy_pipeline_step(registered, tmp_path, capsys):
    from prunekit.pipeline.run import STEPS, Step

    def report(plan):
        """Step 4 of this test: read the fine-tuned network's metrics."""
        return json.loads((plan.folder("3") / "metrics.json").read_text())

    registered(STEPS, "4", Step("report", "reported", report))
    assert main(["run", "--model", "lenet", "--dataset", "digits", "--epochs", "1", "--method", "l1", "--percent",
                 "0.3", "--finetune-epochs", "1", "--step", "1234", "--out", str(tmp_path), "--quiet"]) == 0
    assert "reported" in capsys.readouterr().out


def test_a_toy_platform(registered, checkpoint, tmp_path, capsys):
    """A platform whose "device" prices a network by its parameters: prunekit latency and a NetAdapt latency
    budget in measure mode use it through the CLI with no other change."""
    from prunekit.latency.platforms import PLATFORMS
    from prunekit.latency.platforms.base import Platform
    from prunekit.latency.timing import summarise
    from prunekit.resources import count_params

    class ParamsDevice(Platform):
        """A microsecond per parameter, deterministic."""

        name = "params-device"

        def measure(self, model, example_inputs, *, threads=None, warmup=10, repeats=30, min_time_s=0.5):
            record = {**self.record(threads), "batch_size": int(example_inputs.shape[0])}
            return summarise([count_params(model) * 1e-6] * 3, record)

    registered(PLATFORMS, "params-device", ParamsDevice)
    assert main(["latency", "--checkpoint", str(checkpoint), "--platform", "params-device", "--quiet"]) == 0
    assert "params-device" in capsys.readouterr().out
    work = tmp_path / "w"
    assert main(["netadapt", "--checkpoint", str(checkpoint), "--work-dir", str(work), "--resource", "latency",
                 "--platform", "params-device", "--latency-mode", "measure", "--budget-ratio", "0.8", *NETADAPT]) == 0
    metrics = json.loads((work / "metrics.json").read_text())
    assert metrics["latency_measured_ms"] <= 0.8 * metrics["base_resource"] + 1e-9
    assert json.loads((work / "config.json").read_text())["netadapt"]["latency"]["platform"] == "params-device"
    capsys.readouterr()
    assert main(["history", str(work)]) == 0
    assert "latency (ms)" in capsys.readouterr().out  # the history's resource columns say their unit
