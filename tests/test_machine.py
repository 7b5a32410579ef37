"""The hardware a result records: the processor's model and torch's CPU kernel set."""

import platform

import torch

from clbench.machine import cpu_kernels, cpu_model, device_name
from clbench.runner import environment

CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9654 96-Core Processor
flags\t\t: fpu vme

processor\t: 1
model name\t: AMD EPYC 9654 96-Core Processor
"""


def test_the_model_name_is_read_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO)
    assert cpu_model(path) == "AMD EPYC 9654 96-Core Processor"


def test_without_cpuinfo_the_model_falls_back_to_platform(tmp_path):
    fallback = platform.processor() or platform.machine() or "unknown"
    assert cpu_model(tmp_path / "absent") == fallback
    blank = tmp_path / "blank"
    blank.write_text("processor\t: 0\nmodel name\t:\n")
    assert cpu_model(blank) == fallback


def test_a_result_names_the_processor_and_kernels_it_ran_with():
    recorded = environment("cpu")
    assert recorded["cpu"] == cpu_model() == device_name(torch.device("cpu"))
    assert recorded["device_name"] == recorded["cpu"]
    assert recorded["cpu_kernels"] == cpu_kernels() == torch.backends.cpu.get_cpu_capability()
