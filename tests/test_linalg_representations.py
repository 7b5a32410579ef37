"""Tests of clbench.linalg.representations: layer inputs as matrices W R = output; and the
projection family's per-layer sample caps on them (clbench.strategies.projection)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from clbench.linalg.representations import (
    GramAccumulator,
    capture_representations,
    layer_input_matrix,
    representation_layers,
)
from clbench.strategies.projection import layer_sample_caps

F64 = torch.float64


def conv_output_as_matrix(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """The conv's output without bias as (out, N * Ho * Wo), samples outer."""
    y = F.conv2d(x, conv.weight, None, conv.stride, conv.padding, conv.dilation)
    return y.transpose(0, 1).reshape(conv.out_channels, -1)


@pytest.mark.parametrize(
    "conv_kwargs",
    [
        {"kernel_size": 3},
        {"kernel_size": (2, 3), "stride": 2, "padding": 1},
        {"kernel_size": 3, "stride": (1, 2), "padding": (2, 1), "dilation": 2},
        {"kernel_size": 1, "stride": 2},
    ],
)
def test_conv_weight_times_representation_is_the_conv_output(conv_kwargs: dict) -> None:
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 5, bias=True, **conv_kwargs).double()
    x = torch.randn(4, 3, 9, 11, dtype=F64)
    R = layer_input_matrix(conv, x)
    kh, kw = conv.kernel_size
    assert R.shape[0] == 3 * kh * kw
    expected = conv_output_as_matrix(conv, x)
    assert torch.allclose(conv.weight.view(5, -1) @ R, expected, atol=1e-12)
    # and against the module itself, bias removed
    out = (conv(x) - conv.bias.view(1, -1, 1, 1)).transpose(0, 1).reshape(5, -1)
    assert torch.allclose(conv.weight.view(5, -1) @ R, out, atol=1e-12)


def test_linear_representation_columns_are_the_inputs() -> None:
    torch.manual_seed(1)
    fc = nn.Linear(6, 4).double()
    x = torch.randn(5, 6, dtype=F64)
    R = layer_input_matrix(fc, x)
    assert torch.equal(R, x.T)
    assert torch.allclose(fc.weight @ R, (fc(x) - fc.bias).T, atol=1e-12)
    x3 = torch.randn(2, 3, 6, dtype=F64)  # (N, L, d): every token is a column
    R3 = layer_input_matrix(fc, x3)
    assert torch.allclose(fc.weight @ R3, (fc(x3) - fc.bias).reshape(-1, 4).T, atol=1e-12)


