"""Safe persistence: checkpoint folders (safetensors + JSON), atomic writes."""

from prunekit.io.atomic import atomic_write, read_json, write_json
from prunekit.io.export import export_model
from prunekit.io.checkpoint import (
    Checkpoint, attach_input_dtype, attach_input_shape, attach_plan, input_dtype_of, input_shape_of, load_checkpoint,
    plan_of, read_description, save_checkpoint,
)

__all__ = [
    "Checkpoint", "atomic_write", "export_model", "attach_input_dtype", "attach_input_shape", "attach_plan",
    "input_dtype_of", "input_shape_of",
    "load_checkpoint", "plan_of", "read_description", "read_json", "save_checkpoint", "write_json",
]
