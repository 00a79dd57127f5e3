"""Toy models covering each kind of channel coupling, the checks shared by the structure tests, and their tests."""

from __future__ import annotations

import copy
import random

import torch
import torch.nn.functional as F
from torch import nn

from prunekit.structure import ModelStructure, zero_channels


class Residual(nn.Module):
    """Stem, one residual block (add), global pooling, linear head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem, self.bn = nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8)
        self.c1, self.c2 = nn.Conv2d(8, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)
        self.head = nn.Linear(8, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.stem(x)))
        x = x + self.c2(F.relu(self.c1(x)))
        return self.head(x.mean((2, 3)))


class Concat(nn.Module):
    """Two branches concatenated (torch.cat), then concatenated again with a later feature."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = nn.Conv2d(3, 6, 3, padding=1), nn.Conv2d(3, 10, 1)
        self.c, self.head = nn.Conv2d(16, 8, 3, padding=1), nn.Linear(24, 4)

    def forward(self, x):
        y = torch.cat([F.relu(self.a(x)), self.b(x)], 1)
        z = F.relu(self.c(y))
        return self.head(torch.cat([z, y], 1).mean((2, 3)))


class DepthGroup(nn.Module):
    """Depthwise conv, then a grouped conv (groups=4) with GroupNorm, then a pointwise conv."""

    def __init__(self) -> None:
        super().__init__()
        self.c0, self.bn0 = nn.Conv2d(3, 16, 1), nn.BatchNorm2d(16)
        self.dw, self.bn1 = nn.Conv2d(16, 16, 3, padding=1, groups=16), nn.BatchNorm2d(16)
        self.g4, self.bn2 = nn.Conv2d(16, 24, 3, padding=1, groups=4), nn.BatchNorm2d(24)
        self.pw, self.head = nn.Conv2d(24, 12, 1), nn.Linear(12, 3)

    def forward(self, x):
        x = F.relu(self.bn0(self.c0(x)))
        x = F.relu(self.bn1(self.dw(x)))
        x = F.relu(self.bn2(self.g4(x)))
        return self.head(F.adaptive_avg_pool2d(self.pw(x), 1).flatten(1))


class FlattenFC(nn.Module):
    """Conv features pooled to 4x4 and flattened into a Linear layer."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.c2 = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 6, 3, padding=1)
        self.fc1, self.fc2 = nn.Linear(6 * 4 * 4, 20), nn.Linear(20, 7)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.c1(x)), 2)
        x = F.adaptive_avg_pool2d(F.relu(self.c2(x)), 4)
        return self.fc2(F.relu(self.fc1(torch.flatten(x, 1))))


class Deconv(nn.Module):
    """A strided conv, a ConvTranspose2d back up and a 1x1 conv output (a tiny segmenter)."""

    def __init__(self) -> None:
        super().__init__()
        self.down, self.bn = nn.Conv2d(3, 12, 3, stride=2, padding=1), nn.BatchNorm2d(12)
        self.up, self.out = nn.ConvTranspose2d(12, 10, 2, stride=2), nn.Conv2d(10, 2, 1)

    def forward(self, x):
        return self.out(F.relu(self.up(F.relu(self.bn(self.down(x))))))


class Attention(nn.Module):
    """A pre-norm transformer block with nn.MultiheadAttention (4 heads) and an MLP."""

    def __init__(self) -> None:
        super().__init__()
        self.embed, self.norm = nn.Linear(6, 16), nn.LayerNorm(16)
        self.attn = nn.MultiheadAttention(16, 4, batch_first=True)
        self.fc1, self.fc2, self.head = nn.Linear(16, 32), nn.Linear(32, 16), nn.Linear(16, 3)

    def forward(self, x):
        x = self.embed(x)
        h = self.norm(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        x = x + self.fc2(F.gelu(self.fc1(x)))
        return self.head(x.mean(1))


class Shuffle(nn.Module):
    """A channel shuffle (view, transpose, reshape) with 4 groups between two convolutions."""

    def __init__(self, groups: int = 4) -> None:
        super().__init__()
        self.groups = groups
        self.c1, self.bn = nn.Conv2d(3, 16, 1), nn.BatchNorm2d(16)
        self.c2, self.head = nn.Conv2d(16, 12, 3, padding=1), nn.Linear(12, 5)

    def forward(self, x):
        x = F.relu(self.bn(self.c1(x)))
        b, c, h, w = x.shape
        x = x.view(b, self.groups, c // self.groups, h, w).transpose(1, 2).reshape(b, c, h, w)
        return self.head(F.relu(self.c2(x)).mean((2, 3)))


class ConvClassifier(nn.Module):
    """SqueezeNet-style head: a 1x1 conv whose output channels are the classes."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.cls = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 6, 1)

    def forward(self, x):
        return torch.flatten(F.adaptive_avg_pool2d(F.relu(self.cls(F.relu(self.c1(x)))), 1), 1)


