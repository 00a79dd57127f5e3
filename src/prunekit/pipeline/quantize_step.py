"""Pipeline step 4: int8 post-training quantization of the step before's network (ONNX Runtime)."""

from __future__ import annotations

from typing import Any

import torch

from prunekit.pipeline.run import RunPlan, previous, register_step


def _threads(plan: RunPlan) -> int:
    """The threads step 4 times on: --threads, else torch's setting (NetAdapt's latency default)."""
    return plan.quantize_threads or torch.get_num_threads()


def _quantize_settings(plan: RunPlan) -> dict[str, Any]:
    return {"data": plan.data_for(previous(plan, "4")), "quantize": plan.quantize, "batch": plan.quantize_batch,
            "threads": _threads(plan)}


@register_step("4", "quantized", "int8 (ONNX)", settings=_quantize_settings)
def quantize_step(plan: RunPlan) -> dict[str, Any]:
    """Quantize the fine-tuned network (or the last step's) to int8; the row shows the int8 file's test figure."""
    from prunekit.deploy.checkpoint import quantize_checkpoint

    src = previous(plan, "4")
    cfg = plan.quantize
    metrics = quantize_checkpoint(src, plan.folder("4"), calibration_samples=cfg.calibration_samples,
                                  seed=cfg.calibration_seed, overwrite=plan.overwrite, settings=cfg.quant_settings(),
                                  data_cfg=plan.data_for(src), latency_batches=(plan.quantize_batch,),
                                  threads=_threads(plan), log=plan.log)
    ms = {name: next(iter(metrics[name]["latency_ms"].values())) for name in ("onnx_fp32", "onnx_int8")}
    plan.log(f"[quantize] int8 - fp32 test accuracy: {-metrics['int8_accuracy_drop'] * 100:+.2f} points; "
             f"latency at batch {plan.quantize_batch}: fp32 {ms['onnx_fp32']:.3f} ms, int8 {ms['onnx_int8']:.3f} ms")
    return {**metrics, "val_accuracy": None, "test_accuracy": metrics["onnx_int8"]["test_accuracy"]}
