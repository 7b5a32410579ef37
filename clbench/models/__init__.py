"""Model registry: a name maps to a backbone builder; every model is a `MultiHeadNet`.

The registry imports no Avalanche module: `MultiHeadNet` (`clbench.models.heads`, an Avalanche
`MultiTaskModule`) is imported when a model is built.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar, cast

import torch
from torch import nn

from clbench.errors import ConfigError
from clbench.models.paper import MLP, AlexNet5, ReducedResNet18, SmallCNN

if TYPE_CHECKING:
    from clbench.models.heads import MultiHeadNet


@dataclass
class ModelParams:
    """Options shared by all models.

    track_running_stats: BatchNorm keeps running statistics for test time. Default False, as in the
        reference models, which use batch statistics at test time too.
    """

    track_running_stats: bool = False

    SOURCES: ClassVar[dict[str, str]] = {
        "track_running_stats": "batch statistics at test time too, as the reference models' "
        "BatchNorm (sahagobinda/GPM main_cifar100.py:37)",
    }


@contextmanager
def evaluation_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run a block with `model` in eval mode, then restore its train/eval mode (also on errors)."""
    was_training = model.training
    model.eval()
    try:
        yield model
    finally:
        model.train(was_training)


def freeze_batchnorm_statistics(model: nn.Module) -> None:
    """Put every BatchNorm layer of `model` in eval mode, for training after the first task in the
    strategies that freeze BatchNorm. With running statistics, the layers then normalise with
    the frozen statistics and stop updating them; without (the reference models), eval mode uses
    batch statistics as train mode does, so nothing changes. `model.train()` undoes it: call it at
    every epoch start."""
    for module in model.modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm):
            module.eval()


BackboneBuilder = Callable[[tuple[int, ...], ModelParams], nn.Module]


@dataclass(frozen=True)
class ModelEntry:
    build: BackboneBuilder
    summary: str
    input_shape: tuple[int, ...] | None = None  # the one input shape it takes; None: it adapts
    images_only: bool = True  # needs C x H x W inputs (False: any shape, flattened)


MODELS: dict[str, ModelEntry] = {
    "alexnet": ModelEntry(
        lambda shape, p: AlexNet5(shape[0], p.track_running_stats),
        "AlexNet-5 (CIFAR-100 protocol), 2048-d features",
        (3, 32, 32),
    ),
    "resnet18": ModelEntry(
        lambda shape, p: ReducedResNet18(shape, 20, 1, p.track_running_stats),
        "reduced ResNet-18, nf=20, stride-1 stem (5-datasets), 640-d features at 32x32",
    ),
    "resnet18-mini": ModelEntry(
        lambda shape, p: ReducedResNet18(shape, 20, 2, p.track_running_stats),
        "reduced ResNet-18, nf=20, stride-2 stem (MiniImageNet), 1440-d features at 84x84",
    ),
    "mlp": ModelEntry(
        lambda shape, p: MLP(math.prod(shape)),
        "MLP with two 100-unit hidden layers (784-100-100 on PMNIST), no BatchNorm",
        images_only=False,
    ),
    "small-cnn": ModelEntry(
        lambda shape, p: SmallCNN(shape, p.track_running_stats),
        "two conv stages (32, 64) and a 128-unit fc layer, for 8x8 and 28x28 inputs",
    ),
}


def register_model(name: str, entry: ModelEntry) -> None:
    """Add a model in-process (a notebook, a plugin package); names are unique."""
    if name in MODELS:
        raise ConfigError(f"model {name!r} is already registered")
    MODELS[name] = entry


def build_model(
    name: str, input_shape: tuple[int, ...], n_heads: int, n_classes: int, params: ModelParams
) -> MultiHeadNet:
    """Backbone `name` for `input_shape` with `n_heads` bias-free heads of `n_classes` outputs."""
    from clbench.models.heads import MultiHeadNet

    if name not in MODELS:
        raise ConfigError(f"unknown model {name!r}; valid models: {', '.join(MODELS)}")
    backbone, problem = _backbone(name, tuple(input_shape), params)
    if backbone is None:
        fitting = [other for other in MODELS if _backbone(other, input_shape, params)[0]]
        raise ConfigError(f"{problem}; models that take it: {', '.join(fitting) or 'none'}")
    feature_dim = cast(int, backbone.feature_dim)  # every backbone of the registry declares it
    return MultiHeadNet(backbone, feature_dim, n_heads, n_classes)


def _backbone(
    name: str, input_shape: tuple[int, ...], params: ModelParams
) -> tuple[nn.Module | None, str]:
    """Model `name`'s backbone for `input_shape`, or None and why it cannot take that input."""
    entry = MODELS[name]
    got = "x".join(map(str, input_shape))
    if entry.input_shape is not None and tuple(input_shape) != entry.input_shape:
        expected = "x".join(map(str, entry.input_shape))
        return None, f"model {name} expects {expected} inputs, the benchmark gives {got}"
    if entry.images_only and len(input_shape) != 3:
        return None, f"model {name} needs C x H x W images, the benchmark gives {got}"
    backbone = entry.build(tuple(input_shape), params)
    if entry.input_shape is None and entry.images_only and not _fits(backbone, input_shape):
        return None, (
            f"model {name} does not fit the benchmark's {got} images (its feature maps shrink "
            "below one pixel)"
        )
    return backbone, ""


def _fits(backbone: nn.Module, input_shape: tuple[int, ...]) -> bool:
    """Whether a forward pass of two zero images of `input_shape` gives `feature_dim` features."""
    try:
        with torch.no_grad(), evaluation_mode(backbone):
            features = backbone(torch.zeros(2, *input_shape))
    except RuntimeError:
        return False
    return tuple(features.shape) == (2, backbone.feature_dim)