class Unknown(nn.Module):
    """c1's channels go through an einsum with a fixed matrix (mixes channels); c2, c3 are plain."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.mix = nn.Conv2d(3, 8, 3, padding=1), nn.Parameter(torch.randn(8, 8))
        self.c2, self.c3 = nn.Conv2d(8, 12, 3, padding=1), nn.Conv2d(12, 6, 1)
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        x = torch.einsum("bchw,cd->bdhw", F.relu(self.c1(x)), self.mix)
        return self.head(F.relu(self.c3(F.relu(self.c2(x)))).mean((2, 3)))


class Chunked(nn.Module):
    """chunk(2) of the channels: each half goes its own way (ShuffleNet's split)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.a, self.b = nn.Conv2d(3, 12, 1), nn.Conv2d(6, 4, 1), nn.Conv2d(6, 4, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        p, q = F.relu(self.c1(x)).chunk(2, dim=1)
        return self.head(torch.cat([self.a(p), self.b(q)], 1).mean((2, 3)))


class SpatialGate(nn.Module):
    """A 1-channel attention map broadcast over the channels, and an SE-style channel scale."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.gate = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 1, 1)
        self.se1, self.se2 = nn.Conv2d(8, 4, 1), nn.Conv2d(4, 8, 1)
        self.head = nn.Linear(8, 3)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = x * torch.sigmoid(self.gate(x))
        x = x * torch.sigmoid(self.se2(F.relu(self.se1(x.mean((2, 3), keepdim=True)))))
        return self.head(x.mean((2, 3)))


class ChannelStats(nn.Module):
    """CBAM-style spatial attention: a conv on the channels' mean and max (statistics of the channels)."""

    def __init__(self) -> None:
        super().__init__()
        self.c1, self.sa = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(2, 1, 3, padding=1)
        self.c2, self.head = nn.Conv2d(8, 6, 1), nn.Linear(6, 2)

    def forward(self, x):
        x = F.relu(self.c1(x))
        x = x * torch.sigmoid(self.sa(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1)))
        return self.head(F.relu(self.c2(x)).mean((2, 3)))


TOYS = {
    "residual": (Residual, (2, 3, 8, 8)),
    "concat": (Concat, (2, 3, 8, 8)),
    "depth_group": (DepthGroup, (2, 3, 8, 8)),
    "flatten_fc": (FlattenFC, (2, 3, 8, 8)),
    "deconv": (Deconv, (2, 3, 8, 8)),
    "attention": (Attention, (2, 5, 6)),
    "shuffle": (Shuffle, (2, 3, 8, 8)),
    "conv_classifier": (ConvClassifier, (2, 3, 8, 8)),
    "unknown": (Unknown, (2, 3, 8, 8)),
    "chunked": (Chunked, (2, 3, 8, 8)),
    "spatial_gate": (SpatialGate, (2, 3, 8, 8)),
    "channel_stats": (ChannelStats, (2, 3, 8, 8)),
}


def outputs_close(a: torch.Tensor, b: torch.Tensor, tol: float = 1e-4) -> bool:
    """Equal up to float tolerance, relative to the output's scale."""
    return a.shape == b.shape and float((a - b).abs().max()) <= tol * max(1.0, float(a.abs().max()))


