"""Find where NaN/Inf first appear in a model, and how much of a tensor or model survives fp16 or bf16.

- ``first_nonfinite_module(model, *args)``: one forward pass with hooks; the qualified name of the first module
  whose output holds NaN or Inf, with its input and output statistics.
- ``first_nonfinite_gradient(model, *args, loss_fn=...)``: the same, then a backward pass: the first parameter
  (in the order autograd produced the gradients) whose gradient is not finite.
- ``fp16_headroom(tensor_or_module)``: how many values would overflow to Inf or flush to zero when cast to
  float16, and the same for bfloat16 (counted by actually casting, so rounding at the edges is exact).

Used by notebook 02 (NaN under fp16, GPT-SoVITS); works on any ``nn.Module``. The check of the audio itself
before it reaches the model, ``clip_problems`` (NaN, silence, >1.0), lives in :mod:`tts_nb_utils.audio.signal`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import nn

FP16_MAX = 65504.0  #: largest finite float16


@dataclass
class TensorStats:
    """Summary of one tensor: shape, dtype, finite min/max/absmax/mean, and NaN and Inf counts."""

    shape: tuple[int, ...]
    dtype: str
    min: float
    max: float
    absmax: float
    mean: float
    n_nan: int
    n_inf: int

    @property
    def finite(self) -> bool:
        return self.n_nan == 0 and self.n_inf == 0

    def __str__(self) -> str:
        bad = "" if self.finite else f", {self.n_nan} NaN, {self.n_inf} Inf"
        return (f"{self.dtype}{list(self.shape)} min {self.min:.4g} max {self.max:.4g} "
                f"|max| {self.absmax:.4g} mean {self.mean:.4g}{bad}")


def tensor_stats(t: torch.Tensor) -> TensorStats:
    """Statistics of ``t`` (floating point), computed in float32 over its finite values."""
    x = t.detach().float()
    finite = torch.isfinite(x)
    vals = x[finite]
    empty = vals.numel() == 0
    return TensorStats(
        shape=tuple(t.shape),
        dtype=str(t.dtype).replace("torch.", ""),
        min=math.nan if empty else float(vals.min()),
        max=math.nan if empty else float(vals.max()),
        absmax=math.nan if empty else float(vals.abs().max()),
        mean=math.nan if empty else float(vals.mean()),
        n_nan=int(torch.isnan(x).sum()),
        n_inf=int(torch.isinf(x).sum()),
    )


def _tensors(obj) -> list[torch.Tensor]:
    """Floating-point tensors inside nested tuples, lists and dicts (module inputs and outputs)."""
    if torch.is_tensor(obj):
        return [obj] if obj.is_floating_point() or obj.is_complex() else []
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        return [t for item in obj for t in _tensors(item)]
    return []


def _all_finite(tensors: list[torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(t).all()) for t in tensors)


@dataclass
class NonFiniteReport:
    """Where NaN/Inf first appeared. ``module_name`` is the qualified name (as in ``model.get_submodule``;
    ``""`` is the model's own forward, i.e. functional code outside its submodules) or None if all finite."""

    module_name: str | None
    module_type: str | None = None
    inputs: list[TensorStats] = field(default_factory=list)
    outputs: list[TensorStats] = field(default_factory=list)
    nonfinite_modules: list[str] = field(default_factory=list)
    modules_checked: int = 0
    parameter_name: str | None = None
    nonfinite_parameters: list[str] = field(default_factory=list)
    loss: float | None = None
    backward_checked: bool = False
    bad_weights: list[str] = field(default_factory=list)  # the first bad module's own non-finite parameters

    @property
    def finite(self) -> bool:
        return self.module_name is None and self.parameter_name is None

    @property
    def input_was_nonfinite(self) -> bool:
        """True when the first bad module already received NaN/Inf: look upstream (data, a functional op)."""
        return any(not s.finite for s in self.inputs)

    def __str__(self) -> str:
        lines = []
        if self.module_name is None:
            lines.append(f"forward: all {self.modules_checked} module outputs finite")
        else:
            name = self.module_name or "(the model's own forward, outside its submodules)"
            lines.append(f"forward: first non-finite output in {name} ({self.module_type}); "
                         f"{len(self.nonfinite_modules)} of {self.modules_checked} modules non-finite")
            lines += [f"  input  {i}: {s}" for i, s in enumerate(self.inputs)]
            lines += [f"  output {i}: {s}" for i, s in enumerate(self.outputs)]
            if self.bad_weights:
                lines.append(f"  its own weights are non-finite ({', '.join(self.bad_weights)}): an earlier "
                             "optimizer step wrote NaN/Inf into them")
            if self.input_was_nonfinite:
                lines.append("  its input was already non-finite: check the data or the code that feeds it")
            elif self.inputs and max((s.absmax for s in self.inputs), default=0) > FP16_MAX:
                lines.append(f"  its input exceeds the float16 maximum {FP16_MAX:g}: it overflows under fp16")
        if self.backward_checked:
            if self.loss is not None:
                lines.append(f"loss: {self.loss:.6g}")
            if self.parameter_name is None:
                lines.append("backward: all parameter gradients finite")
            else:
                lines.append(f"backward: first non-finite gradient in {self.parameter_name}; "
                             f"{len(self.nonfinite_parameters)} parameters with non-finite gradients")
        return "\n".join(lines)


def _forward_with_hooks(model: nn.Module, args, kwargs) -> tuple[object, NonFiniteReport]:
    report = NonFiniteReport(module_name=None)
    names = {m: n for n, m in model.named_modules()}

    def hook(module, inputs, output):
        report.modules_checked += 1
        outs = _tensors(output)
        if outs and not _all_finite(outs):
            name = names.get(module, "?")
            report.nonfinite_modules.append(name)
            if report.module_name is None:
                report.module_name = name
                report.module_type = type(module).__name__
                report.inputs = [tensor_stats(t) for t in _tensors(inputs)]
                report.outputs = [tensor_stats(t) for t in outs]
                report.bad_weights = [n for n, p in module.named_parameters(recurse=False)
                                      if not _all_finite([p.detach()])]

    handles = [m.register_forward_hook(hook) for m in names]
    try:
        output = model(*args, **kwargs)
    finally:
        for h in handles:
            h.remove()
    return output, report


def first_nonfinite_module(model: nn.Module, *args, **kwargs) -> NonFiniteReport:
    """Run ``model(*args, **kwargs)`` once without gradients, with a forward hook on every module, and report
    the first module (in the order modules finish) whose output holds NaN or Inf, with its input and output
    statistics. ``report.module_name`` is None when every output is finite.

    Call it inside ``torch.autocast(...)`` to check the precision you train with. Hooks are removed afterwards.
    """
    with torch.no_grad():
        _, report = _forward_with_hooks(model, args, kwargs)
    return report


def first_nonfinite_gradient(
    model: nn.Module, *args, loss_fn: Callable[[object], torch.Tensor] | None = None, **kwargs
) -> NonFiniteReport:
    """Forward check as in ``first_nonfinite_module``, then backward: ``loss = loss_fn(output)`` (default: the
    sum of the floating-point outputs) and ``report.parameter_name`` is the first parameter, in the order
    autograd accumulated the gradients (closest to the loss first), whose gradient holds NaN or Inf.

    The model's existing ``.grad`` values are put back afterwards, so this can run in the middle of training.
    """
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    saved = {p: p.grad for _, p in params}
    order: list[str] = []
    handles = []
    for name, p in params:
        p.grad = None
        if hasattr(p, "register_post_accumulate_grad_hook"):
            handles.append(p.register_post_accumulate_grad_hook(lambda _p, _n=name: order.append(_n)))
    try:
        with torch.enable_grad():
            output, report = _forward_with_hooks(model, args, kwargs)
            loss = loss_fn(output) if loss_fn is not None else sum(t.float().sum() for t in _tensors(output))
            if not torch.is_tensor(loss) or loss.numel() != 1:
                raise ValueError(f"loss_fn must return a scalar tensor, got {type(loss).__name__} "
                                 f"{getattr(loss, 'shape', '')}; reduce it (e.g. .mean())")
            report.loss = float(loss.detach())
            loss.backward()
        grads = {n: p.grad for n, p in params}
        seen = order + [n for n, _ in params if n not in order]
        report.nonfinite_parameters = [n for n in seen if grads[n] is not None and not _all_finite([grads[n]])]
        report.parameter_name = report.nonfinite_parameters[0] if report.nonfinite_parameters else None
        report.backward_checked = True
    finally:
        for h in handles:
            h.remove()
        for _, p in params:
            p.grad = saved[p]
    return report


@dataclass
class PrecisionCount:
    """Counts for one target dtype: values that become Inf (overflow), become 0 although non-zero (flush to
    zero), or land in the subnormal range (kept, with reduced precision)."""

    dtype: str
    overflow: int
    flush_to_zero: int
    subnormal: int

    @property
    def ok(self) -> bool:
        return self.overflow == 0 and self.flush_to_zero == 0


@dataclass
class HeadroomReport:
    """``fp16_headroom`` result over ``count`` finite values (``nonfinite`` already NaN/Inf are not counted)."""

    count: int
    nonfinite: int
    absmax: float
    min_nonzero: float
    fp16: PrecisionCount
    bf16: PrecisionCount
    worst: list[tuple[str, int, int]] = field(default_factory=list)  # (name, fp16 overflow, fp16 flush)

    @property
    def fp16_ratio(self) -> float:
        """``absmax / 65504``: above 1 something overflows in float16."""
        return self.absmax / FP16_MAX

    def __str__(self) -> str:
        s = (f"{self.count} values, |max| {self.absmax:.4g} ({self.fp16_ratio:.3g} x fp16 max), smallest non-zero "
             f"|x| {self.min_nonzero:.3g}; fp16: {self.fp16.overflow} overflow, {self.fp16.flush_to_zero} flush "
             f"to zero, {self.fp16.subnormal} subnormal; bf16: {self.bf16.overflow} overflow, "
             f"{self.bf16.flush_to_zero} flush to zero")
        if self.nonfinite:
            s += f"; {self.nonfinite} already NaN/Inf"
        return s


def _named_tensors(obj) -> list[tuple[str, torch.Tensor]]:
    if torch.is_tensor(obj):
        return [("tensor", obj)]
    if isinstance(obj, nn.Module):
        return [(n, p) for n, p in obj.named_parameters()] + [
            (n, b) for n, b in obj.named_buffers() if b.is_floating_point()
        ]
    if isinstance(obj, dict):
        return [(f"{k}.{n}" if n != "tensor" else str(k), t) for k, v in obj.items() for n, t in _named_tensors(v)]
    if isinstance(obj, Iterable) and not isinstance(obj, (str, bytes)):
        return [(f"[{i}]", t) for i, v in enumerate(obj) for _, t in _named_tensors(v)]
    return []


def fp16_headroom(obj: torch.Tensor | nn.Module | dict | Iterable, grads: bool = False) -> HeadroomReport:
    """How the values of a tensor, a module's parameters and float buffers, a (nested) state dict or a list of
    tensors fare in float16 and bfloat16. With ``grads=True`` and a module, checks the parameters' gradients.

    Counted by casting: overflow = finite values that become Inf (|x| >= 65520 for fp16; values between 65504
    and 65520 round down to 65504), flush to zero = non-zero values that become 0 (|x| < ~2.98e-8 for fp16),
    subnormal = values kept with reduced precision. ``worst`` lists the five tensors with most fp16 trouble.
    """
    if grads:
        if not isinstance(obj, nn.Module):
            raise TypeError("fp16_headroom(grads=True) needs an nn.Module")
        named = [(n, p.grad) for n, p in obj.named_parameters() if p.grad is not None]
    else:
        named = _named_tensors(obj)
    named = [(n, t) for n, t in named if t.is_floating_point()]
    count = nonfinite = 0
    absmax, min_nonzero = 0.0, math.inf
    totals = {torch.float16: [0, 0, 0], torch.bfloat16: [0, 0, 0]}
    per_tensor = []
    for name, t in named:
        x = t.detach().float()
        finite = torch.isfinite(x)
        nonfinite += int((~finite).sum())
        x = x[finite]
        count += x.numel()
        if x.numel() == 0:
            continue
        ax = x.abs()
        absmax = max(absmax, float(ax.max()))
        nz = ax[ax > 0]
        if nz.numel():
            min_nonzero = min(min_nonzero, float(nz.min()))
        for dtype, acc in totals.items():
            cast = x.to(dtype)
            over = int(torch.isinf(cast).sum())
            flush = int(((cast == 0) & (x != 0)).sum())
            tiny = torch.finfo(dtype).tiny  # smallest normal
            sub = int(((cast != 0) & (cast.abs().float() < tiny)).sum())
            acc[0] += over
            acc[1] += flush
            acc[2] += sub
            if dtype is torch.float16 and (over or flush):
                per_tensor.append((name, over, flush))
    per_tensor.sort(key=lambda r: (r[1], r[2]), reverse=True)
    return HeadroomReport(
        count=count,
        nonfinite=nonfinite,
        absmax=absmax,
        min_nonzero=min_nonzero if min_nonzero < math.inf else 0.0,
        fp16=PrecisionCount("float16", *totals[torch.float16]),
        bf16=PrecisionCount("bfloat16", *totals[torch.bfloat16]),
        worst=per_tensor[:5],
    )