@pytest.mark.parametrize(
    ("module", "x", "match"),
    [
        (nn.Conv2d(4, 4, 3, groups=2), torch.ones(1, 4, 5, 5), "groups=2"),
        (nn.Conv2d(2, 2, 3, padding="same"), torch.ones(1, 2, 5, 5), "padding='same'"),
        (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), torch.ones(1, 2, 5, 5), "reflect"),
        (nn.Conv2d(2, 2, 3), torch.ones(1, 3, 5, 5), r"\(N, 2, H, W\)"),
        (nn.Linear(3, 2), torch.ones(4, 5), r"\(N, \.\.\., 3\)"),
        (nn.ReLU(), torch.ones(2, 2), "nn.Linear or nn.Conv2d"),
    ],
)
def test_unsupported_layers_and_inputs_are_rejected(
    module: nn.Module, x: torch.Tensor, match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        layer_input_matrix(module, x)


class TinyNet(nn.Module):
    """Conv -> pool -> Linear body with per-task heads under ``heads``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 3, padding=1, bias=False)
        self.headstock = nn.Linear(3 * 2 * 2, 4, bias=False)  # not a head: name differs
        self.heads = nn.ModuleList([nn.Linear(4, 2), nn.Linear(4, 2)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.max_pool2d(torch.relu(self.conv(x)), 2)
        return self.heads[0](torch.relu(self.headstock(h.flatten(1))))


def test_representation_layers_skip_heads_and_keep_module_order() -> None:
    net = TinyNet()
    layers = representation_layers(net)
    assert list(layers) == ["conv", "headstock"]
    assert layers["conv"] is net.conv


def test_capture_representations_caps_samples_and_removes_hooks() -> None:
    torch.manual_seed(2)
    net = TinyNet().double().eval()
    x = torch.randn(5, 2, 4, 4, dtype=F64)
    layers = representation_layers(net)
    reps = capture_representations(net, lambda: net(x), layers, {"conv": 2})
    assert torch.equal(reps["conv"], layer_input_matrix(net.conv, x[:2]))
    assert reps["conv"].shape == (18, 2 * 16)
    hidden = F.max_pool2d(torch.relu(net.conv(x)), 2).flatten(1)
    assert torch.allclose(reps["headstock"], hidden.T)  # uncapped: all 5 samples
    assert not reps["conv"].requires_grad
    assert all(not m._forward_hooks for m in net.modules())


def test_capture_representations_over_several_calls_fills_the_cap_in_order() -> None:
    net = TinyNet().double()
    a, b = torch.randn(3, 2, 4, 4, dtype=F64), torch.randn(3, 2, 4, 4, dtype=F64)

    def two_batches() -> None:
        net(a)
        net(b)

    reps = capture_representations(net, two_batches, {"conv": net.conv}, {"conv": 4})
    assert torch.equal(reps["conv"], layer_input_matrix(net.conv, torch.cat([a, b[:1]])))


def test_capture_representations_removes_hooks_when_forward_fails() -> None:
    net = TinyNet()

    def broken() -> None:
        net(torch.ones(1, 2, 4, 4))
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        capture_representations(net, broken, representation_layers(net))
    assert all(not m._forward_hooks for m in net.modules())


def test_capture_representations_rejects_bad_arguments() -> None:
    net = TinyNet()
    layers = representation_layers(net)
    forward = lambda: net(torch.ones(1, 2, 4, 4))  # noqa: E731
    with pytest.raises(ValueError, match="'fc9'"):
        capture_representations(net, forward, layers, {"fc9": 3})
    with pytest.raises(ValueError, match="expected an int >= 1"):
        capture_representations(net, forward, layers, {"conv": 0})
    with pytest.raises(ValueError, match="not a module of the given model"):
        capture_representations(net, forward, {"x": nn.Linear(2, 2)})
    with pytest.raises(ValueError, match="saw no input"):
        capture_representations(net, lambda: None, layers)
    bad = {"conv": net.conv, "g": nn.Conv2d(2, 2, 3, groups=2)}
    net.g = bad["g"]
    with pytest.raises(ValueError, match="groups=2"):
        capture_representations(net, forward, bad)
    assert all(not m._forward_hooks for m in net.modules())  # none left behind


def test_gram_accumulator_sums_over_batches_without_inputs() -> None:
    torch.manual_seed(3)
    net = TinyNet().double()
    batches = [torch.randn(n, 2, 4, 4, dtype=F64) for n in (3, 1, 4)]
    with GramAccumulator(net) as acc, torch.no_grad():
        for xb in batches:
            net(xb)
    assert all(not m._forward_hooks for m in net.modules())
    X = layer_input_matrix(net.conv, torch.cat(batches))
    assert acc.grams["conv"].dtype == F64
    assert torch.allclose(acc.grams["conv"], X @ X.T, atol=1e-10)
    assert acc.counts == {"conv": 8 * 16, "headstock": 8}
    H = F.max_pool2d(torch.relu(net.conv(torch.cat(batches))), 2).flatten(1).T
    assert torch.allclose(acc.grams["headstock"], H @ H.T, atol=1e-10)


def test_gram_accumulator_float32_model_accumulates_in_float64() -> None:
    net = TinyNet()
    x = torch.randn(2, 2, 4, 4)
    with GramAccumulator(net, {"conv": net.conv}) as acc:
        net(x)
    X = layer_input_matrix(net.conv, x).double()
    assert torch.allclose(acc.grams["conv"], X @ X.T, atol=1e-10)
    assert set(acc.grams) == {"conv"}
    with pytest.raises(ValueError, match="dtype"):
        GramAccumulator(net, dtype=torch.float16)


class Block(nn.Module):
    """Reduced-ResNet BasicBlock naming: conv1, conv2 and, when downsampling, shortcut.0."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))


class ResNetNames(nn.Module):
    """Module tree of the reduced ResNet-18 (tiny widths; never run forward)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 2, 3, 1, 1, bias=False)
        widths, strides, cin = [2, 4, 8, 16], [1, 2, 2, 2], 2
        for i, (w, s) in enumerate(zip(widths, strides, strict=True), start=1):
            setattr(self, f"layer{i}", nn.Sequential(Block(cin, w, s), Block(w, w, 1)))
            cin = w
        self.heads = nn.ModuleList([nn.Linear(16, 5)])


RESNET_CAPS = (10,) * 8 + (50,) * 3 + (100,) * 6  # docs/methods.md, GPM on the reduced ResNet-18


def test_gpm_caps_for_the_reduced_resnet() -> None:
    layers = representation_layers(ResNetNames())
    assert len(layers) == 20
    caps = layer_sample_caps(layers, 100, RESNET_CAPS)
    assert list(caps) == list(layers)
    main = [caps[n] for n in layers if not n.endswith("shortcut.0")]
    assert main == list(RESNET_CAPS)
    assert caps["conv1"] == 10 and caps["layer4.1.conv2"] == 100
    for block in ("layer2.0", "layer3.0", "layer4.0"):
        assert caps[f"{block}.shortcut.0"] == caps[f"{block}.conv1"]
    assert (caps["layer2.0.shortcut.0"], caps["layer3.0.shortcut.0"]) == (10, 50)
    assert caps["layer4.0.shortcut.0"] == 100


def test_gpm_caps_for_alexnet_and_mlp() -> None:
    alex = {f"l{i}": nn.Linear(2, 2) for i in range(5)}
    assert list(layer_sample_caps(alex, 125, (24, 100, 100, 125, 125)).values()) == [
        24,
        100,
        100,
        125,
        125,
    ]
    mlp = {f"fc{i}": nn.Linear(2, 2) for i in range(3)}
    assert layer_sample_caps(mlp, 300) == {"fc0": 300, "fc1": 300, "fc2": 300}
    assert layer_sample_caps(mlp, 50, (100, 20, 60)) == {"fc0": 50, "fc1": 20, "fc2": 50}
    with pytest.raises(ValueError, match="5 layer caps given but the model has 3"):
        layer_sample_caps(mlp, 125, (24, 100, 100, 125, 125))
    orphan = {**{f"c{i}": nn.Linear(2, 2) for i in range(17)}, "b.shortcut.0": nn.Linear(2, 2)}
    with pytest.raises(ValueError, match=r"no partner layer 'b\.conv1'"):
        layer_sample_caps(orphan, 100, RESNET_CAPS)
