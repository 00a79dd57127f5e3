"""prunekit: make trained PyTorch models smaller and faster for the device they will run on."""

__version__ = "0.1.0"

from prunekit.errors import PrunekitError
from prunekit.data import list_datasets, load_dataset, register_dataset
from prunekit.models import ModelSpec, create_model, list_models, register_model
from prunekit.resources import Resources, count, measure
from prunekit.criteria import list_criteria, register_criterion
from prunekit.structure import analyze


def prune(model, example_inputs, ratio=None, criterion="l2", scope="local", exclude=(), round_to=1, budget=None,
          resource="macs", data=None, **kwargs):
    """A pruned copy of ``model`` (see :func:`prunekit.algorithms.oneshot.prune`)."""
    from prunekit.algorithms.oneshot import prune as _prune

    return _prune(model, example_inputs, ratio=ratio, criterion=criterion, scope=scope, exclude=exclude,
                  round_to=round_to, budget=budget, resource=resource, data=data, **kwargs)


def save(model, directory, *, metrics=None, input_shape=None, overwrite=False):
    """Save ``model`` as a checkpoint folder: safetensors weights + JSON plan of kept channels (no pickle).

    An existing non-empty ``directory`` is refused unless ``overwrite=True``; it is then replaced as a whole
    (no file of the old folder survives). The folder is written beside it (``.NAME.partial``) and renamed into
    place when complete, so an error leaves ``directory`` as it was."""
    from pathlib import Path

    from prunekit.io import save_checkpoint
    from prunekit.io.output import occupied, staged_output, staging_dir

    out = Path(directory)
    if occupied(out) and not overwrite:
        raise PrunekitError(f"save: {out} already exists: pass overwrite=True to replace it, or choose another folder")
    if staging_dir(out).exists():
        raise PrunekitError(f"save: {staging_dir(out)} holds an unfinished run's output for {out}: delete it, "
                            "or choose another folder")
    with staged_output(out, overwrite=True, keep_partial=False) as stage:
        save_checkpoint(stage, model, metrics=metrics, input_shape=input_shape)
    return out


def load(directory, model=None, *, model_factory=None, trust_factory=False):
    """Load a checkpoint folder: rebuild the original model (or use ``model``, a fresh instance of it),
    re-apply the pruning plan, load the weights. A folder whose model comes from a
    ``package.module:function`` factory loads only when you name it again (``model_factory=``) or
    pass ``trust_factory=True``: a checkpoint folder is data, not code."""
    from prunekit.io import load_checkpoint

    return load_checkpoint(directory, model=model, model_factory=model_factory, trust_factory=trust_factory).model


def quantize(checkpoint, out, **kwargs):
    """Quantize a checkpoint folder to int8 ONNX beside a copy of it in ``out``, tested and timed against fp32
    (see :func:`prunekit.deploy.checkpoint.quantize_checkpoint`); returns the new metrics."""
    from prunekit.deploy.checkpoint import quantize_checkpoint

    return quantize_checkpoint(checkpoint, out, **kwargs)


def __getattr__(name):
    if name == "NetAdapt":
        from prunekit.pipeline.netadapt_run import NetAdapt

        return NetAdapt
    if name in ("NetAdaptConfig", "NetAdaptResult"):
        from prunekit.algorithms import netadapt

        return getattr(netadapt, name)
    raise AttributeError(f"module 'prunekit' has no attribute {name!r}")


__all__ = [
    "PrunekitError", "ModelSpec", "Resources", "analyze", "count", "create_model", "list_criteria", "list_datasets",
    "list_models", "load_dataset", "register_criterion", "register_dataset", "register_model",
    "__version__", "prune", "save", "load", "quantize", "NetAdapt", "NetAdaptConfig", "NetAdaptResult",
]
