"""``prunekit config``: a full default config file, derived from the settings and the parser, that runs unchanged."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields

import pytest
import yaml

from prunekit.algorithms.netadapt import NetAdaptConfig
from prunekit.algorithms.oneshot import PruneConfig
from prunekit.cli import cmd_config, cmd_run
from prunekit.cli.main import build_parser, main
from prunekit.cli.options import add_settings, apply_config
from prunekit.errors import PrunekitError
from prunekit.executors import ExecutorConfig
from prunekit.latency.config import LatencyConfig
from prunekit.pipeline.context import DataConfig
from prunekit.settings import Settings, default_of, setting
from prunekit.training import TrainConfig


def parser_of(command):
    return build_parser()[1][command]


def render(*args):
    return cmd_config.render(parser_of, *args)


def cli_fields(cls) -> dict[str, object]:
    """name -> default of every command-line field of ``cls`` (nested settings flattened)."""
    out = {}
    for f in fields(cls):
        value = default_of(f)
        if isinstance(value, Settings):
            out.update(cli_fields(type(value)))
        elif f.metadata.get("cli", True):
            out[f.name] = value
    return out


def keys_with_comments(text: str) -> dict[str, list[str]]:
    """key -> the comment lines right above it."""
    lines, out = text.splitlines(), {}
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            key = line.split(":", 1)[0]
            j, comments = i - 1, []
            while j >= 0 and lines[j].startswith("# ") and not lines[j].startswith("# =="):
                comments.insert(0, lines[j])
                j -= 1
            out[key] = comments
    return out


def test_netadapt_file_has_every_setting_with_its_default_and_a_comment():
    text = render("run", "netadapt")
    doc = yaml.safe_load(text)
    expected = {**cli_fields(DataConfig), **cli_fields(TrainConfig), **cli_fields(NetAdaptConfig),
                **cli_fields(ExecutorConfig)}
    for name, default in expected.items():
        assert name in doc, name
        assert doc[name] == default, name
    assert set(cli_fields(LatencyConfig)) <= set(doc)
    assert doc["method"] == "netadapt" and doc["model"] == "lenet" and doc["percent"] == 0.5
    for name in ("ratio", "scope", "round_to", "threshold", "gradient_batches"):  # one-shot only
        assert name not in doc
    comments = keys_with_comments(text)
    assert set(comments) == set(doc)
    assert all(comments[k] for k in doc), [k for k in doc if not comments[k]]
    assert any("REQUIRED" in c for c in comments["out"])
    assert "# -- latency budget settings --" in text
    for title in ("data", "training", "NetAdapt", "executor", "step 3 (long-term fine-tuning)"):
        assert f"# ==== {title} ====" in text


def test_oneshot_file_leaves_netadapt_out():
    doc = yaml.safe_load(render("run", "l1"))
    assert doc["method"] == "l1"
    assert {k for k in cli_fields(PruneConfig) if k != "criterion"} <= set(doc)
    for name in ("short_term_iters", "init_reduction_ratio", "platform", "executor", "work_dir", "resume", "criterion"):
        assert name not in doc
    assert set(cli_fields(TrainConfig)) <= set(doc)


def test_every_key_round_trips_through_the_run_parser():
    text = render("run", "netadapt")
    parser = parser_of("run")
    apply_config(parser, yaml.safe_load(text))
    args = parser.parse_args([])
    plan = cmd_run.plan_from_args(args)
    assert plan.method == "netadapt" and plan.train == TrainConfig()
    cfg = NetAdaptConfig().with_changes(**plan.netadapt_options)
    assert cfg == NetAdaptConfig(budget_ratio=0.5)
    assert DataConfig.from_dict(plan.data_given) == DataConfig()


def test_a_new_setting_appears_by_itself(monkeypatch):
    @dataclass
    class Extra(Settings):
        new_knob: int = setting(7, "a brand-new knob")
        maybe: float | None = setting(None, "an optional one")

    original = cmd_run.add_arguments

    def add_arguments(p):
        original(p)
        add_settings(p, Extra, "extras")

    monkeypatch.setattr(cmd_run, "add_arguments", add_arguments)
    text = render("run", "netadapt")
    assert "# ==== extras ====\n\n# a brand-new knob\nnew_knob: 7\n" in text
    assert "# an optional one\nmaybe: null\n" in text


def test_set_writes_values_and_refuses_bad_ones():
    doc = yaml.safe_load(render("run", "netadapt", ["epochs=2", "exclude=[fc3]", "netadapt_lr=0.1",
                                                              "model=vgg11"]))
    assert (doc["epochs"], doc["exclude"], doc["finetune_lr"], doc["model"]) == (2, ["fc3"], 0.1, "vgg11")
    with pytest.raises(PrunekitError, match="unknown config key 'bogus'"):
        render("run", None, ["bogus=1"])
    with pytest.raises(PrunekitError, match="'epochs' needs a number"):
        render("run", None, ["epochs=abc"])
    with pytest.raises(PrunekitError, match="KEY=VALUE"):
        render("run", None, ["epochs"])
    with pytest.raises(PrunekitError, match="unknown method"):
        render("run", "magic")
    with pytest.raises(PrunekitError, match="run only"):
        render("netadapt", "l1")


def test_a_yaml_number_setting_reads_what_its_flag_reads_and_refuses_nan():
    parser = parser_of("train")
    apply_config(parser, yaml.safe_load("epochs: 1e-9\nlr: 2E-3\n"))  # YAML 1.1 strings; --epochs 1e-9 is a number
    assert (parser.get_default("epochs"), parser.get_default("lr")) == (1e-9, 2e-3)
    for text in ("epochs: .nan\n", "lr: .inf\n", "weight_decay: nan\n"):
        with pytest.raises(PrunekitError, match=r"^config file: key '\w+' must be a finite number, got (nan|inf)$"):
            apply_config(parser_of("train"), yaml.safe_load(text))
    with pytest.raises(PrunekitError, match="'epochs' needs a number, got '1e-9x'"):
        apply_config(parser_of("train"), yaml.safe_load("epochs: 1e-9x\n"))


def test_a_repeatable_option_takes_one_item_a_list_or_a_mapping_in_yaml(capsys):
    from prunekit.cli.options import parse_model_args

    for text in ("model_arg: width=8\n", "model_arg: [width=8]\n", "model_arg: {width: 8}\n"):
        parser = parser_of("train")
        apply_config(parser, yaml.safe_load(text))
        assert parse_model_args(parser.get_default("model_arg")) == {"width": 8}, text
    assert main(["config", "--command", "train", "--set", "model_arg=width=8"]) == 0  # what config writes, read back
    parser = parser_of("train")
    apply_config(parser, yaml.safe_load(capsys.readouterr().out))
    assert parse_model_args(parser.get_default("model_arg")) == {"width": 8}


def test_the_written_oneshot_file_runs_unchanged(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["config", "--method", "l1", "--output", "my.yaml"]) == 0
    assert main(["run", "--config", "my.yaml", "--quiet"]) == 0
    metrics = json.loads((tmp_path / "runs/my-run/finetuned/metrics.json").read_text())
    base = json.loads((tmp_path / "runs/my-run/base/metrics.json").read_text())
    assert metrics["params"] < base["params"] and metrics["test_accuracy"] > 0.5


def test_the_written_netadapt_files_run_unchanged(tmp_path, monkeypatch, capsys):
    """The run file (quicker values written with --set), then `--command netadapt`'s file on its base."""
    monkeypatch.chdir(tmp_path)
    quick = ["--set", "epochs=2", "--set", "finetune_epochs=1", "--set", "short_term_iters=5",
             "--set", "min_channels_step=4", "--set", "init_reduction_ratio=0.1"]
    assert main(["config", "--method", "netadapt", *quick, "-o", "run.yaml"]) == 0
    assert main(["run", "--config", "run.yaml", "--quiet"]) == 0
    pruned = json.loads((tmp_path / "runs/my-run/pruned/metrics.json").read_text())
    assert pruned["reached_budget"]
    assert main(["config", "--command", "netadapt", "--set", "short_term_iters=5", "--set", "max_iters=2",
                 "-o", "na.yaml"]) == 0
    capsys.readouterr()
    assert main(["netadapt", "--config", "na.yaml", "--quiet"]) == 0
    history = (tmp_path / "runs/my-netadapt/history.jsonl").read_text().splitlines()
    assert len(history) == 2


