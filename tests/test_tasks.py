"""Beyond classification (issue 17 item 3): a task's loss and metric from the user, through the Python API,
the training loop, NetAdapt and the CLI; segmentation masks as data; a user's loss or metric named only
by a file is never imported."""

from __future__ import annotations

import json
import textwrap

import pytest
import torch
import torch.nn.functional as F
import yaml
from torch import nn

import prunekit
from prunekit.cli.main import main
from prunekit.data.bundle import DataBundle, TensorSplit
from prunekit.data.shapes import generate_shapes
from prunekit.data.validate import check_fits, check_labels, check_split
from prunekit.errors import PrunekitError
from prunekit.models import trusting
from prunekit.training import TrainConfig, evaluate, make_objective, train
from prunekit.training.loop import _loss
from prunekit.training.meters import MeanIoU

SHAPES = ["--dataset", "shapes", "--image-size", "16", "--train-subset", "128", "--test-subset", "32",
          "--val-size", "32"]


def tiny_seg(num_classes: int = 4, in_channels: int = 3) -> nn.Module:
    """Two 3x3 convolutions and a 1x1 classifier: per-pixel logits."""
    return nn.Sequential(nn.Conv2d(in_channels, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(),
                         nn.Conv2d(16, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.Conv2d(16, num_classes, 1))


def _split(n: int, seed: int) -> TensorSplit:
    s = generate_shapes(n, 16, seed=seed)
    return TensorSplit(s.images.float() / 127.5 - 1, s.masks)


# -- metrics and losses ------------------------------------------------------------------------------------------


def test_mean_iou_counts_every_pixel_of_every_batch():
    logits = F.one_hot(torch.tensor([[0, 1], [1, 2]]), 3).permute(2, 0, 1)[None].float()  # predicts [[0,1],[1,2]]
    meter = MeanIoU(3)
    meter.update(logits, torch.tensor([[[0, 1], [1, 1]]]))
    # class 0: 1/1, class 1: 2/3 (predicted at 2, true at 3), class 2: 0/1
    assert meter.compute() == pytest.approx((1 + 2 / 3 + 0) / 3)
    meter.update(logits, torch.tensor([[[0, 1], [1, 2]]]))  # a perfect batch: IoU is pooled, not averaged
    assert meter.compute() == pytest.approx((1 + 4 / 5 + 1 / 2) / 3)


def test_objectives_by_name_and_refusals():
    seg = make_objective("segmentation", num_classes=4)
    assert (seg.metric, seg.loss_name, seg.targets) == ("miou", "cross_entropy", "masks")
    assert make_objective().metric == "accuracy"
    with pytest.raises(PrunekitError, match="unknown task 'detection'"):
        make_objective("detection")
    with pytest.raises(PrunekitError, match="miou needs the number of classes"):
        make_objective("segmentation")
    with pytest.raises(PrunekitError, match="not a package.module:function"):
        make_objective(metric="os.path:join;rm")


def test_distillation_is_unchanged_for_labels_and_averaged_over_pixels_for_masks():
    cfg = TrainConfig(distill_alpha=1.0, distill_temperature=2.0)
    s, t = torch.randn(5, 4), torch.randn(5, 4)
    batchmean = F.kl_div(F.log_softmax(s / 2, 1), F.softmax(t / 2, 1), reduction="batchmean") * 4
    assert torch.allclose(_loss(make_objective(), s, torch.zeros(5, dtype=torch.long), t, cfg), batchmean)
    dense_s, dense_t = s[:, :, None, None].expand(5, 4, 3, 3), t[:, :, None, None].expand(5, 4, 3, 3)
    seg = make_objective("segmentation", num_classes=4)
    assert torch.allclose(_loss(seg, dense_s, torch.zeros(5, 3, 3, dtype=torch.long), dense_t, cfg), batchmean)


# -- training and evaluation ---------------------------------------------------------------------------------------


def test_builtin_segmentation_task_trains_a_per_pixel_model():
    torch.manual_seed(0)
    model, task = tiny_seg(), make_objective("segmentation", num_classes=4)
    data, val = _split(256, 0), _split(64, 1)
    before = evaluate(model, val, task=task)
    history = train(model, data, TrainConfig(epochs=3, lr=0.01, batch_size=32, optimizer="adam"), val_split=val,
                    progress=False, task=task)
    after = evaluate(model, val, task=task)
    assert after["metric"] == "miou" and history[-1]["metric"] == "miou"
    assert after["loss"] < before["loss"] and after["accuracy"] > before["accuracy"]
    assert history[-1]["val_accuracy"] == pytest.approx(after["accuracy"])
    with pytest.raises(PrunekitError, match="--topk 5 applies to class labels"):
        evaluate(model, val, task=task, topk=5)


def test_python_api_netadapt_with_a_custom_loss_and_a_negative_loss_metric(tmp_path):
    """Any metric works where higher is better: here minus the loss, on a segmentation model."""
    torch.manual_seed(0)
    data, val = _split(128, 0), _split(48, 1)
    calls = {"loss": 0}

    def dice_ce(outputs, targets):
        calls["loss"] += 1
        probs, onehot = outputs.softmax(1), F.one_hot(targets, 4).permute(0, 3, 1, 2).float()
        dice = 1 - (2 * (probs * onehot).sum((2, 3)) + 1) / (probs.sum((2, 3)) + onehot.sum((2, 3)) + 1)
        return F.cross_entropy(outputs, targets) + dice.mean()

    task = make_objective("segmentation", loss=dice_ce, metric=lambda o, t: -F.cross_entropy(o, t).item(),
                          num_classes=4)

    def finetune(model, iters):
        train(model, data, TrainConfig(lr=0.01, batch_size=32, scheduler="none"), steps=iters, progress=False,
              task=task)

    def score(model):
        return evaluate(model, val, task=task)

    model = tiny_seg()
    finetune(model, 8)
    work = tmp_path / "na"
    result = prunekit.NetAdapt(model, torch.zeros(1, 3, 16, 16), finetune=finetune, evaluate=score,
                               work_dir=work, metric_name="neg_loss", budget_ratio=0.6, short_term_iters=2,
                               min_channels_step=4, init_reduction_ratio=0.2, progress=False, log=lambda s: None).run()
    assert calls["loss"] > 0 and result.metrics["reached_budget"]
    assert result.metrics["metric"] == "neg_loss" and result.metrics["val_accuracy"] < 0
    assert json.loads((work / "config.json").read_text())["metric"] == "neg_loss"
    for record in result.history:  # the kept candidate is the one with the highest (least negative) score
        ok = [c for c in record["candidates"] if c["status"] == "ok"]
        assert max(ok, key=lambda c: c["accuracy"])["group"] == record["group"]
    assert main(["history", str(work), "--plot", str(tmp_path / "p.png")]) == 0
    assert main(["pick", str(work), "--iter", str(len(result.history)), "--out", str(tmp_path / "picked")]) == 0
    assert json.loads((tmp_path / "picked/metrics.json").read_text())["metric"] == "neg_loss"


# -- data: masks ---------------------------------------------------------------------------------------------------


def _bundle(y: torch.Tensor, size: int = 8) -> DataBundle:
    split = TensorSplit(torch.zeros(len(y), 3, size, size), y)
    return DataBundle("masks", split, split, split, 4, 3, (size, size))


def test_masks_pass_validation_and_check_fits():
    y = torch.randint(0, 4, (6, 8, 8))
    check_split(TensorSplit(torch.zeros(6, 3, 8, 8), y), (3, 8, 8), 4, "masks.pt")
    check_fits(_bundle(y), (3, 8, 8), 4, "runs/seg")
    with pytest.raises(PrunekitError, match="has 4 class outputs but dataset masks has 5"):
        check_fits(DataBundle("masks", *[TensorSplit(torch.zeros(1, 3, 8, 8), y[:1])] * 3, 5, 3, (8, 8)),
                   (3, 8, 8), 4, "runs/seg")


def test_bad_masks_are_refused_naming_the_sample_and_pixel():
    y = torch.randint(0, 4, (6, 8, 8))
    y[4, 2, 5] = 7
    with pytest.raises(PrunekitError, match=r"masks.pt: label 7 of pixel \(2, 5\) of sample 4 is out of range for "
                                            r"4 classes"):
        check_labels(y, 4, "masks.pt")
    y[4, 2, 5], y[1, 0, 0] = 0, -1
    with pytest.raises(PrunekitError, match=r"label -1 of pixel \(0, 0\) of sample 1 is negative"):
        check_labels(y, 4, "masks.pt")
    with pytest.raises(PrunekitError, match="masks are 8x8 but the images 6x6"):
        check_split(TensorSplit(torch.zeros(6, 3, 6, 6), y.clamp(0)), (3, 6, 6), 4, "masks.pt")
    with pytest.raises(PrunekitError, match=r"per pixel \[N, H, W\]"):
        check_labels(torch.zeros(2, 8), 4, "masks.pt")


def test_the_shapes_set_is_seeded_and_its_task_must_match():
    a, b = generate_shapes(8, 16, seed=3), generate_shapes(8, 16, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert set(a.masks.unique().tolist()) <= {0, 1, 2, 3} and (a.boxes[..., 0] > 0).any(1).all()
    drawn = a.boxes[a.boxes[..., 0] > 0]
    assert (drawn[:, 3] > drawn[:, 1]).all() and (drawn[:, 4] > drawn[:, 2]).all()
    from prunekit.pipeline import DataConfig

    with pytest.raises(PrunekitError, match="masks .* but task classification expects labels: pass --task "
                                            "segmentation"):
        DataConfig(dataset="shapes", image_size=8).load()
    data = DataConfig(dataset="shapes", image_size=8, task="segmentation").load()
    assert data.task.metric == "miou" and data.train.y.shape[1:] == (8, 8)


# -- the CLI: --loss / --metric module:function, and trust ---------------------------------------------------------

USER_MODULE = '''
import torch
import torch.nn.functional as F
from torch import nn

CALLS = {"loss": 0}


def tiny_seg(num_classes=4, in_channels=3):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
                         nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, num_classes, 1))


def focal(outputs, targets):
    CALLS["loss"] += 1
    ce = F.cross_entropy(outputs, targets, reduction="none")
    return ((1 - torch.exp(-ce)) ** 2 * ce).mean()


class Dice:
    """A metric class (update / compute): mean Dice over classes 1-3."""

    def __init__(self, num_classes):
        self.num_classes, self.inter, self.total = num_classes, torch.zeros(num_classes), torch.zeros(num_classes)

    def update(self, outputs, targets):
        pred = F.one_hot(outputs.argmax(1), self.num_classes).flatten(0, 2)
        true = F.one_hot(targets, self.num_classes).flatten(0, 2)
        self.inter += (pred * true).sum(0)
        self.total += pred.sum(0) + true.sum(0)

    def compute(self):
        return float((2 * self.inter / self.total.clamp(min=1))[1:].mean())
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """``usertask``: a segmentation model, a loss and a metric class, importable from tmp_path."""
    (tmp_path / "usertask.py").write_text(textwrap.dedent(USER_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    import importlib
    import sys

    sys.modules.pop("usertask", None)
    return importlib.import_module("usertask")


def test_cli_train_and_netadapt_with_a_users_loss_and_metric(user_module, tmp_path, capsys):
    trust = ["--model-factory", "usertask:tiny_seg"]
    assert main(["train", "--model", "usertask:tiny_seg", *SHAPES, "--task", "segmentation", "--loss",
                 "usertask:focal", "--metric", "usertask:Dice", "--epochs", "1", "--out", "base", "--quiet"]) == 0
    assert user_module.CALLS["loss"] > 0
    metrics = json.loads((tmp_path / "base/metrics.json").read_text())
    assert metrics["metric"] == "Dice" and 0 <= metrics["test_accuracy"] <= 1
    assert "test Dice:" in capsys.readouterr().out
    args = ["netadapt", "--checkpoint", "base", "--budget-ratio", "0.7", "--short-term-iters", "2",
            "--min-channels-step", "4", "--init-reduction-ratio", "0.3", "--work-dir", "na", "--quiet", *trust]
    assert main(args) == 2  # the checkpoint names the loss and metric: not imported unless named again
    assert "the loss usertask:focal is code of yours" in capsys.readouterr().err
    assert main(args + ["--loss", "usertask:focal", "--metric", "usertask:Dice"]) == 0
    out = capsys.readouterr().out
    assert "val Dice" in out and "test Dice:" in out
    assert json.loads((tmp_path / "na/config.json").read_text())["metric"] == "Dice"
    assert main(["eval", "--checkpoint", "base", "--trust-factory"]) == 0


def test_a_metric_named_only_in_a_config_file_is_refused(user_module, tmp_path, capsys):
    (tmp_path / "run.yaml").write_text(yaml.safe_dump({"metric": "usertask:Dice", "task": "segmentation"}))
    args = ["train", "--config", "run.yaml", "--model", "usertask:tiny_seg", *SHAPES, "--epochs", "1", "--out",
            "base", "--quiet"]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "config file run.yaml names the metric usertask:Dice" in err and "--trust-factory" in err
    assert not (tmp_path / "base").exists()
    assert main(args + ["--trust-factory"]) == 0
    assert json.loads((tmp_path / "base/metrics.json").read_text())["metric"] == "Dice"


def test_python_pipeline_imports_a_named_metric_only_when_trusted(user_module):
    with pytest.raises(PrunekitError, match="the metric usertask:Dice is code of yours"):
        make_objective("segmentation", metric="usertask:Dice", num_classes=4)
    with trusting("usertask:Dice"):
        assert make_objective("segmentation", metric="usertask:Dice", num_classes=4).metric == "Dice"


def test_torchvision_segmentation_model_by_name(tmp_path):
    pytest.importorskip("torchvision.models.segmentation")
    torch.manual_seed(0)
    model = prunekit.create_model("torchvision:lraspp_mobilenet_v3_large", 4, 3, 32).eval()
    x = torch.randn(1, 3, 32, 32)
    assert model(x).shape == (1, 4, 32, 32)
    pruned = prunekit.prune(model, x, ratio=0.3).eval()
    assert pruned(x).shape == (1, 4, 32, 32)
    prunekit.save(pruned, tmp_path / "seg", input_shape=(3, 32, 32))
    assert torch.equal(prunekit.load(tmp_path / "seg").eval()(x), pruned(x))
