"""Sizes that model classes keep as plain attributes, rewritten by prunekit after every prune.

Some layers spell a width out in their forward (torchvision's ``VisionTransformer`` reshapes its
patches to ``self.hidden_dim``).  Each entry of :data:`SIZE_FIXERS` names a class (qualified,
matched on the class and its bases, so no optional library is imported) and a function that
sets those attributes from the model's current weights.  Attention layers' head counts are
handled with the attention adapters (attention.py).
"""

from __future__ import annotations

from typing import Callable

from torch import nn

from prunekit.registry import Registry

SIZE_FIXERS: Registry[Callable[[nn.Module], None]] = Registry("size fixer")


@SIZE_FIXERS.register("torchvision.models.vision_transformer.VisionTransformer")
def _torchvision_vit(m: nn.Module) -> None:
    m.hidden_dim = m.conv_proj.out_channels


@SIZE_FIXERS.register("torchvision.models.vision_transformer.EncoderBlock")
def _torchvision_vit_block(m: nn.Module) -> None:
    m.num_heads = m.self_attention.num_heads


@SIZE_FIXERS.register("timm.models.vision_transformer.VisionTransformer")
def _timm_vit(m: nn.Module) -> None:
    proj = getattr(getattr(m, "patch_embed", None), "proj", None)
    if isinstance(proj, nn.Conv2d):  # informational in timm's forward, kept true for users
        m.embed_dim = m.num_features = proj.out_channels


def fixers_for(model: nn.Module) -> list[tuple[nn.Module, Callable[[nn.Module], None]]]:
    """(module, fixer) for every module of ``model`` whose class has a registered fixer."""
    out = []
    for m in model.modules():
        for c in type(m).__mro__:
            key = f"{c.__module__}.{c.__qualname__}"
            if key in SIZE_FIXERS:
                out.append((m, SIZE_FIXERS.get(key)))
                break
    return out
