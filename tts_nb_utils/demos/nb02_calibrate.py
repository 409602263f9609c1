"""Per-run calibration of notebook 02's miniature from measured activation peaks: which clip is made loud, and
the gains that put only that clip (reproduction (i)) or every clip (reproduction (ii)) past float16's 65504.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from .nb02_tiny_vits import TinyVits, TinyVitsConfig, batch_order, content_features, demo_clips

FP16_MAX = 65504.0  #: the largest finite float16


def clip_peaks(model: TinyVits, clips: torch.Tensor, content: torch.Tensor) -> np.ndarray:
    """The largest ``|value|`` of the activation that ``activation_gain`` scales, per clip, in float32 at gain 1:
    what a gain ``g`` turns into ``g * peak``, and fp16 turns into Inf above 65504. A batch's peak is the largest
    of its clips' peaks."""
    peaks: list[float] = []
    handle = model.enc_q[0].register_forward_hook(lambda m, i, o: peaks.extend(o.detach().abs().amax(dim=(1, 2)).tolist()))
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            model(content.float(), clips.float())
    finally:
        handle.remove()
    return np.array(peaks)


def with_loud_clip(clips: np.ndarray, index: int, db: float) -> np.ndarray:
    """A copy of ``clips`` ``[n, samples]`` where clip ``index`` is ``db`` louder than the loudest other clip (by
    peak); when that would pass 0.99 full scale, the other clips are turned down instead."""
    out = clips.copy()
    others = np.abs(np.delete(out, index, axis=0)).max()
    target = others * 10 ** (db / 20)
    out[index] *= target / np.abs(out[index]).max()
    return out * min(1.0, 0.99 / target)


def intermittent_clip(n_clips: int, batch_size: int, steps: int, seed: int, log_every: int) -> int:
    """The clip whose presence in the logged batches of a run (:func:`batch_order`, steps ``0, log_every, ...``)
    makes the log intermittent: present in a logged batch, absent in a later one, present in about half. The
    notebook makes that clip the loud one, so that NaN lines come and go in ``train.log`` for any seed. ``seed``:
    the run's, which starts fresh at epoch 1 (:func:`train_tiny_vits` draws with ``seed + first_epoch``)."""
    logged = batch_order(n_clips, batch_size, steps, seed + 1)[::log_every]

    def score(i: int) -> tuple[bool, float]:
        present = [bool((b == i).any()) for b in logged]
        first = present.index(True) if any(present) else len(present)
        return (not any(present[first:]) or all(present[first:])), abs(sum(present) / len(present) - 0.5)

    return min(range(n_clips), key=score)


@dataclass
class Calibration:
    """Notebook 02's data and gains for one run: ``clips`` ``[n, samples]`` with clip ``loud`` made loud, their
    ``content`` features, ``val`` clips, the per-clip activation ``peaks`` (sorted), and the gains."""

    clips: torch.Tensor
    content: torch.Tensor
    val: tuple[torch.Tensor, torch.Tensor]
    loud: int
    peaks: np.ndarray
    gain_intermittent: float  #: puts the loud clip above 65504 and every other clip below, by ``margin`` each side
    gain_persistent: float  #: puts every clip, hence every batch, at twice 65504 or more
    margin: float


def calibrate(n_clips: int, seconds: float, loud_db: float, batch_size: int, steps: int, log_every: int, seed: int,
              device: torch.device, cfg: TinyVitsConfig | None = None) -> Calibration:
    """Build the clips (:func:`intermittent_clip` made ``loud_db`` louder), measure each clip's activation peak on
    the initial weights every run starts from (``torch.manual_seed(seed)``), and derive the gains: for (i) the
    geometric middle between the loud clip's peak and the next one, for (ii) twice 65504 over the quietest clip."""
    cfg = cfg or TinyVitsConfig()
    loud = intermittent_clip(n_clips, batch_size, steps, seed, log_every)
    clips = torch.from_numpy(with_loud_clip(demo_clips(n_clips, seconds, cfg, seed=seed), loud, loud_db)).to(device)
    val_clips = torch.from_numpy(demo_clips(4, seconds, cfg, seed=seed + 1)).to(device)
    content = content_features(clips, cfg)
    torch.manual_seed(seed)
    peaks = np.sort(clip_peaks(TinyVits(cfg).to(device), clips, content))
    return Calibration(clips, content, (content_features(val_clips, cfg), val_clips), loud, peaks,
                       FP16_MAX / math.sqrt(peaks[-1] * peaks[-2]), 2 * FP16_MAX / peaks[0],
                       math.sqrt(peaks[-1] / peaks[-2]))
