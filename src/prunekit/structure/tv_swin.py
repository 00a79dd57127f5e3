"""torchvision's Swin window attention, computed through its ``qkv`` and ``proj`` layers.

torchvision's ``ShiftedWindowAttention`` passes ``self.qkv.weight`` to a function that calls
``F.linear`` and derives the head size from its input width, so neither its heads nor its
embedding width can be pruned apart.  :func:`make_prunable` switches such a layer to the subclass
below, whose forward computes exactly the same (same operations, same scale) but calls the
layers themselves and takes the head size from their current widths.  prunekit does this in
``analyze`` (and so in ``apply_plan``); the parameters and the state dict are unchanged.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.swin_transformer import ShiftedWindowAttention


class PrunableShiftedWindowAttention(ShiftedWindowAttention):
    """``ShiftedWindowAttention`` whose forward follows its layers' current widths."""

    prunekit_scale: float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Same as torchvision's ``shifted_window_attention`` with this layer's parameters."""
        b, h, w, c = x.shape
        ws, shift = self.window_size, list(self.shift_size)
        x = F.pad(x, (0, 0, 0, (ws[1] - w % ws[1]) % ws[1], 0, (ws[0] - h % ws[0]) % ws[0]))
        _, ph, pw, _ = x.shape
        shift = [0 if ws[i] >= (ph, pw)[i] else shift[i] for i in range(2)]
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(-shift[0], -shift[1]), dims=(1, 2))
        nw = (ph // ws[0]) * (pw // ws[1])
        x = x.view(b, ph // ws[0], ws[0], pw // ws[1], ws[1], c)
        x = x.permute(0, 1, 3, 2, 4, 5).reshape(b * nw, ws[0] * ws[1], c)
        qkv = self.qkv(x).reshape(x.size(0), x.size(1), 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        attn = (q * self.prunekit_scale).matmul(k.transpose(-2, -1)) + self.get_relative_position_bias()
        if sum(shift) > 0:
            attn = attn.view(x.size(0) // nw, nw, self.num_heads, x.size(1), x.size(1))
            attn = (attn + _shift_mask(x, ph, pw, ws, shift).unsqueeze(1).unsqueeze(0)).view(-1, self.num_heads, x.size(1), x.size(1))
        attn = F.dropout(F.softmax(attn, dim=-1), p=self.attention_dropout, training=self.training)
        x = attn.matmul(v).transpose(1, 2).reshape(x.size(0), x.size(1), -1)
        x = F.dropout(self.proj(x), p=self.dropout, training=self.training)
        x = x.view(b, ph // ws[0], pw // ws[1], ws[0], ws[1], -1).permute(0, 1, 3, 2, 4, 5).reshape(b, ph, pw, -1)
        if sum(shift) > 0:
            x = torch.roll(x, shifts=(shift[0], shift[1]), dims=(1, 2))
        return x[:, :h, :w, :].contiguous()


def _shift_mask(x: torch.Tensor, ph: int, pw: int, ws: list[int], shift: list[int]) -> torch.Tensor:
    """torchvision's attention mask for shifted windows (-100 between different regions)."""
    mask = x.new_zeros((ph, pw))
    count = 0
    for hs in ((0, -ws[0]), (-ws[0], -shift[0]), (-shift[0], None)):
        for wsl in ((0, -ws[1]), (-ws[1], -shift[1]), (-shift[1], None)):
            mask[hs[0]: hs[1], wsl[0]: wsl[1]] = count
            count += 1
    mask = mask.view(ph // ws[0], ws[0], pw // ws[1], ws[1]).permute(0, 2, 1, 3).reshape(-1, ws[0] * ws[1])
    mask = mask.unsqueeze(1) - mask.unsqueeze(2)
    return mask.masked_fill(mask != 0, float(-100.0)).masked_fill(mask == 0, float(0.0))


def make_prunable(module: nn.Module) -> bool:
    """Switch a torchvision ``ShiftedWindowAttention`` (exactly that class) to the subclass above."""
    if type(module) is PrunableShiftedWindowAttention:
        return True
    if type(module) is not ShiftedWindowAttention:
        return False
    module.prunekit_scale = float((module.qkv.in_features // module.num_heads) ** -0.5)
    module.__class__ = PrunableShiftedWindowAttention
    return True
