"""Machinery shared by the gradient-projection family (GPM, SGP, TRGP, DFGP; docs/methods.md).

A `GradientProjection` plugin keeps a `BasisMemory` per layer. On every task but the first, it
removes from each projected weight's gradient its component in the kept basis
(g <- g - g M diag(scale) M^T), and zeroes the gradients of the other shared parameters (BatchNorm's
gamma and beta: learned on the first task, frozen afterwards, with BatchNorm layers in eval mode so
that running statistics, where the model keeps them, freeze too; `batchnorm = "train"` leaves them
to train unprojected); task-specific heads are never touched.
The protocol must be plain SGD (`ProjectionParams.check_protocol`). A
Linear layer with a plain weight gets its gradient projected inside its own backward, on the
input side when that is cheaper (`input_projection`); other layers (convolutions, TRGP's scaled
weights), and every layer where another plugin reads the raw gradient after backward (DFGP's
ascent: `project_in_backward=False`), are projected after backward. After each task it captures
the layers' representations from the restored model in eval mode, on a random subset of the
task's training data, and hands them to the memory.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol, cast

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from clbench.errors import ConfigError
from clbench.linalg import Projection, capture_representations, representation_layers
from clbench.models import evaluation_mode, freeze_batchnorm_statistics
from clbench.params import require
from clbench.protocol import ProtocolParams
from clbench.strategies.contract import KEPT_BASIS_SIZE, StrategyPlugin, TaskReport
from clbench.strategies.input_projection import (
    InputProjectedLinear,
    project_inputs,
    projects_inputs,
    stop_projecting_inputs,
)
from clbench.strategies.task_data import sample_task_batch, task_forward


def projected_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Layers whose weight gradients are projected: the representation layers and, in a model
    with one shared head (PMNIST), that head too, as GPM's PMNIST network does. Task-specific
    heads are never projected."""
    layers = representation_layers(model)
    heads = getattr(model, "heads", None)
    if heads is not None and len(heads) == 1:
        layers["heads.0"] = heads[0]
    return layers


def frozen_after_first_task(model: nn.Module) -> list[nn.Parameter]:
    """The shared one-dimensional parameters (BatchNorm's gamma and beta) that the family, and
    Adam-NSCL, learn on the first task and freeze afterwards; task heads excluded."""
    return [
        param
        for name, param in model.named_parameters()
        if param.dim() == 1 and not name.startswith("heads.")
    ]


def weight_parametrizations(layer: nn.Module) -> parametrize.ParametrizationList:
    """`layer.parametrizations.weight` of a layer whose weight is parametrized: the original
    weight (`.original`) and the parametrizations applied to it, in order."""
    parametrizations = cast(nn.ModuleDict, layer.parametrizations)
    return cast(parametrize.ParametrizationList, parametrizations.weight)


def weight_parameter(layer: nn.Module) -> nn.Parameter:
    """The trainable weight tensor of a layer: its own weight, or the original weight underneath
    a parametrization (TRGP's scaled weight), whose gradient is the one to project."""
    if parametrize.is_parametrized(layer, "weight"):
        return cast(nn.Parameter, weight_parametrizations(layer).original)
    return cast(nn.Parameter, layer.weight)


def layer_thresholds(
    base: Sequence[float], increment: float, task: int, names: Sequence[str]
) -> dict[str, float]:
    """Per-layer energy thresholds for `task`: one value for all layers or one per layer, plus
    `increment` per task (GPM on CIFAR-100: 0.97 + 0.003 (t - 1) at task t), capped at 1."""
    if len(base) not in (1, len(names)):
        raise ConfigError(
            f"threshold has {len(base)} values but the model has {len(names)} projected layers "
            f"({', '.join(names)}); give one value or one per layer"
        )
    values = list(base) * len(names) if len(base) == 1 else list(base)
    return {name: min(v + increment * task, 1.0) for name, v in zip(names, values, strict=True)}


SHORTCUT_SUFFIX = ".shortcut.0"


