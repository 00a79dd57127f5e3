"""The pruning commands end to end: prune, finetune, run --step 123, netadapt, history, pick, export, resume after SIGKILL."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import yaml

from prunekit.cli.main import main


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    out = tmp_path_factory.mktemp("base") / "lenet"
    assert main(["train", "--model", "lenet", "--dataset", "digits", "--epochs", "5", "--out", str(out), "--quiet"]) == 0
    return out


def _json(path):
    return json.loads(path.read_text())


def test_prune_then_finetune(base, tmp_path, capsys):
    before = (base / "model.safetensors").read_bytes()
    assert main(["prune", "--checkpoint", str(base), "--criterion", "l1", "--ratio", "0.5", "--out", str(tmp_path / "p")]) == 0
    out = capsys.readouterr().out
    assert "MACs" in out and "group" in out and "pruned" in out
    m = _json(tmp_path / "p" / "metrics.json")
    assert m["macs"] < _json(base / "metrics.json")["macs"]
    assert (base / "model.safetensors").read_bytes() == before
    assert _json(tmp_path / "p" / "model.json")["plan"]
    assert main(["finetune", "--checkpoint", str(tmp_path / "p"), "--epochs", "2", "--out", str(tmp_path / "f"),
                 "--teacher", str(base), "--quiet"]) == 0
    f = _json(tmp_path / "f" / "metrics.json")
    assert f["macs"] == m["macs"] and f["test_accuracy"] > 0.5


def test_slimming_fine_tunes_without_the_sparsity_penalty(tmp_path):
    slim = tmp_path / "slim"
    assert main(["train", "--model", "helloworld", "--dataset", "digits", "--epochs", "0.2", "--sparsity", "1e-4",
                 "--out", str(slim), "--quiet"]) == 0
    assert _json(slim / "model.json")["meta"]["train"]["sparsity"] == 1e-4
    assert main(["prune", "--checkpoint", str(slim), "--criterion", "bn_scale", "--scope", "global", "--ratio", "0.3",
                 "--out", str(tmp_path / "p")]) == 0
    assert main(["finetune", "--checkpoint", str(tmp_path / "p"), "--epochs", "0.2", "--out", str(tmp_path / "f"),
                 "--quiet"]) == 0
    assert _json(tmp_path / "f" / "model.json")["meta"]["train"]["sparsity"] == 0


def test_prune_to_a_budget(base, tmp_path):
    assert main(["prune", "--checkpoint", str(base), "--criterion", "l2", "--budget-ratio", "0.5", "--resource", "params",
                 "--scope", "global", "--out", str(tmp_path / "p")]) == 0
    assert _json(tmp_path / "p" / "metrics.json")["params"] <= 0.5 * _json(base / "metrics.json")["params"]


@pytest.mark.parametrize("args,message", [
    (["--ratio", "1.5"], "ratio must be in"),
    (["--ratio", "0.5", "--criterion", "nope"], "invalid choice 'nope'; valid: bn"),
    (["--budget", "5", "--resource", "macs"], "below what this model can reach"),
])
def test_prune_bad_input(base, tmp_path, capsys, args, message):
    assert main(["prune", "--checkpoint", str(base), "--out", str(tmp_path / "p"), *args]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "p" / "model.json").exists()


def test_prune_refuses_to_overwrite_its_input(base, capsys):
    assert main(["prune", "--checkpoint", str(base), "--ratio", "0.5", "--out", str(base)]) == 2
    assert "never overwritten" in capsys.readouterr().err


def test_run_steps_123_with_l1(tmp_path, capsys):
    assert main(["run", "--model", "vgg11", "--dataset", "digits", "--method", "l1", "--percent", "0.5", "--step", "123",
                 "--epochs", "1", "--finetune-epochs", "1", "--model-arg", "width_mult=0.25", "--out", str(tmp_path),
                 "--quiet"]) == 0
    out = capsys.readouterr().out
    for label in ("base", "pruned", "fine-tuned", "MACs", "params", "test acc"):
        assert label in out
    for step in ("base", "pruned", "finetuned"):
        assert (tmp_path / step / "metrics.json").exists()
    # steps can be run separately: 3 again reads pruned/
    assert main(["run", "--step", "3", "--finetune-epochs", "1", "--out", str(tmp_path), "--quiet"]) == 2  # exists
    assert main(["run", "--step", "3", "--finetune-epochs", "1", "--out", str(tmp_path), "--quiet", "--overwrite"]) == 0


def test_run_config_file(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": "lenet", "dataset": "digits", "method": "fpgm", "percent": 0.3,
                                   "step": "12", "epochs": 1, "out": str(tmp_path / "run")}))
    assert main(["run", "--config", str(cfg), "--quiet"]) == 0
    assert (tmp_path / "run" / "pruned" / "model.json").exists() and not (tmp_path / "run" / "finetuned").exists()


def test_run_step_2_without_step_1_says_so(tmp_path, capsys):
    assert main(["run", "--step", "2", "--method", "l1", "--percent", "0.5", "--out", str(tmp_path)]) == 2
    assert "run it first" in capsys.readouterr().err


NETADAPT = ["--budget-ratio", "0.5", "--resource", "macs", "--short-term-iters", "10", "--min-channels-step", "2",
            "--init-reduction-ratio", "0.08", "--reduction-decay", "0.9", "--seed", "0", "--quiet"]


def test_netadapt_history_pick_export(base, tmp_path, capsys):
    w = tmp_path / "w"
    assert main(["netadapt", "--checkpoint", str(base), "--work-dir", str(w), *NETADAPT]) == 0
    history = [json.loads(line) for line in (w / "history.jsonl").read_text().splitlines()]
    metrics = _json(w / "metrics.json")
    assert metrics["macs"] <= 0.5 * _json(base / "metrics.json")["macs"]
    assert {"test_accuracy", "val_accuracy", "params"} <= set(metrics)
    capsys.readouterr()
    assert main(["history", str(w)]) == 0
    out = capsys.readouterr().out
    assert history[-1]["group"] in out and (w / "tradeoff.png").stat().st_size > 1000
    assert " macs " in out.splitlines()[0] and "(ms)" not in out  # counts have no unit
    assert main(["pick", str(w), "--iter", "2", "--out", str(tmp_path / "it2")]) == 0
    assert _json(tmp_path / "it2" / "metrics.json")["macs"] == history[1]["resource"]
    assert main(["pick", str(w), "--resource", str(history[-1]["resource"]), "--out", str(tmp_path / "last")]) == 0
    assert main(["eval", "--checkpoint", str(tmp_path / "last")]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "last"), "--format", "onnx", "--out", str(tmp_path / "m.onnx")]) == 0
    assert main(["export", "--checkpoint", str(tmp_path / "last"), "--format", "torchscript", "--out", str(tmp_path / "m.pt")]) == 0
    assert (tmp_path / "m.onnx").stat().st_size > 1000


def test_netadapt_killed_mid_iteration_resumes_to_the_same_choices(base, tmp_path):
    full = tmp_path / "full"
    assert main(["netadapt", "--checkpoint", str(base), "--work-dir", str(full), *NETADAPT]) == 0
    killed = tmp_path / "killed"
    cmd = [sys.executable, "-m", "prunekit.cli.main", "netadapt", "--checkpoint", str(base), "--work-dir", str(killed), *NETADAPT]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 120
    history = killed / "history.jsonl"
    while time.time() < deadline and proc.poll() is None:
        if history.exists() and len(history.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    time.sleep(0.1)  # into the middle of the next iteration
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert main(["netadapt", "--work-dir", str(killed), "--resume", "--quiet"]) == 0
    pick = lambda w: [(h["group"], h["resource"]) for h in map(json.loads, (w / "history.jsonl").read_text().splitlines())]  # noqa: E731
    assert pick(killed) == pick(full)


def test_netadapt_yaml_with_tinynn_names(base, tmp_path):
    cfg = tmp_path / "na.yaml"
    cfg.write_text(yaml.safe_dump({"budget_ratio": 0.8, "budget_type": "params", "netadapt_max_iter": 5,
                                   "netadapt_min_feature_size": 2, "netadapt_max_rounds": 2, "netadapt_lr": 0.01}))
    assert main(["netadapt", "--config", str(cfg), "--checkpoint", str(base), "--work-dir", str(tmp_path / "w"), "--quiet"]) == 0
    saved = _json(tmp_path / "w" / "config.json")["netadapt"]
    assert (saved["resource"], saved["short_term_iters"], saved["max_iters"]) == ("params", 5, 2)


def test_run_with_netadapt(tmp_path, capsys):
    assert main(["run", "--model", "lenet", "--dataset", "digits", "--method", "netadapt", "--percent", "0.5",
                 "--step", "123", "--epochs", "3", "--finetune-epochs", "1", "--short-term-iters", "5",
                 "--min-channels-step", "2", "--init-reduction-ratio", "0.1", "--out", str(tmp_path), "--quiet"]) == 0
    assert _json(tmp_path / "pruned" / "metrics.json")["macs"] <= 0.5 * _json(tmp_path / "base" / "metrics.json")["macs"]
    assert "fine-tuned" in capsys.readouterr().out


def test_prune_to_a_budget_named_by_an_alias(base, tmp_path, capsys):
    assert main(["prune", "--checkpoint", str(base), "--resource", "weights", "--budget-ratio", "0.5",
                 "--out", str(tmp_path / "p"), "--quiet"]) == 0
    assert "params" in capsys.readouterr().out.strip().splitlines()[-1]


def test_a_model_built_by_name_is_the_same_model_each_time(tmp_path):
    for name in ("a", "b"):
        assert main(["prune", "--model", "lenet", "--dataset", "digits", "--ratio", "0.3", "--out",
                     str(tmp_path / name), "--quiet"]) == 0
    assert (tmp_path / "a" / "model.safetensors").read_bytes() == (tmp_path / "b" / "model.safetensors").read_bytes()


def test_quantize_and_lut_take_the_options_their_messages_name():
    from prunekit.cli.main import build_parser

    _, commands = build_parser()
    options = {name: {o for a in commands[name]._actions for o in a.option_strings} for name in ("quantize", "lut")}
    assert {"--model-factory", "--trust-factory"} <= options["quantize"] and "--force-lut" in options["lut"]


def test_run_resume_keeps_finished_steps_and_runs_the_rest(tmp_path, capsys):
    args = ["run", "--model", "lenet", "--dataset", "digits", "--method", "l1", "--percent", "0.3", "--epochs", "0.3",
            "--finetune-epochs", "0.3", "--out", str(tmp_path / "r"), "--quiet"]
    assert main(args) == 0
    finished = {s: (tmp_path / "r" / s / "model.safetensors").read_bytes() for s in ("base", "pruned", "finetuned")}
    import shutil
    shutil.rmtree(tmp_path / "r" / "finetuned")  # as if stopped in step 3
    assert main(args) == 2  # without --resume the finished steps are not replaced
    capsys.readouterr()
    assert main([*args, "--resume"]) == 0
    assert "is finished: kept (--resume)" in capsys.readouterr().out
    assert {s: (tmp_path / "r" / s / "model.safetensors").read_bytes() for s in finished} == finished
    # a finished step made with other settings is not kept as if it were this run's: one line naming the setting
    shutil.rmtree(tmp_path / "r" / "finetuned")
    other = [a if a != "0.3" or args[i - 1] != "--epochs" else "0.4" for i, a in enumerate(args)]
    capsys.readouterr()
    assert main([*other, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "r/base was made with other settings (train.epochs: 0.3 then, 0.4 now)" in err
    other = [*args[:args.index("--percent") + 1], "0.5", *args[args.index("--percent") + 2:]]
    assert main([*other, "--resume"]) == 2
    assert "r/pruned was made with other settings (pruning.ratio: 0.3 then, 0.5 now)" in capsys.readouterr().err
    assert not (tmp_path / "r" / "finetuned").exists()


def test_run_resume_keeps_steps_made_by_separate_commands_with_the_same_settings(tmp_path, capsys):
    import yaml

    config = tmp_path / "r.yaml"
    config.write_text(yaml.safe_dump({"model": "lenet", "dataset": "digits", "epochs": 0.3, "method": "l1",
                                      "percent": 0.3, "finetune_epochs": 0.3, "out": str(tmp_path / "a")}))
    assert main(["run", "--config", str(config), "--step", "12", "--quiet"]) == 0
    assert main(["run", "--config", str(config), "--step", "3", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--resume", "--quiet"]) == 0  # every step kept
    assert capsys.readouterr().out.count("is finished: kept (--resume)") == 3
    # what a step uses is compared, not how it was asked for: the data named again as step 1 recorded it
    assert main(["run", "--config", str(config), "--resume", "--dataset", "digits", "--quiet"]) == 0
    capsys.readouterr()
    assert main(["run", "--config", str(config), "--resume", "--finetune-epochs", "0.4", "--quiet"]) == 2
    assert "a/finetuned was made with other settings (train.epochs: 0.3 then, 0.4 now)" in capsys.readouterr().err