def zero_then_remove(s: ModelStructure, x: torch.Tensor, name: str, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    """Outputs of a copy with those channels zeroed at every producer, then physically removed."""
    c = copy.deepcopy(s)
    zero_channels(c, name, indices)
    with torch.no_grad():
        zeroed = c.model(x)
    c.prune(name, indices)
    with torch.no_grad():
        removed = c.model(x)
    return zeroed, removed


def assert_zero_equivalent(s: ModelStructure, x: torch.Tensor, name: str, seed: int = 0) -> None:
    """Removing ~1/3 of a group's channels must equal zeroing them (the index mappings are right)."""
    g = s.group(name)
    k = s.round_removal(name, max(1, g.channels // 3))
    assert k > 0, name
    idx = random.Random(seed).sample(range(g.channels), k)
    zeroed, removed = zero_then_remove(s, x, name, idx)
    assert outputs_close(zeroed, removed), f"{name}: max diff {float((zeroed - removed).abs().max())}"


def prune_fraction(s: ModelStructure, frac: float, seed: int = 0) -> int:
    """Remove about ``frac`` of every group's channels (random ones, respecting round_to)."""
    rng, total = random.Random(seed), 0
    for g in s.groups:
        k = s.round_removal(g.name, int(g.channels * frac))
        if k:
            s.prune(g.name, rng.sample(range(g.channels), k))
            total += k
    return total


def check_slices(s: ModelStructure) -> None:
    """Every slice indexes real positions of its parameter, and some slice covers every channel."""
    for g in s.groups:
        slices = s.slices(g.name)
        covered = set()
        for sl in slices:
            assert sl.index.dtype == torch.long and sl.index.dim() == 2
            assert sl.index.shape[0] == sl.channels.numel() > 0
            assert 0 <= int(sl.channels.min()) and int(sl.channels.max()) < g.channels
            assert 0 <= int(sl.index.min()) and int(sl.index.max()) < sl.param.shape[sl.dim]
            if sl.role == "out":
                covered.update(sl.channels.tolist())
        assert covered == set(range(g.channels)), g.name


def n_params(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------- tests on the toys
import pytest  # noqa: E402

from prunekit.structure import StructureError, analyze  # noqa: E402


def _toy(name: str) -> tuple[nn.Module, torch.Tensor]:
    cls, shape = TOYS[name]
    torch.manual_seed(0)
    return cls().eval(), torch.randn(*shape)


@pytest.mark.parametrize("name", sorted(TOYS))
def test_toy_prunes_and_matches_zeroing(name):
    model, x = _toy(name)
    with torch.no_grad():
        before = model(x)
    s = analyze(model, x)
    assert s.model is model and s.groups
    check_slices(s)
    for g in s.groups:
        if g.exact and s.removable(g.name):
            assert_zero_equivalent(s, x, g.name)
    p0 = n_params(model)
    assert prune_fraction(s, 0.4) > 0
    with torch.no_grad():
        after = model(x)
    assert after.shape == before.shape and n_params(model) < p0


def test_residual_add_couples_both_branches():
    model, x = _toy("residual")
    s = analyze(model, x)
    assert [g.name for g in s.groups] == ["stem", "c1"]
    members = {(m.layer, m.role) for m in s.group("stem").members}
    assert members == {("stem", "out"), ("bn", "out"), ("c1", "in"), ("c2", "out"), ("head", "in")}
    s.prune("stem", [0, 5])
    assert model.stem.out_channels == model.c2.out_channels == model.head.in_features == 6
    assert s.group("stem").channels == 6 and s.group("stem").original_channels == 8


def test_concat_maps_offsets():
    model, x = _toy("concat")
    s = analyze(model, x)
    c_in = [sl for sl in s.slices("b") if sl.layer == "c" and sl.role == "in"][0]
    assert c_in.index[:, 0].tolist() == list(range(6, 16))  # b sits after a's 6 channels
    head_in = [sl for sl in s.slices("b") if sl.layer == "head"][0]
    assert head_in.index[:, 0].tolist() == list(range(14, 24))  # cat([z(8), a(6), b(10)])
    s.prune("a", [1, 2])
    assert model.c.in_channels == 14 and model.head.in_features == 22
    c_in = [sl for sl in s.slices("b") if sl.layer == "c" and sl.role == "in"][0]
    assert c_in.index[:, 0].tolist() == list(range(4, 14))


def test_depthwise_and_grouped_convolutions_keep_groups_even():
    model, x = _toy("depth_group")
    s = analyze(model, x)
    c0 = s.group("c0")
    assert c0.channels == 4  # 16 channels tied by the 4 groups of g4: 4 channels per unit
    assert ("dw", "out") in {(m.layer, m.role) for m in c0.members}
    w = [sl for sl in s.slices("c0") if sl.layer == "c0" and sl.param_name == "weight"][0]
    assert w.index.shape == (4, 4) and sorted(w.index.flatten().tolist()) == list(range(16))
    g4_in = [sl for sl in s.slices("c0") if sl.layer == "g4"][0]
    assert g4_in.dim == 1 and g4_in.index.shape == (4, 1)  # the same column in every group
    s.prune("c0", [1])
    assert model.dw.groups == model.dw.out_channels == 12 and model.g4.in_channels == 12
    s.prune("g4", [0, 3])
    assert model.g4.out_channels == 16 and model.g4.groups == 4


def test_flatten_into_linear_spans_spatial_positions():
    model, x = _toy("flatten_fc")
    s = analyze(model, x)
    assert [g.name for g in s.groups] == ["c1", "c2", "fc1"]  # fc2 is the classifier
    fc1 = [sl for sl in s.slices("c2") if sl.layer == "fc1"][0]
    assert fc1.dim == 1 and fc1.index.shape == (6, 16)
    assert fc1.index[2].tolist() == list(range(32, 48))
    s.prune("c2", [2])
    assert model.fc1.in_features == 5 * 16


def test_conv_transpose():
    model, x = _toy("deconv")
    s = analyze(model, x)
    assert [g.name for g in s.groups] == ["down", "up"]  # 'out' produces the model output
    assert ("up", "in") in {(m.layer, m.role) for m in s.group("down").members}
    up = [sl for sl in s.slices("up") if sl.layer == "up" and sl.param_name == "weight"][0]
    assert up.dim == 1  # ConvTranspose2d weights are (in, out, kh, kw)
    s.prune("up", [0, 1])
    s.prune("down", [4])
    assert model.up.out_channels == 8 and model.up.in_channels == 11


def test_multihead_attention_prunes_head_dims():
    model, x = _toy("attention")
    s = analyze(model, x)
    embed = s.group("embed")
    assert embed.channels == 4 and not embed.exact  # 16 dims = 4 heads x 4; a unit spans the heads
    assert ("attn", "out") in {(m.layer, m.role) for m in embed.members}
    s.prune("embed", [0])
    assert model.attn.embed_dim == 12 and model.attn.head_dim == 3
    with torch.no_grad():
        assert model(x).shape == (2, 3)


def test_channel_shuffle_is_a_permutation():
    model, x = _toy("shuffle")
    s = analyze(model, x)
    g = s.group("c1")
    assert g.channels == 4 and g.exact  # 16 channels, 4 groups: a unit is one channel per group
    for seed in range(3):
        assert_zero_equivalent(s, x, "c1", seed)
    s.prune("c1", [1])
    s.prune("c1", [0])
    assert model.c1.out_channels == 8
    s2 = analyze(model, x)  # the pruned model still shuffles consistently
    assert_zero_equivalent(s2, x, "c1")


def test_conv_classifier_output_is_never_pruned():
    model, x = _toy("conv_classifier")
    s = analyze(model, x)
    assert [g.name for g in s.groups] == ["c1"]
    assert ("cls", "in") in {(m.layer, m.role) for m in s.group("c1").members}


def test_unknown_operation_keeps_its_channels_whole():
    model, x = _toy("unknown")
    s = analyze(model, x)
    assert "c1" not in [g.name for g in s.groups]
    assert [g.name for g in s.groups] == ["c2", "c3"]
    assert any("c1" in w and "Bmm" in w for w in s.warnings), s.warnings
    with pytest.raises(StructureError, match="valid names: c2, c3"):
        s.group("c1")


def test_chunk_ties_the_halves():
    model, x = _toy("chunked")
    s = analyze(model, x)
    assert s.group("c1").channels == 6  # 12 channels in 2 chunks: one unit per pair
    s.prune("c1", [0, 4])
    assert model.c1.out_channels == 8 and model.a.in_channels == model.b.in_channels == 4


def test_broadcast_gate_and_channel_scale():
    model, x = _toy("spatial_gate")
    s = analyze(model, x)
    c1 = {(m.layer, m.role) for m in s.group("c1").members}
    assert ("se2", "out") in c1 and ("gate", "in") in c1 and ("gate", "out") not in c1
    assert s.removable("gate") == 0  # its single output channel is broadcast


def test_statistics_over_the_channels_are_approximate():
    model, x = _toy("channel_stats")
    s = analyze(model, x)
    c1 = s.group("c1")
    assert not c1.exact and {(m.layer, m.role) for m in c1.members} == {("c1", "out"), ("c2", "in")}
    s.prune("c1", [0, 1, 2])
    assert model.sa.in_channels == 2  # the mean and the max stay two channels
    with torch.no_grad():
        assert model(x).shape == (2, 2)
