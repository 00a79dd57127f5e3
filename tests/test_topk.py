"""Top-k accuracy (``--topk``, TrainConfig.topk) in evaluate(), every epoch's record, the console line and metrics.json."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from prunekit.data import TensorSplit
from prunekit.errors import PrunekitError
from prunekit.training import TrainConfig, evaluate, topk_key, train


class Fixed(nn.Module):
    """Returns the logits it was given, whatever the input (row i for sample i)."""

    def __init__(self, logits: torch.Tensor) -> None:
        super().__init__()
        self.logits = logits
        self.dummy = nn.Parameter(torch.zeros(1))

    def forward(self, x):
        return self.logits[x[:, 0, 0, 0].long()] + 0 * self.dummy


def test_evaluate_counts_labels_among_the_k_highest_outputs():
    logits = torch.tensor([[5.0, 4, 3, 2, 1], [1, 5, 4, 3, 2], [1, 2, 3, 4, 5], [5, 1, 2, 3, 4]])
    split = TensorSplit(torch.arange(4.0).view(4, 1, 1, 1), torch.tensor([0, 3, 0, 4]))
    # sample 0: top-1 hit; sample 1: label 3 is 3rd; sample 2: label 0 is last; sample 3: label 4 is 2nd
    res = evaluate(Fixed(logits), split, topk=3)
    assert res["accuracy"] == 0.25 and res[topk_key(3)] == 0.75 and topk_key(3) == "top3_accuracy"
    assert evaluate(Fixed(logits), split, topk=2)["top2_accuracy"] == 0.5
    assert evaluate(Fixed(logits), split, topk=9)["top9_accuracy"] == 1.0  # k beyond the classes: every label
    assert set(evaluate(Fixed(logits), split)) == {"accuracy", "loss"}  # top-1 only by default


def test_every_epoch_record_has_top_k_and_throughput(digits):
    import prunekit

    model = prunekit.create_model("lenet", 10, 1, 8)
    history = train(model, digits.train, TrainConfig(epochs=2, topk=5), val_split=digits.val, progress=False)
    for r in history:
        assert {"train_top5_accuracy", "val_top5_accuracy", "samples_per_s", "val_accuracy"} <= set(r)
        assert r["val_top5_accuracy"] >= r["val_accuracy"] and r["train_top5_accuracy"] >= r["train_accuracy"]
    plain = train(model, digits.train, TrainConfig(epochs=1), val_split=digits.val, progress=False)
    assert not any("top" in key for key in plain[0])


@pytest.mark.parametrize("bad", [0, -1, 2.5, True])
def test_topk_must_be_a_whole_number_from_one(bad):
    with pytest.raises(PrunekitError, match="topk"):
        TrainConfig(topk=bad)


def test_train_command_topk(tmp_path, capsys):
    from prunekit.cli.main import main
    from prunekit.pipeline.steps import evaluate_checkpoint

    out = tmp_path / "ck"
    assert main(["train", "--model", "lenet", "--dataset", "digits", "--epochs", "2", "--topk", "5", "--out", str(out),
                 "--quiet"]) == 0
    console = capsys.readouterr().out
    assert console.count("train top-5 ") == 2 and console.count("val top-5 ") == 2 and "samples/s" in console
    records = [json.loads(line) for line in (out / "train_log.jsonl").read_text().splitlines()]
    assert all({"train_top5_accuracy", "val_top5_accuracy", "samples_per_s"} <= set(r) for r in records)
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test_top5_accuracy"] >= metrics["test_accuracy"] and "val_top5_accuracy" in metrics
    assert json.loads((out / "model.json").read_text())["meta"]["train"]["topk"] == 5
    assert "test_top5_accuracy" in evaluate_checkpoint(out)  # re-measured with the recorded setting
    assert main(["train", "--model", "lenet", "--topk", "0", "--out", str(tmp_path / "x")]) == 2
    assert "--topk must be a whole number" in capsys.readouterr().err
