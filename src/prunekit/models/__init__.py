"""Models by name: prunekit's zoo (sized for small images), trusted sources (``timm:``, ...) and user factories."""

from prunekit.models import mobilenet, resnet_cifar, small, vgg  # noqa: F401  (registers the zoo)
from prunekit.models.registry import (
    MODEL_SOURCES, MODELS, Built, ModelSpec, attach_spec, create_model, is_user_factory, list_models, register_model,
    register_model_source, spec_of,
)
from prunekit.models import sources  # noqa: F401,E402  (registers the model sources)
from prunekit.models.trust import check_trusted, trusting

__all__ = ["MODELS", "MODEL_SOURCES", "Built", "ModelSpec", "attach_spec", "check_trusted", "create_model",
           "is_user_factory", "list_models", "register_model", "register_model_source", "spec_of", "trusting"]
