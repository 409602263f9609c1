"""One verdict per experiment folder: what GPT-SoVITS's ``s2_train.py`` resumes from next, whether that works,
and what to do (``tts-nb scan-checkpoints``, the doctor; notebook 02 shows the traps).

At ``48b1a01``, ``s2_train.py:206-221`` loads the highest-numbered ``D_*.pth``, then ``G_*.pth``, from
``logs_s2_<version>/`` (``s2_train_v3_lora.py:177-189``: only ``G_*.pth``, from ``logs_s2_<version>_lora_<rank>/``).
``utils.load_checkpoint`` restores the optimizer unless its ``optimizer`` entry is None (``utils.py:26-29``): a
file without the key raises KeyError. Any failure lands in a bare ``except`` (``s2_train.py:224-263``) that starts
again from ``pretrained_s2G``/``pretrained_s2D`` at epoch 1, silently. The WebUI saves only the latest pair by
default ("save only the latest", ``webui.py:1750-1755``; ``G_233333333333.pth``, ``s2_train.py:536-556``), so
once that pair holds NaN there is no clean pair left to go back to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..io import wrap_text
from .checkpoints import SAVE_LATEST_STEP, CheckpointReport, latest_clean, newer_than, relative_name


@dataclass
class ExperimentVerdict:
    """The checkpoints of one folder and what they mean for the next run. ``problems``: ``(severity, text,
    file or folder)`` with severity ``"error"`` (the next run goes wrong) or ``"warning"``; ``advice``: what to do."""

    folder: Path
    reports: list[CheckpointReport]
    resume: list[CheckpointReport] = field(default_factory=list)
    move: list[CheckpointReport] = field(default_factory=list)
    problems: list[tuple[str, str, Path]] = field(default_factory=list)
    advice: str = ""

    @property
    def ok(self) -> bool:
        return not any(sev == "error" for sev, _, _ in self.problems)

    def format(self, root: Path | None = None, width: int = 118) -> str:
        """The folder (relative to ``root``), one line per file, the problems and the advice, wrapped."""
        lines = [f"{relative_name(self.folder, root) if self.folder != root else '.'}/ "
                 f"({len(self.reports)} file(s))"]
        lines += [f"  {r.format(self.folder)}" for r in self.reports]
        lines += [f"  {sev.upper()}: {text}" for sev, text, _ in self.problems]
        if self.advice:
            lines.append(f"  -> {self.advice}")
        return wrap_text("\n".join(lines), width, indent="      ", break_long_words=True)


def experiments(reports: list[CheckpointReport]) -> list[ExperimentVerdict]:
    """Group reports by folder (one ``logs_s2_*`` folder is one run) and judge each group on its own."""
    groups: dict[Path, list[CheckpointReport]] = {}
    for r in reports:
        groups.setdefault(r.path.parent, []).append(r)
    return [judge(folder, group) for folder, group in sorted(groups.items())]


def judge(folder: Path, reports: list[CheckpointReport]) -> ExperimentVerdict:
    """The verdict for the checkpoints of one folder (see the module docstring for upstream's rules)."""
    v = ExperimentVerdict(folder, reports)
    for r in (r for r in reports if r.error):
        v.problems.append(("warning", f"{r.path.name} could not be read: {r.error}", r.path))
    exported = [r for r in reports if r.kind == "gpt-sovits-weights"]
    for r in exported:
        if r.bad:
            v.problems.append(("error", f"{r.path.name}: exported weights with NaN/Inf ({r.bad[0]}); "
                                        "inference with them gives silence or noise", r.path))
    g = [r for r in reports if r.kind == "gpt-sovits-G"]
    d = [r for r in reports if r.kind == "gpt-sovits-D"]
    if not g and not d:
        v.resume = latest_clean(reports)
        if exported:
            v.advice = ("exported weights are for inference (fp16, no enc_q), not a resume point; training "
                        "resumes from G_/D_ files in logs/<experiment>/logs_s2_*/")
        return v
    lora = "_lora_" in folder.name
    newest_g, newest_d = g[-1] if g else None, d[-1] if d else None
    if newest_g is None:
        v.problems.append(("error", "D_ files but no G_*.pth: s2_train.py loads D_, fails on G_ and restarts the "
                                    "generator from the pretrained weights at epoch 1 (s2_train.py:215-263)", folder))
    elif not d and not lora:
        v.problems.append(("error", f"{newest_g.path.name} has no D_*.pth beside it: s2_train.py loads D_ first "
                                    "(s2_train.py:206-211), finds none, and its bare except (:224) restarts from the "
                                    "pretrained weights at epoch 1 without an error", newest_g.path))
    for r in (x for x in (newest_g, None if lora else newest_d) if x is not None):
        if r.missing:
            v.problems.append(("error", f"{r.path.name} has no {'/'.join(repr(k) for k in r.missing)} key: "
                                        "utils.load_checkpoint reads it (utils.py:26-28), raises, and s2_train.py "
                                        "restarts from the pretrained weights at epoch 1; set it to None, not deleted", r.path))
        elif r.bad:
            v.problems.append(("error", f"s2_train.py resumes from {r.path.name}, which holds NaN/Inf in "
                                        f"{len(r.bad)} tensor(s): every step will be NaN again", r.path))
    v.resume = latest_clean(reports)
    v.move = newer_than(reports, v.resume)
    v.advice = _advice(v, g, d, lora)
    return v


def _advice(v: ExperimentVerdict, g, d, lora: bool) -> str:
    if v.ok:
        if v.resume:
            return f"s2_train.py resumes from {' + '.join(r.path.name for r in v.resume)} " \
                   f"(epoch {v.resume[0].epoch}); nothing to do"
        return ""
    save_latest = all(r.step == SAVE_LATEST_STEP for r in g + d)
    if not v.resume and save_latest:
        return ("no clean pair exists: 'save only the latest' (if_save_latest, the WebUI default) let the NaN "
                "pair overwrite the last clean one. Move the G_/D_ files out; s2_train.py then starts from "
                "pretrained_s2G/pretrained_s2D at epoch 1. To keep your progress, set pretrained_s2G to your last "
                "clean exported weight (a v1/v2 one: loaded with strict=False, s2_train.py:237-245; enc_q starts "
                "fresh). Next time untick 'save only the latest' so each save keeps its own G_<step>/D_<step>")
    if not d and not lora and g:
        return (f"put the D_ file of step {g[-1].step} beside {g[-1].path.name} (s2_train.py needs both), or expect "
                "a restart from the pretrained weights")
    if not v.resume:
        return "no clean checkpoint: move them all out and start again from the pretrained weights"
    pair = " + ".join(r.path.name for r in v.resume)
    need = "G_" if lora else "both G_ and D_"
    move = f"move {', '.join(r.path.name for r in v.move)} out of the folder; " if v.move else ""
    return (f"{move}s2_train.py then resumes from {pair} ({need} of one step are needed; to restart the "
            "learning rate from the config, set their 'optimizer' entry to None rather than deleting it)")
