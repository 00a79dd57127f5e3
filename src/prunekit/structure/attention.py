"""Attention layers as prunable groups: whole heads or head dimensions, chosen by ``attention=``.

Inside an attention layer the channels of the query/key/value projections are reshaped into
heads, multiplied together and reshaped back before the output projection: operations that
prunekit's per-operation rules keep whole.  For the layer classes registered here prunekit knows
the whole pattern instead, and:

* cuts the graph between the q/k/v projections and the output projection (nothing inside is
  followed operation by operation);
* ties q, k and v position by position, and maps the value positions onto the output
  projection's input channels;
* makes a unit one head (``attention="heads"``: ``num_heads`` shrinks, parameters indexed by head
  such as Swin's relative position bias table lose that head) or one dimension in every head
  (``attention="head_dims"``, the default, Torch-Pruning's default too: ``head_dim`` shrinks);
  ``attention="none"`` keeps the attention widths whole;
* rewrites the sizes the layer keeps as attributes (``num_heads``, ``head_dim``, ...) after every
  prune, so the pruned layer runs unchanged.

``nn.MultiheadAttention`` keeps its inner width equal to its input width, so there the unit also
spans the embedding channels it ties (heads: a block of ``head_dim`` channels).  Each registered
adapter is a small class; :data:`ATTENTION` is the registry (a new layer class is one adapter).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from torch import nn

from prunekit.registry import Registry
from prunekit.structure.datatypes import StructureError

MODES = ("head_dims", "heads", "none")
DEFAULT_MODE = "head_dims"


def check_mode(mode: str) -> str:
    """``mode`` if it is one of :data:`MODES`, else a StructureError naming the choices."""
    if mode not in MODES:
        raise StructureError(f"attention must be one of {', '.join(MODES)}; got {mode!r}")
    return mode


@dataclass(eq=False)
class Site:
    """One attention layer of the model that an adapter understands."""

    module: nn.Module
    name: str
    adapter: "Adapter"
    q: list[nn.Linear]  # [qkv] when fused, else [query, key, value]
    proj: nn.Linear
    num_heads: int
    head_dim: int
    mode: str
    head_params: list[str] = field(default_factory=list)  # attributes of ``module`` indexed by head (last dim)

    @property
    def fused(self) -> bool:
        return len(self.q) == 1

    def inner(self) -> int:
        """Current width of each of q, k and v."""
        return self.q[0].out_features // 3 if self.fused else self.q[0].out_features

    def refresh(self) -> None:
        """Rewrite the layer's size attributes from its current weights."""
        if self.mode == "heads":
            self.num_heads = self.inner() // self.head_dim
        else:
            self.head_dim = self.inner() // self.num_heads
        self.adapter.write(self.module, self.num_heads, self.head_dim)

    def tuples(self) -> list[tuple[int, ...]]:
        """Positions of the (first) projection's outputs that form one unit."""
        h, d, pieces = self.num_heads, self.head_dim, 3 if self.fused else 1
        w = h * d
        if self.mode == "heads":
            return [tuple(s * w + hh * d + j for s in range(pieces) for j in range(d)) for hh in range(h)]
        return [tuple(s * w + hh * d + j for s in range(pieces) for hh in range(h)) for j in range(d)]


class Adapter:
    """How to read one attention layer class: its projections, heads and size attributes."""

    def parts(self, module: nn.Module) -> dict[str, Any] | None:
        """``q`` (list of Linear), ``proj``, ``num_heads``, ``head_dim``, ``head_params``; None: not this kind."""
        raise NotImplementedError

    def write(self, module: nn.Module, num_heads: int, head_dim: int) -> None:
        """Store new sizes in the layer's attributes."""
        raise NotImplementedError


ATTENTION: Registry[Adapter] = Registry("attention layer")


def _is(module: nn.Module, qualified: str) -> bool:
    """True if ``module``'s class (or a base class) is ``qualified`` ('package.module.Class')."""
    return any(f"{c.__module__}.{c.__qualname__}" == qualified for c in type(module).__mro__)


def _plain(*mods: Any) -> bool:
    return all(m is None or isinstance(m, nn.Identity) for m in mods)


