"""What this torch does with Applio's ``read_wave`` normalisation of a half tensor on the CPU (notebook 07).

Applio 3.2.2 (``rvc/train/extract/extract_feature_print.py:36-46``) casts the waveform to float16 and then
calls ``F.layer_norm`` on it before the move to the GPU. :func:`probe_half_layer_norm` runs exactly that on
the installed torch and reports whether it raises (the message of issue 546) and, when it does not, how far
the result is from normalising in float32 and casting afterwards (what the fixed order feeds a half model).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F


@dataclass
class HalfNormProbe:
    torch_version: str
    error: str | None  # the exception text, or None when CPU LayerNorm ran in float16
    max_abs_diff: float | None  # |LN(x.half()) - LN(x.float()).half()|, over the clip
    differing: float | None  # fraction of samples that differ


def probe_half_layer_norm(wav: np.ndarray) -> HalfNormProbe:
    """``wav``: one clip as ``soundfile.read`` returns it (float64). Runs the upstream order on the CPU."""
    feats = torch.from_numpy(np.asarray(wav)).half().view(1, -1)
    try:
        with torch.no_grad():
            upstream = F.layer_norm(feats, feats.shape)
    except (RuntimeError, NotImplementedError) as e:
        return HalfNormProbe(torch.__version__, f"{type(e).__name__}: {e}", None, None)
    reference = F.layer_norm(torch.from_numpy(np.asarray(wav)).float().view(1, -1), feats.shape).half()
    diff = (upstream.float() - reference.float()).abs()
    return HalfNormProbe(torch.__version__, None, float(diff.max()), float((diff > 0).float().mean()))


def kernel_dtype_error(dtype: torch.dtype = torch.int32) -> str:
    """The message this torch's CPU LayerNorm gives for a dtype it has no kernel for: the same dispatch
    that produced issue 546's message for float16 on torch builds without a Half kernel."""
    try:
        F.layer_norm(torch.ones(1, 8).to(dtype), (1, 8))
    except (RuntimeError, NotImplementedError) as e:
        return f"{type(e).__name__}: {e}"
    return f"no error for {dtype}"
