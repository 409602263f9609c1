"""Sanity checks that catch a training run that only looks like it works.

Used by notebook 06 (Applio: ``bool("False")`` is True, feature extraction failed on every file behind a
print-only ``try/except``, and training ran on the two "mute" entries at one epoch per second).

* ``parse_bool``: command-line strings to bool; anything unrecognised is an error, never truthy.
* ``check_stage``: compares a stage's inputs with the outputs it produced (audio files vs feature files, by
  name, recursively) and lists the inputs without output (``tts-nb check-features``).
* ``SanityMonitor``: for any training loop; ``SanityCallback``: the same as a Lightning callback. They flag,
  early: a dataset much smaller than expected, a loss that does not change, gradients that are zero or
  missing, parameters an optimizer step did not change, and step times too short for the model's size.
"""

from __future__ import annotations

import math
import statistics
import time
import warnings
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import torch

# -- training sanity monitor -----------------------------------------------------------------------------------
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


class SanityWarning(UserWarning):
    """A sanity check flagged a training run (``on_flag="warn"``)."""


class SanityError(RuntimeError):
    """A sanity check flagged a training run (``on_flag="raise"``)."""


@dataclass
class SanityFlag:
    kind: str  # small-dataset, flat-loss, zero-grad, missing-grad, unchanged-params, fast-steps
    step: int  # optimizer steps seen when it was flagged (0: before training)
    message: str


