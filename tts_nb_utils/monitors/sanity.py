"""A sanity monitor that catches a training run that only looks like it works (notebook 06).

Applio's extraction failed on every file behind a print-only ``try/except``, and training ran on the two
"mute" entries at one epoch per second. :class:`SanityMonitor` flags, early: a dataset much smaller than
expected, a loss that does not change, gradients that are zero or missing, parameters an optimizer step did
not change, and step times too short for the model's size. It is a ``monitors.base.Monitor``: the same hooks
and ``on_problem`` choice as the other monitors, in a plain loop, Lightning (``monitors.lightning``) or the
Coqui trainer (``monitors.coqui``).
"""

from __future__ import annotations

import math
import statistics
import time
from collections import deque
from collections.abc import Iterable

import torch

from ..diagnose.params import parameter_fingerprints
from .base import Monitor, MonitorError, MonitorWarning, Problem

#: Generous memory bandwidths (bytes/s): a step cannot be faster than reading and updating every parameter.
PEAK_BANDWIDTH = {"cpu": 2e11, "cuda": 5e12, "mps": 8e11}
BYTES_TOUCHED_PER_PARAM = 16  # fp32: forward read, gradient write, optimizer read and write; a lower bound


def plausible_min_step_seconds(n_params: int, device: str | torch.device = "cpu") -> float:
    """A lower bound on one training step's time (seconds) for ``n_params`` trainable parameters.

    Every step must at least read each parameter, write its gradient and let the optimizer update it
    (``BYTES_TOUCHED_PER_PARAM`` bytes each) at no more than a generous peak bandwidth for the device type.
    Real steps are far slower; a step below this bound skipped its work.
    """
    kind = torch.device(device).type
    return n_params * BYTES_TOUCHED_PER_PARAM / PEAK_BANDWIDTH.get(kind, PEAK_BANDWIDTH["cuda"])


class SanityWarning(MonitorWarning):
    """A sanity check flagged a training run (``on_problem="warn"``)."""


class SanityError(MonitorError):
    """A sanity check flagged a training run (``on_problem="raise"``)."""