def test_printed_by_default(capsys):
    assert main(["config", "--command", "train"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Every option of `prunekit train`") and "\nmodel: lenet\n" in out


def test_from_fills_a_partial_config_written_with_tinynn_names(tmp_path):
    partial = tmp_path / "config.yml"
    partial.write_text("budget_type: params\nbudget_ratio: 0.75\nbudget_reduce_rate_init: 0.05\nnetadapt_lr: 0.001\n"
                       "netadapt_max_iter: 30\nnetadapt_max_rounds: 50\nnetadapt_min_feature_size: 4\n")
    doc = yaml.safe_load(cmd_config.render(parser_of, "netadapt", None, ["netadapt_lr=0.002"], partial))
    assert (doc["resource"], doc["budget_ratio"], doc["init_reduction_ratio"], doc["finetune_lr"],
            doc["short_term_iters"], doc["max_iters"], doc["min_channels_step"]) == \
        ("params", 0.75, 0.05, 0.002, 30, 50, 4)
    assert "budget_type" not in doc and doc["reduction_decay"] == 0.96  # prunekit's names, every default
    partial.write_text("metrics: l1_norm\nnetadapt_dir: runs/na\n")  # TinyNeuralNetwork's names for these too
    doc = yaml.safe_load(cmd_config.render(parser_of, "netadapt", None, [], partial))
    assert (doc["criterion"], doc["work_dir"]) == ("l1_norm", "runs/na")
