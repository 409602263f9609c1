"""Files in GPT-SoVITS's own formats (48b1a01), written by our code for the tests: G_/D_ checkpoints as
``utils.save_checkpoint`` writes them (``utils.py:75-90``), exported weights as ``process_ckpt.savee`` writes them
(``process_ckpt.py:22-60``, with the config pickled as a ``utils.HParams``, ``utils.py:324-353``), and
``train.log`` lines as ``utils.get_logger`` (``utils.py:309-321``) and ``utils.load_checkpoint`` (``:54-59``) write
them."""

from __future__ import annotations

import contextlib
import io
import sys
import types
from collections import OrderedDict
from pathlib import Path

import torch

from tts_nb_utils.upstream.gpt_sovits import format_sovits_log, sovits_lr

VERSION_BYTES = {"v3": b"03", "v4": b"04", "v2Pro": b"05", "v2ProPlus": b"06"}  # process_ckpt.py:22-27

_HPARAMS = '''
class HParams:
    def __init__(self, **kwargs):
        for k, v in kwargs.items():
            if type(v) == dict:
                v = HParams(**v)
            self[k] = v

    def __getitem__(self, key):
        return getattr(self, key)

    def __setitem__(self, key, value):
        return setattr(self, key, value)
'''


@contextlib.contextmanager
def upstream_utils():
    """A module named ``utils`` holding an ``HParams`` like upstream's, present only while saving: the reader
    under test must not need it (nor import anything of that name)."""
    module = types.ModuleType("utils")
    exec(_HPARAMS, module.__dict__)  # noqa: S102 - our own class source, standing in for upstream's module
    saved = sys.modules.get("utils")
    sys.modules["utils"] = module
    try:
        yield module
    finally:
        if saved is None:
            del sys.modules["utils"]
        else:
            sys.modules["utils"] = saved


def tiny_net(seed: int, nan: bool = False, enc_q: bool = True) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    torch.manual_seed(seed)
    net = torch.nn.ModuleDict({"dec": torch.nn.Conv1d(4, 4, 3), "flow": torch.nn.Conv1d(4, 2, 1)})
    if enc_q:
        net["enc_q"] = torch.nn.Conv1d(4, 4, 1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-4, betas=(0.8, 0.99), eps=1e-9)
    loss = net["flow"](net["dec"](torch.randn(2, 4, 8))).pow(2).mean() * (float("nan") if nan else 1.0)
    loss.backward()
    opt.step()  # a NaN gradient makes the weights and both Adam moments NaN, as in an fp32 run
    return net, opt


def save_checkpoint(path: Path, net, opt, epoch: int, lr0: float = 1e-4, drop: tuple[str, ...] = (),
                    optimizer_none: bool = False) -> None:
    """``utils.save_checkpoint``; ``drop`` removes keys afterwards, ``optimizer_none`` stores None (what a user
    does to restart the learning rate)."""
    data = {"model": net.state_dict(), "iteration": epoch, "optimizer": None if optimizer_none else opt.state_dict(),
            "learning_rate": lr0}
    for key in drop:
        del data[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(data, path)


def save_run(folder: Path, epochs: list[tuple[int, int, bool]], parts: str = "GD") -> None:
    """``(step, epoch, nan)`` per save, G_ and D_ each (only G_ for ``parts="G"``, as a LoRA run)."""
    for step, epoch, nan in epochs:
        for part in parts:
            save_checkpoint(folder / f"{part}_{step}.pth", *tiny_net(step + ord(part), nan), epoch)


def savee(ckpt: dict, path: Path, epoch: int, steps: int, model_version: str | None = None,
          lora_rank: int | None = None, config: dict | None = None) -> None:
    """``process_ckpt.savee``: fp16 weights without ``enc_q``, the config object, ``info``; v3/v4 LoRA and v2Pro*
    files get their first two bytes replaced by the version code (``my_save2``)."""
    with upstream_utils() as utils:
        opt = OrderedDict()
        opt["weight"] = {k: v.half() for k, v in ckpt.items() if "enc_q" not in k}
        opt["config"] = utils.HParams(**(config or {"train": {"learning_rate": 1e-4, "fp16_run": True},
                                                    "name": path.stem, "save_weight_dir": str(path.parent)}))
        opt["info"] = f"{epoch}epoch_{steps}iteration"
        if lora_rank:
            opt["lora_rank"] = lora_rank
        bio = io.BytesIO()
        torch.save(opt, bio)
    data = bio.getvalue()
    if lora_rank or (model_version and "Pro" in model_version):
        data = VERSION_BYTES[model_version] + data[2:]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def log_lines(name: str, rows: list[tuple[int, int, list[float], float]], loaded: list[tuple[str, int]] = ()) -> list[str]:
    """``train.log`` text: ``Loaded checkpoint`` lines first (a resumed run), then ``(epoch, step, losses, lr)`` as
    ``Train Epoch`` + loss list lines."""
    stamp = "2026-11-22 02:00:00,000"
    out = [f"{stamp}\t{name}\tINFO\tLoaded checkpoint '{path}' (iteration {it})" for path, it in loaded]
    for epoch, step, losses, lr in rows:
        header, body = format_sovits_log(losses, step, lr, epoch=epoch, progress=0).split("\n") if len(losses) == 6 \
            else (f"Train Epoch: {epoch} [0%]", repr([*losses, step, lr]))
        out += [f"{stamp}\t{name}\tINFO\t{header}", f"{stamp}\t{name}\tINFO\t{body}"]
    return out


__all__ = ["log_lines", "save_checkpoint", "save_run", "savee", "sovits_lr", "tiny_net", "upstream_utils"]
