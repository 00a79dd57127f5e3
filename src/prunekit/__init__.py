"""prunekit: make trained PyTorch models smaller and faster for the device they will run on."""

__version__ = "0.1.0"

from prunekit.errors import PrunekitError
from prunekit.data import list_datasets, load_dataset, register_dataset
from prunekit.models import ModelSpec, create_model, list_models, register_model
from prunekit.resources import Resources, measure

__all__ = [
    "PrunekitError", "ModelSpec", "Resources", "create_model", "list_datasets", "list_models",
    "load_dataset", "measure", "register_dataset", "register_model", "__version__",
]
