"""Trying groups on a copy of the model before trusting them.

A model's code may spell out sizes that the graph cannot show (``x.reshape(n, self.hidden_dim,
-1)``, ``torch.split(x, 64)``).  Groups that pass through such operations are pruned by one step
on a deep copy: the copy must still run, keep its output shapes and, for exact groups, compute
the same as when those channels are zeroed.  Groups that fail are kept whole, with a warning.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from prunekit.errors import first_line
from prunekit.structure.graph import call_model, tensors_in
from prunekit.structure.zeroing import zero_channels


def _outputs(model: torch.nn.Module, example_inputs: Any) -> list[torch.Tensor]:
    return [t.detach() for t in tensors_in(call_model(model, example_inputs))]


def _trial(s, example_inputs: Any, names: list[str], compare: bool) -> str | None:
    """None if pruning one step of every group in ``names`` on a copy behaves, else what went wrong."""
    c = copy.deepcopy(s)
    c.model.eval()
    with torch.no_grad():
        try:
            ref = None if compare else _outputs(c.model, example_inputs)
            picks = {}
            for n in names:
                st = c._states[n]
                k = c.round_removal(n, 1)
                picks[n] = list(range(len(st.units) - k, len(st.units)))
                if compare:
                    zero_channels(c, n, picks[n])
            want = _outputs(c.model, example_inputs) if compare else ref  # zeroing keeps shapes
            for n, idx in picks.items():
                c._remove(c._states[n], idx)
            got = _outputs(c.model, example_inputs)
        except Exception as err:  # the copy is ours: any failure means "do not prune this"
            return f"{type(err).__name__}: {first_line(err)}"
    if [t.shape for t in got] != [t.shape for t in want]:
        return "pruning it changes the model's output shape"
    if compare:
        for a, b in zip(want, got):
            scale = max(1.0, float(a.abs().max())) if a.numel() else 1.0
            if a.dtype.is_floating_point and not torch.allclose(a, b, rtol=1e-4, atol=1e-5 * scale):
                return "pruning it changes what the remaining channels compute"
    return None


def _bisect(s, example_inputs: Any, names: list[str], compare: bool, bad: dict[str, str]) -> None:
    if not names:
        return
    why = _trial(s, example_inputs, names, compare)
    if why is None:
        return
    if len(names) == 1:
        bad[names[0]] = why
        return
    before = len(bad)
    half = len(names) // 2
    _bisect(s, example_inputs, names[:half], compare, bad)
    _bisect(s, example_inputs, names[half:], compare, bad)
    if len(bad) == before:  # only fails in combination: trust none of them
        bad.update({n: why for n in names})


def validate(s, example_inputs: Any) -> None:
    """Try every risky group of structure ``s``; keep the failing ones whole (with a warning)."""
    names = [n for n in s._names if s._states[n].risky and s.removable(n) > 0]
    if not names:
        return
    try:
        copy.deepcopy(s.model)
    except Exception as err:  # e.g. a module holding an open file
        s.warnings.append(
            f"could not copy the model to try {len(names)} groups that pass through reshapes or splits "
            f"({type(err).__name__}: {err}); they are offered untried"
        )
        return
    bad: dict[str, str] = {}
    _bisect(s, example_inputs, [n for n in names if s._states[n].exact], True, bad)
    _bisect(s, example_inputs, [n for n in names if not s._states[n].exact], False, bad)
    for name, why in bad.items():
        s._drop(name, f"pruning them on a copy failed ({why})")
