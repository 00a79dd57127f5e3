"""NetAdapt on Ray: the same choices as the serial run, retries after a worker dies, failed candidates recorded."""

import json

import pytest

ray = pytest.importorskip("ray")

from prunekit import NetAdapt  # noqa: E402
from prunekit.cli.main import main  # noqa: E402
from prunekit.executors import make_executor  # noqa: E402
from tests.faults import AlwaysDie, DieOnce, WithFault  # noqa: E402
from prunekit.io import save_checkpoint  # noqa: E402
from prunekit.pipeline.netadapt_step import DataEvaluate, DataFinetune  # noqa: E402

OPTS = dict(short_term_iters=10, min_channels_step=2, init_reduction_ratio=0.08, reduction_decay=0.9, seed=0,
            budget_ratio=0.6, step_mode="resource")


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


def _run(model, data, work_dir, executor=None, **kw):
    return NetAdapt(model, data.example_inputs(), finetune=DataFinetune(data), evaluate=DataEvaluate(data),
                    work_dir=work_dir, executor=executor, progress=False, log=lambda s: None, **{**OPTS, **kw}).run()


def _choices(history):
    return [(h["group"], h["resource"]) for h in history]


@pytest.fixture(scope="module")
def serial(lenet, digits, tmp_path_factory):
    return _run(lenet, digits, tmp_path_factory.mktemp("serial") / "w").history


def test_ray_gives_the_serial_choices(local_ray, lenet, digits, serial, tmp_path):
    history = _run(lenet, digits, tmp_path / "w", make_executor("ray")).history
    assert _choices(history) == _choices(serial)
    assert [h["accuracy"] for h in history] == [h["accuracy"] for h in serial]


def test_a_killed_worker_is_retried_and_the_run_completes(local_ray, lenet, digits, serial, tmp_path):
    group = serial[0]["group"]
    history = _run(lenet, digits, tmp_path / "w", WithFault(make_executor("ray"), DieOnce(tmp_path / "faults", group))).history
    assert (tmp_path / "faults" / f"died-{group}").exists()  # it really died once
    assert _choices(history) == _choices(serial)


def test_a_candidate_failing_every_attempt_is_recorded(local_ray, lenet, digits, serial, tmp_path):
    doomed = serial[0]["group"]
    result = _run(lenet, digits, tmp_path / "w", WithFault(make_executor("ray", max_retries=1), AlwaysDie(doomed)),
                  max_iters=3)
    assert len(result.history) == 3
    for h in result.history:
        entry = next(c for c in h["candidates"] if c["group"] == doomed)
        if entry["status"] != "skipped":
            assert entry["status"] == "failed" and "retries" in entry["error"]
        assert h["group"] != doomed
    lines = (tmp_path / "w" / "history.jsonl").read_text().splitlines()
    assert any(c["status"] == "failed" for c in json.loads(lines[0])["candidates"])


def test_cli_executor_ray_and_resume_with_serial(local_ray, lenet, digits, tmp_path, serial):
    save_checkpoint(tmp_path / "base", lenet, input_shape=(1, 8, 8), meta={"data": {"dataset": "digits"}})
    args = ["netadapt", "--checkpoint", str(tmp_path / "base"), "--work-dir", str(tmp_path / "w"), "--budget-ratio", "0.6",
            "--short-term-iters", "10", "--min-channels-step", "2", "--init-reduction-ratio", "0.08",
            "--reduction-decay", "0.9", "--seed", "0", "--step-mode", "resource", "--no-distill",  # the API run has no teacher
            "--quiet"]
    assert main([*args, "--executor", "ray", "--cpus-per-candidate", "1", "--max-iters", "2"]) == 0
    assert main(["netadapt", "--work-dir", str(tmp_path / "w"), "--resume", "--max-iters", "1000", "--quiet"]) == 0
    history = [json.loads(line) for line in (tmp_path / "w" / "history.jsonl").read_text().splitlines()]
    assert _choices(history) == _choices(serial)


def test_ray_options_need_the_ray_executor(tmp_path, capsys):
    assert main(["netadapt", "--checkpoint", str(tmp_path), "--work-dir", str(tmp_path / "w"), "--budget-ratio", "0.5",
                 "--cpus-per-candidate", "2"]) == 2
    assert "need --executor ray" in capsys.readouterr().err


@pytest.mark.parametrize("mode", ["adaptive-bn", "halving"])
def test_ray_gives_the_serial_choices_in_every_scoring_mode(local_ray, tmp_path, mode):
    import prunekit
    from prunekit.algorithms.netadapt import NetAdaptConfig
    from prunekit.data import load_dataset
    from prunekit.pipeline.netadapt_task import data_task
    from prunekit.training import TrainConfig, seed_everything, train

    data = load_dataset("digits", train_subset=200)
    seed_everything(0)
    model = prunekit.create_model("resnet20", 10, 1, 8, width=4)
    train(model, data.train, TrainConfig(epochs=1), progress=False)
    cfg = NetAdaptConfig().with_changes(budget_ratio=0.85, scoring=mode, short_term_iters=2, min_channels_step=2,
                                        init_reduction_ratio=0.08, bn_batches=2, score_samples=50, halving_keep=2,
                                        max_iters=2)
    task = data_task(data, cfg, batch_size=32)

    def run(work, executor):
        return NetAdapt(model, data.example_inputs(), finetune=task.finetune, evaluate=task.evaluate,
                        score=task.score, calibration_data=task.calibration_data, work_dir=work, config=cfg,
                        executor=executor, progress=False, log=lambda s: None).run().history

    serial = run(tmp_path / "serial", None)
    distributed = run(tmp_path / "ray", make_executor("ray"))
    assert [(h["group"], h["resource"], h["accuracy"]) for h in distributed] == \
        [(h["group"], h["resource"], h["accuracy"]) for h in serial]
