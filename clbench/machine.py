"""The hardware a run ran on, for its result's `environment`: the device's name (the GPU's, or the
processor's model) and the CPU kernel set torch dispatches to. Results are reproducible bit for bit
only on the same processor kind and kernel set: other floating-point rounding, compounded over
training, moves accuracies (docs/reliability.md, "The same inputs give the same numbers")."""

from __future__ import annotations

import platform
from pathlib import Path

import torch

CPUINFO = Path("/proc/cpuinfo")


def cpu_model(cpuinfo: Path = CPUINFO) -> str:
    """The processor's model name: Linux's `model name` line, else what `platform` knows."""
    try:
        for line in cpuinfo.read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                return value.strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def cpu_kernels() -> str:
    """The instruction set of torch's CPU kernels on this machine (e.g. AVX2, AVX512)."""
    return torch.backends.cpu.get_cpu_capability()


def device_name(device: torch.device) -> str:
    """The GPU's name for a CUDA device, the processor's model for the CPU."""
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_model()
