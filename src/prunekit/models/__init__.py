"""The model zoo: a registry of models sized for small images, plus torchvision and user factories."""

from prunekit.models import mobilenet, resnet_cifar, small, vgg  # noqa: F401  (registers the zoo)
from prunekit.models.registry import MODELS, ModelSpec, attach_spec, create_model, list_models, register_model, spec_of

__all__ = ["MODELS", "ModelSpec", "attach_spec", "create_model", "list_models", "register_model", "spec_of"]