class TimmAttention(Adapter):
    """timm's ``Attention`` (ViT, DeiT, ...): fused ``qkv`` and ``proj``, ``num_heads``/``head_dim``/``attn_dim``."""

    def parts(self, module):
        if not _is(module, "timm.layers.attention.Attention"):
            return None
        if not _plain(getattr(module, "q_norm", None), getattr(module, "k_norm", None),
                      getattr(module, "norm", None), getattr(module, "gate", None)):
            return None
        return {"q": [module.qkv], "proj": module.proj, "num_heads": module.num_heads, "head_dim": module.head_dim}

    def write(self, module, num_heads, head_dim):
        module.num_heads, module.head_dim = num_heads, head_dim
        if hasattr(module, "attn_dim"):
            module.attn_dim = num_heads * head_dim


class TimmWindowAttention(Adapter):
    """timm's Swin ``WindowAttention``: fused ``qkv``, ``proj`` and a relative position bias per head."""

    def parts(self, module):
        if not _is(module, "timm.models.swin_transformer.WindowAttention"):
            return None
        return _window_attention_parts(module)

    def write(self, module, num_heads, head_dim):
        module.num_heads = num_heads


def _window_attention_parts(module) -> dict:
    """Swin window attention (timm or torchvision): fused ``qkv``, ``proj``, a relative position bias per head."""
    heads = module.num_heads
    return {"q": [module.qkv], "proj": module.proj, "num_heads": heads,
            "head_dim": module.qkv.out_features // 3 // heads, "head_params": ["relative_position_bias_table"]}


class TorchvisionSwinAttention(Adapter):
    """torchvision's Swin ``ShiftedWindowAttention`` (v1), switched to a forward that calls its layers (tv_swin.py)."""

    def parts(self, module):
        if not _is(module, "torchvision.models.swin_transformer.ShiftedWindowAttention"):
            return None
        from prunekit.structure.tv_swin import make_prunable

        if not make_prunable(module):
            return None
        return _window_attention_parts(module)

    def write(self, module, num_heads, head_dim):
        module.num_heads = num_heads


class HFSelfAttention(Adapter):
    """Hugging Face BERT-style attention (BERT, RoBERTa, ViT, DeiT, ...): the module holding the
    self-attention (``self`` or ``attention``: ``query``/``key``/``value``) and its output (``output.dense``)."""

    @staticmethod
    def _inner(module):
        for attr in ("self", "attention"):
            sa = getattr(module, attr, None)
            if sa is not None and all(isinstance(getattr(sa, n, None), nn.Linear) for n in ("query", "key", "value")):
                if hasattr(sa, "num_attention_heads") and hasattr(sa, "attention_head_size"):
                    return sa
        return None

    def parts(self, module):
        sa = self._inner(module)
        dense = getattr(getattr(module, "output", None), "dense", None)
        if sa is None or not isinstance(dense, nn.Linear) or type(module).__module__.split(".")[0] != "transformers":
            return None
        return {"q": [sa.query, sa.key, sa.value], "proj": dense,
                "num_heads": sa.num_attention_heads, "head_dim": sa.attention_head_size}

    def write(self, module, num_heads, head_dim):
        sa = self._inner(module)
        sa.num_attention_heads, sa.attention_head_size = num_heads, head_dim
        sa.all_head_size = num_heads * head_dim


class HFProjAttention(Adapter):
    """Hugging Face attention in the newer form (transformers 5's ViT, Llama-style layers): ``q_proj``/``k_proj``/
    ``v_proj``/``o_proj`` on one module, with ``num_attention_heads`` and ``head_dim``; its forward reshapes by
    ``head_dim``, and ``scaling`` stays as trained. Grouped key/value heads (fewer k/v than q heads) are left whole."""

    def parts(self, module):
        if type(module).__module__.split(".")[0] != "transformers":
            return None
        linears = [getattr(module, n, None) for n in ("q_proj", "k_proj", "v_proj", "o_proj")]
        if not all(isinstance(m, nn.Linear) for m in linears):
            return None
        heads, head_dim = getattr(module, "num_attention_heads", None), getattr(module, "head_dim", None)
        if not isinstance(heads, int) or not isinstance(head_dim, int):
            return None
        if any(m.out_features != heads * head_dim for m in linears[:3]):
            return None
        return {"q": linears[:3], "proj": linears[3], "num_heads": heads, "head_dim": head_dim}

    def write(self, module, num_heads, head_dim):
        module.num_attention_heads, module.head_dim = num_heads, head_dim


ATTENTION.register("timm")(TimmAttention())
ATTENTION.register("timm_window")(TimmWindowAttention())
ATTENTION.register("hf")(HFSelfAttention())
ATTENTION.register("hf_proj")(HFProjAttention())
ATTENTION.register("torchvision_swin")(TorchvisionSwinAttention())


def find_sites(model: nn.Module, mode: str) -> list[Site]:
    """Every attention layer of ``model`` that a registered adapter understands."""
    sites = []
    for name, module in model.named_modules():
        for key in ATTENTION:
            adapter = ATTENTION.get(key)
            parts = adapter.parts(module)
            if parts is not None:
                sites.append(Site(module, name, adapter, mode=mode, **parts))
                break
    return sites


# ---------------------------------------------------------------------- nn.MultiheadAttention
def mha_tuples(m: nn.MultiheadAttention, mode: str) -> list[tuple[int, ...]]:
    """Units of an ``nn.MultiheadAttention``'s embedding positions (its inner width is its input width)."""
    h = m.num_heads
    d = m.embed_dim // h
    if mode == "heads":
        return [tuple(hh * d + j for j in range(d)) for hh in range(h)]
    return [tuple(hh * d + j for hh in range(h)) for j in range(d)]


def before_prune(mode: str, targets: list[tuple[Any, int]]) -> None:
    """Set what a layer's own pruning checks (``num_heads`` of an MHA losing whole heads) first."""
    if mode != "heads":
        return
    for target, removed in targets:
        if isinstance(target, nn.MultiheadAttention) and removed:
            target.num_heads = (target.embed_dim - removed) // target.head_dim


# ---------------------------------------------------------------------- index mappings
class ValuePart:
    """Fused qkv -> output projection: value position ``2w + i`` is the projection's input ``i``."""

    def __init__(self, qkv: nn.Linear) -> None:
        self.qkv = qkv

    def __call__(self, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        lo = 2 * (self.qkv.out_features // 3)
        return [(i - lo, r) for i, r in pairs if i >= lo]


class HeadOf:
    """Projection output position -> its head (for parameters indexed by head)."""

    def __init__(self, site: Site) -> None:
        self.site = site

    def __call__(self, pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
        w, d = self.site.inner(), self.site.head_dim
        return list(dict.fromkeys(((i % w) // d, r) for i, r in pairs))


def identity(pairs: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Same positions on both sides (separate q, k and v projections)."""
    return list(pairs)


# ---------------------------------------------------------------------- the traced layer
def inner_fns(site: Site, calls: dict, markers: list[int]) -> set | None:
    """Autograd nodes between the q/k/v projections' outputs and the output projection's input.

    ``calls`` maps a module to its recorded calls.  None when the layer was not called exactly
    once, or when the projection's input also depends on something from outside the layer (then
    prunekit does not know the pattern and the per-operation rules apply).
    """
    qcalls = [calls.get(q, []) for q in site.q]
    pcalls = calls.get(site.proj, [])
    if len(markers) != 1 or len(pcalls) != 1 or any(len(c) != 1 for c in qcalls) or not pcalls[0].inputs:
        return None
    stops = {c[0].output for c in qcalls}
    heads = {id(getattr(site.module, n)) for n in site.head_params}
    start = pcalls[0].inputs[0][0]
    seen: set = set()
    reached: set = set()
    stack = [start] if start is not None else []
    while stack:
        fn = stack.pop()
        if fn in stops:
            reached.add(fn)
            continue
        if fn in seen:
            continue
        if "AccumulateGrad" in fn.name():
            if id(fn.variable) not in heads:
                return None
        elif fn._sequence_nr() < markers[0]:
            return None
        seen.add(fn)
        stack.extend(nxt for nxt, _ in fn.next_functions if nxt is not None)
    return seen if reached == stops else None


def wire(dg: Any, site: Site) -> list[tuple[Any, str, list[tuple[int, ...]]]]:
    """Link the site's projections in the graph; returns its unit constraints as (node, side, tuples)."""
    qs = [dg.node(q) for q in site.q]
    proj = dg.node(site.proj)
    if site.fused:
        dg.link(qs[0], proj, ValuePart(site.q[0]))
    else:
        for a in qs:
            for b in qs:
                if a is not b:
                    dg.link(a, b, identity, b_side="out")
        dg.link(qs[2], proj, identity)
    if site.mode == "heads":
        for attr in site.head_params:
            param = dg.node(getattr(site.module, attr))
            if param is not None:
                dg.link(qs[0], param, HeadOf(site), b_side="out")
    return [(qs[0], "out", site.tuples())]