class SanityMonitor:
    """Flags a training run that only looks like it works. Works in any loop::

        monitor = SanityMonitor(model, expected_samples=len(audio_files))
        monitor.check_dataset(len(train_set))
        for batch in loader:
            loss = ...; loss.backward()
            monitor.before_step()          # gradients: missing or zero? snapshot the parameters
            optimizer.step(); optimizer.zero_grad()
            monitor.after_step(loss)       # parameters changed? loss flat? step time plausible?

    Each kind of problem is flagged once (``flags``), as a SanityWarning (``on_flag="warn"``), a SanityError
    (``"raise"``) or only recorded (``"record"``). Gradient and parameter problems must persist for
    ``patience`` steps (a zero-initialised layer, or a GradScaler skipping its first fp16 steps, is not a bug).
    Gradient and parameter checks run for the first ``check_steps`` steps (None: always); they cost one
    reduction per parameter tensor. Parameter names matching any substring in ``ignore`` are not checked.
    """

    KINDS = ("small-dataset", "flat-loss", "zero-grad", "missing-grad", "unchanged-params", "fast-steps")

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
        on_flag: str = "warn",
    ):
        if on_flag not in ("warn", "raise", "record"):
            raise ValueError(f"on_flag={on_flag!r}: use 'warn', 'raise' or 'record'")
        self.model = model
        self.expected_samples = expected_samples
        self.min_fraction = float(min_fraction)
        self.flat_rtol = float(flat_rtol)
        self.patience = int(patience)
        self.min_step_seconds = min_step_seconds
        self.check_steps = check_steps
        self.ignore = tuple(ignore)
        self.on_flag = on_flag
        self.flags: list[SanityFlag] = []
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
    def check_dataset(self, n_samples: int, expected: int | None = None) -> SanityFlag | None:
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

    def before_step(self, model: torch.nn.Module | None = None) -> None:
        """Call after ``backward()`` and before ``optimizer.step()``: checks gradients, snapshots parameters."""
        if not self._checking():
            return
        named = self._named(model)
        if not named:
            return
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
        self._snapshot = self._after if self._after is not None else self._fingerprints(named)
        self._after = None

    def after_step(self, loss: float | torch.Tensor | None = None, seconds: float | None = None) -> None:
        """Call after ``optimizer.step()``: compares parameters with the snapshot, records loss and step time.

        ``seconds``: this step's duration; by default the time since the previous ``after_step``.
        """
        self.step += 1
        now = time.perf_counter()
        if seconds is None and self._last_end is not None:
            seconds = now - self._last_end
        self._last_end = now
        self._after = None
        if self._snapshot is not None:
            current = self._fingerprints(self._named(None))
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
        return {f.kind for f in self.flags}

    @property
    def ok(self) -> bool:
        return not self.flags

    def report(self) -> str:
        """One line per flag, or a line saying nothing was flagged."""
        if not self.flags:
            return f"sanity monitor: nothing flagged in {self.step} step(s)"
        return "\n".join(f"[{f.kind} @ step {f.step}] {f.message}" for f in self.flags)

    # -- internals -------------------------------------------------------------------------------------------------
    def _checking(self) -> bool:
        return self.check_steps is None or self.step < self.check_steps

    def _named(self, model: torch.nn.Module | None) -> list[tuple[str, torch.Tensor]]:
        model = model if model is not None else self.model
        if model is None:
            raise ValueError(
                "SanityMonitor needs the model: pass it to SanityMonitor(model) or to before_step()"
            )
        self.model = model
        return [
            (n, p)
            for n, p in model.named_parameters()
            if p.requires_grad and not any(pattern in n for pattern in self.ignore)
        ]

    @staticmethod
    def _fingerprints(named: list[tuple[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
        # Sum and L2 norm in float32 per tensor: an optimizer update changes them (no copy of the weights is
        # kept); one transfer to the CPU for all tensors.
        if not named:
            return {}
        values = torch.stack(
            [
                torch.stack(
                    [
                        p.detach().float().sum(),
                        torch.linalg.vector_norm(p.detach().float()),
                    ]
                )
                for _, p in named
            ]
        ).cpu()
        return {name: values[i] for i, (name, _) in enumerate(named)}

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

    def _flag(self, kind: str, message: str) -> SanityFlag | None:
        if kind in self.kinds:
            return None
        flag = SanityFlag(kind, self.step, message)
        self.flags.append(flag)
        if self.on_flag == "raise":
            raise SanityError(f"[{kind}] {message}")
        if self.on_flag == "warn":
            warnings.warn(f"[{kind}] {message}", SanityWarning, stacklevel=3)
        return flag


def _make_callback_class():
    from lightning.pytorch.callbacks import Callback

    class SanityCallback(Callback):
        """``SanityMonitor`` as a Lightning callback: ``Trainer(callbacks=[SanityCallback(expected_samples=N)])``.

        Checks the training set's size at the start (``len(dataset)`` of the train dataloader), gradients and a
        parameter snapshot in ``on_before_optimizer_step``, and parameters, loss and step time at the end of
        each batch that stepped the optimizer. Keyword arguments go to SanityMonitor; ``.monitor`` holds it.
        """

        def __init__(self, **monitor_kwargs):
            self.monitor = SanityMonitor(**monitor_kwargs)
            self._stepped = False

        @property
        def flags(self) -> list[SanityFlag]:
            return self.monitor.flags

        def on_train_start(self, trainer, pl_module) -> None:
            self.monitor.model = pl_module
            loader = trainer.train_dataloader
            dataset = getattr(loader, "dataset", None)
            try:
                n = len(dataset) if dataset is not None else None
            except TypeError:  # an IterableDataset without a length
                n = None
            if n is not None:
                self.monitor.check_dataset(n)

        def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
            self.monitor.before_step(pl_module)
            self._stepped = True

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            if not self._stepped:  # gradient accumulation: no optimizer step in this batch
                return
            self._stepped = False
            loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
            self.monitor.after_step(loss if isinstance(loss, torch.Tensor | float | int) else None)

    return SanityCallback


_LAZY: dict[str, type] = {}


def __getattr__(name: str):
    # SanityCallback is built on first use, so importing this module does not import Lightning.
    if name == "SanityCallback":
        if name not in _LAZY:
            _LAZY[name] = _make_callback_class()
        return _LAZY[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
