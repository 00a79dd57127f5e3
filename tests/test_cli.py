"""The command line: train, eval, run, config files, one-line errors."""

import json
import os
import subprocess
import sys

import pytest
import torch
import yaml

from prunekit.cli.main import main


def _cli(*args, env_cache=None):
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", "prunekit.cli.main", *args], capture_output=True, text=True, env=env)


def test_train_then_eval(tmp_path, capsys):
    out = tmp_path / "lenet"
    assert main(["train", "--model", "lenet", "--dataset", "digits", "--epochs", "2", "--out", str(out), "--quiet"]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert {"test_accuracy", "val_accuracy", "macs", "params", "flops"} <= set(metrics)
    assert 0.5 < metrics["test_accuracy"] <= 1 and metrics["flops"] == 2 * metrics["macs"]
    log = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [1, 2]
    capsys.readouterr()
    assert main(["eval", "--checkpoint", str(out)]) == 0
    assert f"{metrics['test_accuracy']:.4f}" in capsys.readouterr().out


def test_train_on_json_folder(tmp_path, json_dataset):
    out = tmp_path / "ck"
    code = main(["train", "--model", "helloworld", "--dataset", "json", "--data-dir", str(json_dataset),
                 "--epochs", "3", "--val-size", "5", "--out", str(out), "--quiet"])
    assert code == 0
    desc = json.loads((out / "model.json").read_text())
    assert desc["input_shape"] == [1, 6, 6] and desc["model"]["num_classes"] == 3


def test_config_file_and_flag_override(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"model": "dnn_2", "dataset": "digits", "epochs": 1, "out": str(tmp_path / "a")}))
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "b"), "--quiet"]) == 0
    assert (tmp_path / "b" / "metrics.json").exists() and not (tmp_path / "a").exists()


def test_config_file_with_unknown_key(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: lenet\nepochz: 3\n")
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "o")]) == 2
    assert "unknown config key 'epochz'; did you mean 'epochs'?" in capsys.readouterr().err


def test_config_file_with_a_section_says_to_flatten_it(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: lenet\nnetadapt:\n  budget_ratio: 0.5\n")
    assert main(["run", "--config", str(cfg), "--work-dir", str(tmp_path / "w")]) == 2
    assert "'netadapt'; its keys (budget_ratio) are options themselves: write them at the top level" in \
        capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_run_with_a_one_shot_method_still_refuses_an_out_of_range_netadapt_setting(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: lenet\ndataset: digits\nmethod: l1\npercent: 0.5\ngroup_share: 2\n")
    assert main(["run", "--config", str(cfg), "--out", str(tmp_path / "o"), "--quiet"]) == 2
    assert "--group-share must be in (0, 1), got 2" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_run_with_a_one_shot_method_names_the_netadapt_settings_it_does_not_use(tmp_path, capsys):
    assert main(["run", "--model", "lenet", "--dataset", "digits", "--epochs", "1", "--step", "1", "--method", "l1",
                 "--group-share", "0.2", "--out", str(tmp_path), "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "--group-share only applies to --method netadapt" in err and "--epochs" not in err
    # run's --criterion is NetAdapt's: with a one-shot method it is named as unused, with the method to use instead
    assert main(["run", "--step", "2", "--method", "l1", "--criterion", "fpgm", "--percent", "0.3",
                 "--out", str(tmp_path / "none"), "--quiet"]) == 2  # (no step 1 folder: stops after the plan)
    err = capsys.readouterr().err
    assert "--criterion only applies to --method netadapt: step 2 (l1) does not use it (its criterion is --method: " \
           "--method fpgm)" in err
    assert main(["run", "--step", "2", "--method", "l1", "--criterion", "l1", "--percent", "0.3",
                 "--out", str(tmp_path / "none"), "--quiet"]) == 2
    assert "note" not in capsys.readouterr().err


def test_run_refuses_a_step_whose_input_no_chosen_step_makes_before_any_work(tmp_path, capsys):
    assert main(["run", "--model", "lenet", "--dataset", "digits", "--method", "l1", "--percent", "0.3",
                 "--step", "13", "--epochs", "0.2", "--out", str(tmp_path / "ri"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "step 3 needs" in err and "pruned from step 2" in err and "(e.g. --step 123)" in err
    assert not (tmp_path / "ri").exists()


def test_run_step_1_reports_test_accuracy(tmp_path, capsys):
    assert main(["run", "--model", "lenet", "--dataset", "digits", "--epochs", "1", "--step", "1",
                 "--out", str(tmp_path), "--quiet"]) == 0
    assert "test accuracy" in capsys.readouterr().out
    assert (tmp_path / "base" / "model.safetensors").exists()


@pytest.mark.parametrize("args,message", [
    (["train", "--model", "no_such_model", "--dataset", "digits", "--out", "X"], "valid models: alexnet"),
    (["train", "--model", "lenet", "--dataset", "no_such_data", "--out", "X"], "valid: cifar10"),
    (["eval", "--checkpoint", "/nonexistent/ckpt"], "does not exist"),
    (["train", "--model", "lenet", "--dataset", "json", "--data-dir", "/nonexistent", "--out", "X"], "does not exist"),
])
def test_bad_input_is_one_line_without_traceback(args, message):
    result = _cli(*args)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_debug_shows_the_traceback():
    result = _cli("--debug", "eval", "--checkpoint", "/nonexistent/ckpt")
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_a_wrong_subcommand_points_to_the_top_level_help(capsys):
    assert main(["nosuchcmd"]) == 2
    err = capsys.readouterr().err
    assert "invalid choice 'nosuchcmd'" in err and err.strip().endswith("(see prunekit --help)"), err
    assert main(["train", "--bogus"]) == 2
    assert "(see prunekit train --help)" in capsys.readouterr().err


def test_a_budget_flag_replaces_the_config_files_other_budget_option(tmp_path):
    """Flags override the config file, also across alternatives: ratio in the file, --budget-ratio on the line."""
    import json

    cfg = tmp_path / "c.yaml"
    cfg.write_text("model: lenet\ninput_shape: [1, 8, 8]\nratio: 0.5\n")
    assert main(["prune", "--config", str(cfg), "--budget-ratio", "0.3", "--out", str(tmp_path / "o"), "--quiet"]) == 0
    import prunekit

    macs = json.loads((tmp_path / "o" / "metrics.json").read_text())["macs"]
    assert macs <= 0.3 * prunekit.count(prunekit.create_model("lenet", 10, 1, 8), torch.zeros(1, 1, 8, 8)).macs
