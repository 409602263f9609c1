"""Notebook 02's miniature: upstream's resume rules (s2_train.py:206-263 at 48b1a01) and the per-run calibration."""

from __future__ import annotations

import numpy as np
import torch

from tts_nb_utils.demos.nb02_calibrate import intermittent_clip, with_loud_clip
from tts_nb_utils.demos.nb02_resume import copy_checkpoints, resume
from tts_nb_utils.demos.nb02_tiny_vits import batch_order, save_checkpoint


def _nets():
    nets = (torch.nn.Linear(3, 3), torch.nn.Linear(2, 2))
    return nets, tuple(torch.optim.AdamW(n.parameters(), lr=1e-4) for n in nets)


def _pair(folder, step=40, epoch=2):
    nets, opts = _nets()
    for part, net, opt in zip("GD", nets, opts, strict=True):
        net(torch.ones(1, net.in_features)).sum().backward()
        opt.step()  # Adam moments to save
        save_checkpoint(folder / f"{part}_{step}.pth", net, opt, epoch, 1e-4)
    return [folder / f"G_{step}.pth", folder / f"D_{step}.pth"]


def test_resume_follows_upstream_and_falls_back_to_pretrained_silently(tmp_path):
    pair = _pair(tmp_path / "src")
    for name, files, optimizer, expected in (("g-only", pair[:1], "none", 1), ("deleted", pair, "delete", 1),
                                             ("none", pair, "none", 3), ("keep", pair, "keep", 3)):
        folder = copy_checkpoints(files, tmp_path / name, optimizer)
        nets, opts = _nets()
        epoch, source = resume(folder, nets, opts, None)
        assert epoch == expected and (source is None) == (expected == 1), name
        if name == "keep":
            assert opts[0].state_dict()["state"], "the saved optimizer state is restored"
        if name == "none":
            assert not opts[0].state_dict()["state"], "optimizer None: a fresh AdamW"
    assert torch.load(pair[0], weights_only=True)["optimizer"] is not None  # the originals are only read


def test_the_loud_clip_comes_and_goes_in_the_logged_batches_for_any_seed():
    for seed in range(20):
        i = intermittent_clip(8, 4, 40, seed, 5)
        present = [bool((b == i).any()) for b in batch_order(8, 4, 40, seed + 1)[::5]]
        first = present.index(True)
        assert not all(present[first:]), seed  # a logged batch without it follows one with it
    clips = np.random.default_rng(0).uniform(-0.1, 0.1, (4, 100)).astype(np.float32)
    loud = with_loud_clip(clips, 2, 12)
    others = np.abs(np.delete(loud, 2, axis=0)).max()
    assert np.isclose(np.abs(loud[2]).max() / others, 10 ** (12 / 20), rtol=1e-5) and np.abs(loud).max() <= 0.99