def layer_sample_caps(
    layers: Mapping[str, nn.Module], num_samples: int, layer_caps: Sequence[int] = ()
) -> dict[str, int]:
    """Per-layer sample caps of the family (docs/methods.md, GPM: Representations) on a model's
    layers.

    ``num_samples`` random training samples go through the model; with no ``layer_caps``
    every layer uses all of them. Otherwise the caps apply in order to the layers that are
    not shortcuts (for the reduced ResNet-18: stem ``conv1``, then each block's conv1 and
    conv2, 17 in all), and a shortcut conv named ``<block>.shortcut.0``, which sees the
    same input as ``<block>.conv1``, takes that layer's cap.
    """
    if not layer_caps:
        return dict.fromkeys(layers, num_samples)
    main = [name for name in layers if not name.endswith(SHORTCUT_SUFFIX)]
    if len(main) != len(layer_caps):
        raise ValueError(
            f"{len(layer_caps)} layer caps given but the model has "
            f"{len(main)} non-shortcut representation layers"
        )
    caps = dict(zip(main, layer_caps, strict=True))
    for name in layers:
        if name.endswith(SHORTCUT_SUFFIX):
            partner = name.removesuffix(SHORTCUT_SUFFIX) + ".conv1"
            if partner not in caps:
                raise ValueError(f"shortcut layer {name!r} has no partner layer {partner!r}")
            caps[name] = caps[partner]
    return {name: min(caps[name], num_samples) for name in layers}


@dataclass
class ProjectionParams:
    """Parameters every member of the family shares (docs/methods.md, GPM). Defaults: GPM on
    CIFAR-100, except `layer_caps`, which depend on the model (the presets set AlexNet's).

    threshold: energy threshold eps, one value for all layers or one per projected layer.
    threshold_increment: added to every threshold per task (eps_t = eps + increment * (t - 1) at
        task t).
    samples: random training samples of a task whose representations update the memory.
    layer_caps: how many of those samples each layer uses, in layer order (empty: all); a ResNet
        shortcut takes the cap of its block's first conv.
    batchnorm: `freeze` BatchNorm's gamma and beta (and running statistics) after the first task, as
        GPM, SGP, DFGP and TRGP's ResNet scripts do, or `train` them unprojected on every task,
        as TRGP's CIFAR-100 script does (its freezing condition can never hold).
    """

    threshold: tuple[float, ...] = (0.97,)
    threshold_increment: float = 0.003
    samples: int = 125
    layer_caps: tuple[int, ...] = ()
    batchnorm: Literal["freeze", "train"] = "freeze"

    SOURCES: ClassVar[dict[str, str]] = {
        "threshold": "GPM's CIFAR-100 thresholds (sahagobinda/GPM main_cifar100.py:297)",
        "threshold_increment": "GPM's CIFAR-100 thresholds (sahagobinda/GPM main_cifar100.py:297)",
        "samples": "GPM's CIFAR-100 samples (sahagobinda/GPM main_cifar100.py:193)",
        "layer_caps": "every sample in every layer",
        "batchnorm": "frozen after the first task, as GPM, SGP and DFGP (sahagobinda/GPM "
        "main_cifar100.py:156-157)",
    }

    def __post_init__(self) -> None:
        require(len(self.threshold) >= 1, "threshold needs at least one value")
        for value in self.threshold:
            require(0 < value <= 1, f"threshold value {value} must lie in (0, 1]")
        require(self.threshold_increment >= 0, "threshold_increment must be >= 0")
        require(self.samples >= 1, f"samples={self.samples} must be >= 1")
        require(all(c >= 1 for c in self.layer_caps), "layer_caps must all be >= 1")

    def check_protocol(self, protocol: ProtocolParams) -> None:
        """The family trains with plain SGD, as its papers: weight decay adds a step along the
        weights themselves, outside the complement of the kept bases, and momentum is not part
        of the methods; either is refused with one line."""
        require(
            protocol.optimizer == "sgd" and protocol.momentum == 0 and protocol.weight_decay == 0,
            f"protocol.optimizer={protocol.optimizer}, protocol.momentum={protocol.momentum}, "
            f"protocol.weight_decay={protocol.weight_decay}: the gradient-projection family "
            "(gpm, sgp, trgp, dfgp) "
            "trains with plain SGD; set both to 0 (weight decay steps out of the complement of "
            "the kept bases)",
        )


