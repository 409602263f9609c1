"""Device resolution, measured autocast support and seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tts_nb_utils.device import amp_support, environment_report, resolve_device, seed_everything


def test_auto_resolves_to_an_available_device():
    dev = resolve_device("auto")
    if torch.cuda.is_available():
        assert dev.type == "cuda"
    else:
        assert dev.type in {"cpu", "mps"}


def test_explicit_cpu_and_device_objects_pass_through():
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")


def test_unknown_device_string_names_the_value():
    with pytest.raises(ValueError, match="toaster"):
        resolve_device("toaster")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_gpu_is_a_clear_error():
    with pytest.raises(RuntimeError, match="DEVICE='cuda'.*auto"):
        resolve_device("cuda")


def test_cpu_autocast_support_is_measured():
    support = amp_support("cpu")
    assert set(support) == {"bf16", "fp16"}
    # torch's CPU autocast has run matmuls in bfloat16 since 1.10.
    assert support["bf16"] is True


def test_seed_everything_makes_all_generators_repeat():
    def draw():
        return random.random(), np.random.rand(), torch.rand(1).item()

    seed_everything(123)
    first = draw()
    seed_everything(123)
    assert draw() == first
    seed_everything(124)
    assert draw() != first


def test_environment_report_fields():
    rep = environment_report("cpu").as_dict()
    assert rep["device"] == "cpu" and rep["torch"] == torch.__version__
    assert rep["gpu_name"] is None and isinstance(rep["bf16_autocast"], bool)
