"""Device resolution, measured autocast support and seeding."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from tts_nb_utils.device import (
    PRECISIONS,
    amp_support,
    autocast_dtype,
    canonical_precision,
    environment_report,
    param_dtype,
    resolve_device,
    resolve_precision,
    seed_everything,
    uses_grad_scaler,
)


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


def test_precision_names_are_lightnings_and_the_short_names_are_aliases():
    assert PRECISIONS == ("32-true", "16-mixed", "bf16-mixed", "bf16-true")
    assert [canonical_precision(p) for p in PRECISIONS] == list(PRECISIONS)
    assert [canonical_precision(a) for a in ("fp32", "fp16", "BF16 ")] == ["32-true", "16-mixed", "bf16-mixed"]
    assert [autocast_dtype(p) for p in ("fp32", "16-mixed", "bf16", "bf16-true")] == [
        None, torch.float16, torch.bfloat16, None]
    assert [param_dtype(p) for p in PRECISIONS] == [torch.float32] * 3 + [torch.bfloat16]
    assert [uses_grad_scaler(p) for p in ("fp16", *PRECISIONS)] == [True, False, True, False, False]


def test_a_bad_precision_names_the_value_and_the_allowed_names():
    with pytest.raises(ValueError, match=r"precision='fp8': use one of '32-true', '16-mixed', 'bf16-mixed', "
                                         r"'bf16-true' \(Lightning's names\) or an alias \('fp32', 'fp16', 'bf16'\)"):
        canonical_precision("fp8")
    with pytest.raises(ValueError, match=r"precision='bf16-true': use one of '32-true', 'bf16-mixed'.*\('fp32', 'bf16'\)"):
        resolve_precision("bf16-true", "cpu", allowed=("32-true", "bf16-mixed"))
    with pytest.raises(ValueError, match="precision='half'"):
        autocast_dtype("half")


def test_resolve_precision_on_cpu():
    assert resolve_precision("auto", "cpu") == "32-true"  # "auto" picks autocast on CUDA only
    assert resolve_precision("bf16", "cpu") == "bf16-mixed"  # measured: torch's CPU autocast runs bfloat16
    assert resolve_precision("32-true", "cpu") == "32-true"


def test_resolve_precision_refuses_what_the_device_cannot_run(monkeypatch):
    import tts_nb_utils.device as device

    monkeypatch.setattr(device, "amp_support", lambda dev: {"bf16": False, "fp16": True})
    with pytest.raises(ValueError, match=r"precision='bf16' \(bf16-mixed\): bf16 autocast does not run on cpu"):
        resolve_precision("bf16", "cpu")
    assert resolve_precision("fp16", "cpu") == "16-mixed"


def test_configure_threads_policy_env_override_and_bad_values(monkeypatch):
    import os

    from tts_nb_utils.device import THREADS_ENV, configure_threads

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv(THREADS_ENV, raising=False)
        cores = os.cpu_count() or 1
        expected = 1 if cores <= 4 else min(4, cores // 2)  # the policy, written out
        assert configure_threads() == expected == torch.get_num_threads()
        monkeypatch.setenv(THREADS_ENV, "2")
        assert configure_threads("auto") == 2 == torch.get_num_threads()
        assert configure_threads(1) == 1 == torch.get_num_threads()
        for bad in ("many", 0, -1):
            with pytest.raises(ValueError, match="THREADS="):
                configure_threads(bad)
    finally:
        torch.set_num_threads(before)


def test_auto_threads_gives_each_kernel_its_share_of_the_cores():
    from tts_nb_utils.parallel import auto_threads

    assert [auto_threads(c) for c in (1, 2, 4, 6, 8, 16, 64)] == [1, 1, 1, 3, 4, 4, 4]
    assert auto_threads(16, processes=2) == 4 and auto_threads(16, processes=8) == 2
    assert auto_threads(8, processes=4) == 2 and auto_threads(8, processes=16) == 1
    assert auto_threads(2, processes=2) == 1
