"""Trusted model sources, one module each: importing this package registers them in ``MODEL_SOURCES``.

``zoo`` (names without a prefix), ``torchvision:``, ``timm:``, ``hf:`` and ``ultralytics:``. A
source module imports its library only when a model is built, so a missing optional package
costs nothing until its prefix is used (then one line names the extra to install).
"""

from prunekit.models.sources import hf_models, timm_models, torchvision_models, ultralytics_models, zoo  # noqa: F401
