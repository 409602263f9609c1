"""How long trace_lr / `tts-nb lr-plan` take on run sizes of real fine-tuning configs (notebook 04).

Prints microseconds per traced optimizer step for Coqui's StepwiseGradualLR and torch's MultiStepLR, stepped per
step and per epoch, and the resulting time for a 1,000,000-step plan.
"""

from __future__ import annotations

import time

from tts_nb_utils.schedules.trace import scheduler_factory, trace_lr

CASES = [
    ("StepwiseGradualLR", {"gradual_learning_rates": [[0, 5e-4], [10000, 4e-4], [20000, 3e-4]]}),
    ("MultiStepLR", {"milestones": [30000, 60000], "gamma": 0.5}),
]
SPE, EPOCHS = 100, 1000  # 100,000 optimizer steps

for name, params in CASES:
    for after_epoch in (False, True):
        make = scheduler_factory(name, params)
        start = time.perf_counter()
        trace = trace_lr(make, SPE, EPOCHS, after_epoch, lr=5e-4)
        sec = time.perf_counter() - start
        us = 1e6 * sec / trace.total_steps
        how = "per epoch" if after_epoch else "per step "
        print(f"{name:<18} {how}: {trace.total_steps} steps in {sec:5.2f} s = {us:5.1f} us/step "
              f"-> 1M-step plan ~{us:5.1f} s")