class BasisMemory(Protocol):
    """What a projection method remembers per layer and how it grows after each task."""

    def update(self, task: int, representations: dict[str, Tensor]) -> None: ...

    def projector(self, name: str) -> tuple[Tensor, Tensor | None] | None:
        """(M, scale) of a layer, None where it has no basis yet; scale None means all ones."""

    def kept(self) -> Iterable[Tensor]: ...

    def sizes(self) -> dict[str, int]: ...


@dataclass
class ProjectionTargets:
    """Per task: (weight, projection) of every layer with a basis that is projected after
    backward, and the 1-D tensors (BatchNorm) whose gradients are zeroed."""

    projected: list[tuple[nn.Parameter, Projection]]
    frozen: list[nn.Parameter]


class GradientProjection(StrategyPlugin):
    """Projects gradients out of a `BasisMemory` and grows it after each task (module docstring)."""

    def __init__(
        self, memory: BasisMemory, params: ProjectionParams, project_in_backward: bool = True
    ) -> None:
        super().__init__()
        self.memory = memory
        self.params = params
        self.project_in_backward = project_in_backward
        self._targets: ProjectionTargets | None = None

    def targets(self, model: nn.Module) -> ProjectionTargets:
        """What every step of this task projects and zeroes; found once per task (the bases and
        the trainable tensors change only between tasks), not by walking the model every step."""
        if self._targets is None:
            projected = []
            for name, layer in projected_layers(model).items():
                projector = self.memory.projector(name)
                if projector is not None and not isinstance(layer, InputProjectedLinear):
                    weight = weight_parameter(layer)
                    projected.append((weight, Projection.of(*projector, like=weight)))
            frozen = frozen_after_first_task(model) if self.params.batchnorm == "freeze" else []
            self._targets = ProjectionTargets(projected, frozen)
        return self._targets

    def before_training_exp(self, strategy, **kwargs) -> None:
        self._targets = None
        if self.task_index(strategy) == 0 or not self.project_in_backward:
            return
        for name, layer in projected_layers(strategy.model).items():
            projector = self.memory.projector(name)
            if projector is not None and projects_inputs(layer):
                project_inputs(layer, Projection.of(*projector, like=layer.weight))

    def before_training_epoch(self, strategy, **kwargs) -> None:
        if self.task_index(strategy) > 0 and self.params.batchnorm == "freeze":
            freeze_batchnorm_statistics(strategy.model)  # running statistics included

    def after_backward(self, strategy, **kwargs) -> None:
        if self.task_index(strategy) == 0:
            return
        targets = self.targets(strategy.model)
        with torch.no_grad():
            for weight, projection in targets.projected:
                if weight.grad is not None:
                    flat = weight.grad.view(weight.grad.shape[0], -1)
                    flat.copy_(projection(flat))
            for param in targets.frozen:
                if param.grad is not None:
                    param.grad.zero_()

    def after_training_exp(self, strategy, **kwargs) -> None:
        for layer in projected_layers(strategy.model).values():
            stop_projecting_inputs(layer)
        representations = self.collect(strategy)
        self.memory.update(self.task_index(strategy), representations)
        self._targets = None

    def collect(self, strategy) -> dict[str, Tensor]:
        """Representations of the projected layers from `samples` random training samples of the
        task just trained, through the (restored) model in eval mode."""
        model = strategy.model
        x, _, t = sample_task_batch(strategy, self.params.samples)
        layers = projected_layers(model)
        caps = layer_sample_caps(layers, len(x), self.params.layer_caps)
        with evaluation_mode(model):
            return capture_representations(model, lambda: task_forward(model, x, t), layers, caps)

    def kept(self) -> Iterable[Tensor]:
        return self.memory.kept()

    def task_report(self) -> TaskReport:
        """Basis size of every layer after the task just trained."""
        return TaskReport(subspaces={KEPT_BASIS_SIZE: self.memory.sizes()})
