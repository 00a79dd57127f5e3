"""An Ultralytics YOLO model pruned one-shot with prunekit, exported to ONNX and run with ONNX Runtime:
detections before and after pruning compared.

One command (from the repository root; a finished step is skipped when run again)::

    PYTHONPATH=src OMP_NUM_THREADS=1 python examples/yolo/run.py [--out DIR] [--quick]

1. ``ultralytics:yolov8n.yaml`` built through prunekit's model source (random init, nothing downloaded),
   3 classes, 128x128 inputs, trained briefly here with Ultralytics' own detection loss on synthetic
   images of ellipses, rectangles and triangles (``prunekit.data.shapes``, their boxes as targets).
2. ``prunekit prune --model ultralytics:yolov8n.yaml --weights trained.safetensors --ratio 0.3`` (one-shot,
   L2 criterion; the trained weights as Ultralytics' model holds them), then a short fine-tuning of the
   pruned network with the same loss.
3. ``prunekit export --format onnx`` of the trained, the pruned and the fine-tuned networks; each run with
   ONNX Runtime (one thread) on synthetic test images; Ultralytics' NMS on the outputs.
4. Detections compared with the unpruned ONNX model's (count, boxes matched at IoU >= 0.5 with the same class,
   their IoU and score differences) and with the ground truth (precision, recall at IoU 0.5), beside each
   ONNX model's size and ONNX Runtime latency; written to ``DIR/results.json`` and ``DIR/results.md``.

``--quick``: a few training steps only (a smoke test; its figures mean nothing).
"""

from __future__ import annotations

import datetime
import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

os.environ.setdefault("YOLO_OFFLINE", "1")  # prunekit's source sets it too: Ultralytics makes no network check
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from common import cli, done, example_args, write_results, machine, markdown  # noqa: E402

from prunekit.data.shapes import generate_shapes  # noqa: E402
from prunekit.io import load_checkpoint, save_checkpoint  # noqa: E402
from prunekit.models import create_model  # noqa: E402
from prunekit.reports import human  # noqa: E402
from prunekit.resources import measure  # noqa: E402

MODEL, SIZE, CLASSES = "ultralytics:yolov8n.yaml", 128, 3
FULL = {"train_images": 2000, "steps": 600, "finetune_steps": 150, "test_images": 32}
QUICK = {"train_images": 64, "steps": 3, "finetune_steps": 2, "test_images": 4}
CONF, IOU = 0.25, 0.5


def targets(boxes: torch.Tensor) -> dict[str, torch.Tensor]:
    """Ultralytics' training targets (image index, class, normalised centre-size boxes) from shapes' boxes."""
    keep = boxes[..., 0] > 0
    index = torch.arange(len(boxes))[:, None].expand_as(keep)[keep]
    b = boxes[keep]
    x0, y0, x1, y1 = (b[:, i] / SIZE for i in range(1, 5))
    return {"batch_idx": index.float(), "cls": (b[:, 0] - 1)[:, None],
            "bboxes": torch.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], 1)}


