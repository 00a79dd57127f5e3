"""Settings of int8 post-training quantization (``prunekit quantize``, pipeline step 4), defined once."""

from __future__ import annotations

from dataclasses import dataclass

from prunekit.deploy.onnx_quant import METHODS, TYPES, QuantSettings
from prunekit.settings import Settings, setting

_QUANTIZER = QuantSettings()  # the quantizer's defaults, defined there once


@dataclass
class QuantizeConfig(Settings):
    """How a checkpoint is quantized to int8 with ONNX Runtime's static quantization (per-channel weights)."""

    calibration_samples: int = setting(256, "training samples the activation ranges are calibrated on")
    calibration_seed: int = setting(0, "seed of the calibration sample")
    activations: str = setting(_QUANTIZER.activations, "activation type (uint8: ONNX Runtime's fast path on x86)", choices=TYPES)
    calibration_method: str = setting(_QUANTIZER.method, "how activation ranges are calibrated", choices=METHODS)
    reduce_range: bool = setting(_QUANTIZER.reduce_range, "7-bit weights: for x86 CPUs without VNNI, where 8-bit products can overflow")

    def __post_init__(self) -> None:
        super().__post_init__()
        from prunekit.errors import PrunekitError

        if self.calibration_samples < 1:
            raise PrunekitError(f"--calibration-samples (calibration_samples:) must be at least 1, got "
                                f"{self.calibration_samples}")

    def quant_settings(self) -> QuantSettings:
        """The quantizer's own settings."""
        return QuantSettings(activations=self.activations, reduce_range=self.reduce_range,
                             method=self.calibration_method)