class SanityMonitor(Monitor):
    """Flags a training run that only looks like it works. In a plain loop::

        monitor = SanityMonitor(model, expected_samples=len(audio_files))
        monitor.check_dataset(len(train_set))
        for step, batch in enumerate(loader):
            loss = ...; loss.backward()
            monitor.before_optimizer_step(step)       # gradients: missing or zero? fingerprint the parameters
            optimizer.step(); optimizer.zero_grad()
            monitor.after_optimizer_step(step, loss)  # parameters changed? loss flat? step time plausible?

    Kinds: small-dataset, flat-loss, zero-grad, missing-grad, unchanged-params, fast-steps. Each kind is
    reported once (``problems``), as a SanityWarning (``on_problem="warn"``), a SanityError (``"raise"``) or
    only recorded (``"record"``). Gradient and parameter problems must persist for
    ``patience`` steps (a zero-initialised layer, or a GradScaler skipping its first fp16 steps, is not a bug).
    Gradient and parameter checks run for the first ``check_steps`` steps (None: always); they cost one
    reduction per parameter tensor. Parameter names matching any substring in ``ignore`` are not checked.
    """

    KINDS = ("small-dataset", "flat-loss", "zero-grad", "missing-grad", "unchanged-params", "fast-steps")
    name = "sanity"
    needs_gradients = True
    error = SanityError
    warning = SanityWarning

    def __init__(
        self,
        model: torch.nn.Module | None = None,
        *,
        expected_samples: int | None = None,
        min_fraction: float = 0.5,
        flat_window: int = 20,
        flat_rtol: float = 1e-5,
        patience: int = 5,
        time_window: int = 5,
        min_step_seconds: float | None = None,
        check_steps: int | None = 200,
        ignore: Iterable[str] = (),
        on_problem: str = "warn",
    ):
        super().__init__(on_problem)
        self.model = model
        self.expected_samples = expected_samples
        self.min_fraction = float(min_fraction)
        self.flat_rtol = float(flat_rtol)
        self.patience = int(patience)
        self.min_step_seconds = min_step_seconds
        self.check_steps = check_steps
        self.ignore = tuple(ignore)
        self.step = 0
        self.losses: deque[float] = deque(maxlen=int(flat_window))
        self.step_times: deque[float] = deque(maxlen=int(time_window))
        self.loss_history: list[float] = []
        self._zero: dict[str, int] = {}
        self._none: dict[str, int] = {}
        self._same: dict[str, int] = {}
        self._snapshot: dict[str, torch.Tensor] | None = None
        self._after: dict[str, torch.Tensor] | None = None
        self._last_end: float | None = None

    # -- public checks -----------------------------------------------------------------------------------------
    def on_train_start(self, model=None, optimizer=None, schedulers=(), dataset_size=None) -> None:
        """Bind the model and check the training set's size (when the adapter knows it)."""
        if model is not None:
            self.model = model
        if dataset_size is not None:
            self.check_dataset(dataset_size)

    def check_dataset(self, n_samples: int, expected: int | None = None) -> Problem | None:
        """Flag a dataset with fewer than ``min_fraction`` of the ``expected`` samples (or none at all)."""
        expected = self.expected_samples if expected is None else expected
        if n_samples == 0:
            return self._flag("small-dataset", "the training set is empty; an earlier stage produced nothing")
        if expected and n_samples < self.min_fraction * expected:
            return self._flag(
                "small-dataset",
                f"the training set has {n_samples} samples but about {expected} were expected "
                f"({n_samples / expected:.0%}); an earlier stage (feature extraction?) probably dropped files "
                "without failing: check its outputs (tts-nb check-features) before training",
            )
        return None

    def before_optimizer_step(self, step: int | None = None, loss: torch.Tensor | None = None) -> bool:
        """Call after ``backward()`` and before ``optimizer.step()``: checks gradients, fingerprints parameters."""
        if not self._checking():
            return True
        named = self._named(None)
        if not named:
            return True
        grads = [p.grad for _, p in named]
        present = [i for i, g in enumerate(grads) if g is not None]
        norms = (  # L2 norm: zero exactly when every element is zero; one transfer for all tensors
            torch.stack(
                [torch.linalg.vector_norm(grads[i].detach().float()) for i in present]
            ).cpu()
            if present
            else torch.empty(0)
        )
        peak_of = dict(zip(present, norms.tolist(), strict=True))
        for i, (name, _) in enumerate(named):
            self._none[name] = self._none.get(name, 0) + 1 if grads[i] is None else 0
            zero = grads[i] is not None and peak_of[i] == 0.0
            self._zero[name] = self._zero.get(name, 0) + 1 if zero else 0
        self._streak_flag(
            "missing-grad",
            self._none,
            "no gradient (.grad is None) after backward for {n} step(s): {names}. Are they used in the loss, "
            "detached, or created after the optimizer?",
        )
        self._streak_flag(
            "zero-grad",
            self._zero,
            "all-zero gradients for {n} step(s): {names}. Their inputs may be all zeros (silent or empty "
            "features?), or the loss does not depend on them.",
        )
        # The fingerprints taken after the previous step still describe the parameters (only the optimizer
        # moves them), so reuse them instead of reading every parameter twice per step.
        self._snapshot = self._after if self._after is not None else parameter_fingerprints(named)
        self._after = None
        return True

    def after_optimizer_step(
        self, step: int | None = None, loss: float | torch.Tensor | None = None, seconds: float | None = None
    ) -> None:
        """Call after ``optimizer.step()``: compares parameters with the snapshot, records loss and step time.

        ``seconds``: this step's duration; by default the time since the previous call.
        """
        self.step += 1
        now = time.perf_counter()
        if seconds is None and self._last_end is not None:
            seconds = now - self._last_end
        self._last_end = now
        self._after = None
        if self._snapshot is not None:
            current = parameter_fingerprints(self._named(None))
            for name, fingerprint in current.items():
                if name in self._snapshot:
                    same = torch.equal(fingerprint, self._snapshot[name])
                    self._same[name] = self._same.get(name, 0) + 1 if same else 0
            self._after = current if self._checking() else None
            self._snapshot = None
            self._streak_flag(
                "unchanged-params",
                self._same,
                "parameters unchanged by {n} optimizer step(s): {names}. Is the learning rate 0, are they "
                "missing from the optimizer, or are their gradients zero?",
            )
        if loss is not None:
            self._record_loss(float(loss.detach()) if isinstance(loss, torch.Tensor) else float(loss))
        if seconds is not None:
            self.step_times.append(float(seconds))
            self._check_time()

    @property
    def kinds(self) -> set[str]:
        """The kinds of problem flagged so far."""
        return {p.kind for p in self.problems}

    def format_problems(self) -> str:
        """One line per problem, or a line saying nothing was flagged."""
        if not self.problems:
            return f"sanity monitor: nothing flagged in {self.step} step(s)"
        return super().format_problems()

    # -- internals -------------------------------------------------------------------------------------------------
    def _checking(self) -> bool:
        return self.check_steps is None or self.step < self.check_steps

    def _named(self, model: torch.nn.Module | None) -> list[tuple[str, torch.Tensor]]:
        model = model if model is not None else self.model
        if model is None:
            raise ValueError(
                "SanityMonitor needs the model: pass it to SanityMonitor(model) (an adapter passes it at the start)"
            )
        self.model = model
        return [
            (n, p)
            for n, p in model.named_parameters()
            if p.requires_grad and not any(pattern in n for pattern in self.ignore)
        ]

    def _streak_flag(self, kind: str, streaks: dict[str, int], template: str) -> None:
        names = [n for n, s in streaks.items() if s >= self.patience]
        if names:
            shown = ", ".join(names[:6]) + (f" and {len(names) - 6} more" if len(names) > 6 else "")
            self._flag(
                kind,
                f"{len(names)} parameter tensor(s) with " + template.format(n=self.patience, names=shown),
            )

    def _record_loss(self, value: float) -> None:
        self.loss_history.append(value)
        self.losses.append(value)
        if len(self.losses) == self.losses.maxlen and all(math.isfinite(v) for v in self.losses):
            spread = max(self.losses) - min(self.losses)
            scale = max(abs(statistics.fmean(self.losses)), 1e-12)
            if spread <= self.flat_rtol * scale:
                self._flag(
                    "flat-loss",
                    f"the loss has not changed over the last {len(self.losses)} steps (stays at {value:.6g}); "
                    "is the model learning at all (learning rate, detached loss, identical batches)?",
                )

    def _check_time(self) -> None:
        if len(self.step_times) < self.step_times.maxlen or self.model is None:
            return
        n_params = sum(p.numel() for p in self.model.parameters() if p.requires_grad)
        device = next((p.device for p in self.model.parameters()), torch.device("cpu"))
        bound = self.min_step_seconds
        if bound is None:
            bound = plausible_min_step_seconds(n_params, device)
        median = statistics.median(self.step_times)
        if median < bound:
            self._flag(
                "fast-steps",
                f"steps take {median * 1e3:.3g} ms (median of {len(self.step_times)}), less than the "
                f"{bound * 1e3:.3g} ms that merely reading and updating {n_params:,} parameters takes on "
                f"{device.type}: the loop is probably skipping the work (empty batches, swallowed errors)",
            )

    def _flag(self, kind: str, message: str) -> Problem | None:
        if kind in self.kinds:  # each kind once
            return None
        return self.report(kind, self.step, message)