def fit(model: torch.nn.Module, steps: int, images: int, lr: float, seed: int = 0) -> list[float]:
    """Train ``model`` (prunekit's YOLO wrapper) in place with Ultralytics' detection loss; the loss every 50 steps."""
    from ultralytics.cfg import get_cfg
    from ultralytics.utils.loss import v8DetectionLoss

    data = generate_shapes(images, SIZE, seed=seed)
    inner = model.model
    inner.args = get_cfg()  # the loss gains (box 7.5, cls 0.5, dfl 1.5)
    loss_fn = v8DetectionLoss(inner)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    losses = []
    for step in range(steps):
        for g in opt.param_groups:
            g["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        idx = torch.randint(0, images, (16,), generator=gen)
        loss, _ = loss_fn(model(data.images[idx].float() / 255), targets(data.boxes[idx]))
        opt.zero_grad(set_to_none=True)
        loss.sum().backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        if step % 50 == 0 or step == steps - 1:
            losses.append(round(float(loss.detach().sum()) / 16, 4))
            print(f"  step {step + 1}/{steps}: loss {losses[-1]:.3f}", flush=True)
    return losses


def save(model: torch.nn.Module, folder: Path, log: dict) -> None:
    """A prunekit checkpoint folder made without a dataset (``data: null``: measured in resources only)."""
    model.eval()
    x = torch.zeros(1, 3, SIZE, SIZE)
    save_checkpoint(folder, model, input_shape=(3, SIZE, SIZE), metrics=measure(model, x).to_dict(),
                    meta={"data": None, "training": log})


def train_steps(out: Path, s: dict) -> None:
    """Steps 1-2: train, prune (CLI), fine-tune; each skipped when its folder is complete."""
    if not done(out / "trained"):
        torch.manual_seed(0)
        model = create_model(MODEL, CLASSES, 3, SIZE)
        t0 = time.perf_counter()
        print(f"training {MODEL} ({CLASSES} classes, {SIZE}x{SIZE}) for {s['steps']} steps of 16 images")
        losses = fit(model, s["steps"], s["train_images"], 2e-3)
        # your weights as Ultralytics' own model holds them (as YOLO("best.pt").model.state_dict() would give)
        out.mkdir(parents=True, exist_ok=True)
        save_file(model.model.state_dict(), str(out / "trained.safetensors"))
        save(model, out / "trained", {"steps": s["steps"], "losses": losses, "seconds": time.perf_counter() - t0})
    if not done(out / "pruned"):
        cli(["prune", "--model", MODEL, "--weights", str(out / "trained.safetensors"), "--num-classes", str(CLASSES),
             "--input-shape", "3", str(SIZE), str(SIZE), "--ratio", "0.3", "--out", str(out / "pruned")])
    if not done(out / "finetuned"):
        model = load_checkpoint(out / "pruned").model
        print(f"fine-tuning the pruned network for {s['finetune_steps']} steps")
        t0 = time.perf_counter()
        losses = fit(model, s["finetune_steps"], s["train_images"], 5e-4, seed=2)
        save(model, out / "finetuned", {"steps": s["finetune_steps"], "losses": losses,
                                        "seconds": time.perf_counter() - t0})
    for name in ("trained", "pruned", "finetuned"):
        if not (out / f"{name}.onnx").is_file():
            cli(["export", "--checkpoint", str(out / name), "--format", "onnx", "--out", str(out / f"{name}.onnx")])


def onnx_run(path: Path, images: torch.Tensor, repeats: int = 3) -> tuple[torch.Tensor, float]:
    """Raw outputs [N, 4 + classes, anchors] of ONNX Runtime (one thread) on every image, and its median ms per image."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = opts.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    outputs, times = [], []
    for _ in range(repeats):
        outputs = []
        for img in images:
            x = (img[None].float() / 255).numpy()
            t0 = time.perf_counter()
            outputs.append(torch.from_numpy(session.run(None, {name: x})[0]))
            times.append((time.perf_counter() - t0) * 1000)
    return torch.cat(outputs), sorted(times)[len(times) // 2]


def match(a: torch.Tensor, b: torch.Tensor) -> list[tuple[int, int, float]]:
    """Greedy one-to-one matches (i, j, IoU) of detections ``a`` to ``b`` ([n, 6]: x0 y0 x1 y1 score class, or
    [n, 5] ground truth: x0 y0 x1 y1 class), best score first: same class, IoU >= 0.5."""
    from torchvision.ops import box_iou

    if not len(a) or not len(b):
        return []
    iou = box_iou(a[:, :4], b[:, :4])
    iou[a[:, -1][:, None] != b[:, -1][None, :]] = 0
    pairs, used = [], set()
    for i in a[:, 4].argsort(descending=True).tolist() if a.shape[1] == 6 else range(len(a)):
        for j in iou[i].argsort(descending=True).tolist():
            if iou[i, j] < IOU:
                break
            if j not in used:
                used.add(j)
                pairs.append((i, j, float(iou[i, j])))
                break
    return pairs


def compare(dets: list[torch.Tensor], ref: list[torch.Tensor], truth: list[torch.Tensor]) -> dict:
    """Detections against the unpruned model's (matched share, IoU, score difference) and the ground truth."""
    matched = [(d, r, match(d, r)) for d, r in zip(dets, ref)]
    pairs = [(d[i], r[j], iou) for d, r, m in matched for i, j, iou in m]
    hits = sum(len(match(d, t)) for d, t in zip(dets, truth))
    count, ref_count = sum(len(d) for d in dets), sum(len(r) for r in ref)
    return {"detections": count, "matched_to_unpruned": len(pairs),
            "matched_share": len(pairs) / max(count, ref_count, 1),
            "mean_iou": sum(p[2] for p in pairs) / len(pairs) if pairs else None,
            "mean_score_diff": sum(abs(float(p[0][4] - p[1][4])) for p in pairs) / len(pairs) if pairs else None,
            "precision": hits / count if count else None, "recall": hits / sum(len(t) for t in truth)}


def evaluate_onnx(out: Path, n: int) -> dict:
    """Steps 3-4 on ``n`` synthetic test images (another seed than training)."""
    from ultralytics.utils.nms import non_max_suppression

    test = generate_shapes(n, SIZE, seed=7)
    truth = [b[b[:, 0] > 0][:, [1, 2, 3, 4, 0]] - torch.tensor([0, 0, 0, 0, 1.0]) for b in test.boxes]
    networks, ref = {}, None
    for name in ("trained", "pruned", "finetuned"):
        raw, ms = onnx_run(out / f"{name}.onnx", test.images)
        model = load_checkpoint(out / name).model.eval()
        with torch.no_grad():
            eager = torch.cat([model(img[None].float() / 255) for img in test.images])
        dets = [d.cpu() for d in non_max_suppression(raw, conf_thres=CONF, iou_thres=0.7)]
        ref = dets if ref is None else ref
        x = torch.zeros(1, 3, SIZE, SIZE)
        networks[name] = {"params": measure(model, x).params, "macs": measure(model, x).macs,
                          "onnx_mb": (out / f"{name}.onnx").stat().st_size / 2**20, "ort_ms": ms,
                          "output_shape": list(raw.shape[1:]), "onnx_vs_torch_max_abs": float((raw - eager).abs().max()),
                          **compare(dets, ref, truth)}
    return networks


def table(networks: dict) -> str:
    """The comparison as a markdown table."""
    def f(v, spec):
        return "-" if v is None else format(v, spec)

    rows = [[name, human(n["params"]), human(n["macs"]), f"{n['onnx_mb']:.2f}", f"{n['ort_ms']:.2f}",
             str(n["output_shape"]), n["detections"], f"{n['matched_to_unpruned']} ({n['matched_share']:.0%})",
             f(n["mean_iou"], ".3f"), f(n["mean_score_diff"], ".3f"), f(n["precision"], ".2f"), f(n["recall"], ".2f")]
            for name, n in networks.items()]
    return markdown(rows, ["network", "params", "MACs", "ONNX MB", "ORT ms", "output", "detections",
                           "matched to unpruned", "mean IoU", "mean score diff", "precision", "recall"])


def main(argv: list[str] | None = None) -> int:
    """Train, prune, fine-tune, export (each cached), then compare the ONNX models' detections."""
    out, settings = example_args(__doc__, "runs/examples/yolo", argv, FULL, QUICK)
    train_steps(out, settings)
    networks = evaluate_onnx(out, settings["test_images"])
    res = {"date": datetime.date.today().isoformat(), "machine": machine(), "model": MODEL, "image_size": SIZE,
           "classes": CLASSES, "conf": CONF, "match_iou": IOU, "test_images": settings["test_images"],
           "training": {name: json.loads((out / name / "model.json").read_text())["meta"].get("training")
                        for name in ("trained", "finetuned")}, "networks": networks}
    write_results(out, res, table(networks))
    return 0


if __name__ == "__main__":
    sys.exit(main())
