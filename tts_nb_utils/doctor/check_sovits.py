"""The doctor's GPT-SoVITS experiment check (notebook 08; notebook 02 explains the failures).

A ``logs/<exp>/`` folder as GPT-SoVITS ``48b1a01`` writes it: ``train.log`` (``utils.get_logger``,
``utils.py:309-321``), ``config.json`` (the s2 config, saved by ``utils.get_hparams``, ``utils.py:226-233``)
and ``logs_s2_<version>/G_*.pth, D_*.pth`` (``s2_train.py:514-555``). Runs the existing readers:
:func:`~tts_nb_utils.upstream.gpt_sovits.scan_sovits_log` with the config's ``train.learning_rate`` and
``train.lr_decay``, and :func:`~tts_nb_utils.diagnose.checkpoints.scan_checkpoint` on every checkpoint.

Severities follow what the next run does (:mod:`~tts_nb_utils.diagnose.resume`): a NaN in the pair
``s2_train.py:206-221`` resumes from, or a pair it cannot resume from (no ``D_``, no ``optimizer`` key: a silent
restart from the pretrained weights) is an error; an older NaN file is a warning. NaN loss lines that run to the
end of the log with ``train.fp16_run`` on are an error (the fp16 overflow of notebook 02); with fp16 off, or
intermittent (GradScaler skipped those steps), a warning. The advice follows the evidence: NaN in ``kl_ssl`` (the
SSL-feature term) or NaN in an fp32 run points at the data, not at fp16.
"""

from __future__ import annotations

import math
from pathlib import Path

from ..diagnose.checkpoints import checkpoint_files, scan_checkpoints
from ..diagnose.resume import experiments
from ..io import read_mapping
from ..upstream.gpt_sovits import S2_LEARNING_RATE, S2_LR_DECAY, SovitsLogScan, scan_sovits_log
from .report import Target


def check_sovits(target: Target) -> None:
    """Config, log and checkpoints of one experiment folder."""
    folder = target.path
    config_path = folder / "config.json"
    train = _train_settings(target, config_path)
    fp16 = bool(train.get("fp16_run", False))
    lr0, decay = train.get("learning_rate", S2_LEARNING_RATE), train.get("lr_decay", S2_LR_DECAY)
    if fp16:
        target.add("info", "train.fp16_run is true: autocast to float16 with a GradScaler (s2_train.py:282, 381, 433)",
                   f"{config_path.name}#train.fp16_run", "if losses turn NaN: fp16_run false (webui: is_half "
                   "False) or bf16; a lower learning rate does not fix it")
    if (folder / "train.log").is_file():
        _check_log(target, scan_sovits_log(folder / "train.log", lr0, decay), fp16, lr0, decay)
    else:
        target.notes.append("no train.log: loss lines not checked")
    files = checkpoint_files([folder]) if any(folder.glob("logs_s2_*")) else []
    _check_checkpoints(target, [f for f in files if f.parent.name.startswith("logs_s2_")], train)


def _train_settings(target: Target, config_path: Path) -> dict:
    if not config_path.is_file():
        target.notes.append(f"no {config_path.name}: upstream's s2.json defaults assumed (learning_rate "
                            f"{S2_LEARNING_RATE}, lr_decay {S2_LR_DECAY}, fp16_run unknown)")
        return {}
    data = read_mapping(config_path)
    train = data.get("train") if data else None
    if not isinstance(train, dict):
        target.add("error", "config.json is not an s2 config (no 'train' mapping)", config_path,
                   "pass the config s2_train.py saved (GPT_SoVITS/configs/s2.json layout)")
        return {}
    for key, default in (("learning_rate", S2_LEARNING_RATE), ("lr_decay", S2_LR_DECAY)):
        value = train.get(key, default)
        ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
        if not ok or (key == "lr_decay" and value >= 1):
            target.add("error", f"train.{key} is {value!r}: not a usable {'rate' if key == 'learning_rate' else 'decay'}",
                       f"{config_path.name}#train.{key}", f"upstream's value is {default}")
            train.pop(key, None)
    return train


DATA_FIX = ("find the clip and drop it: upstream drops clips whose peak is above 2.2 and clips whose SSL features "
            "come out NaN (prepare_datasets/2-get-hubert-wav32k.py:83-86, 96-99); run tts-nb validate on your wavs "
            "(NaN, clipped, silent clips); fp16_run false does not help here")


def _check_log(target: Target, scan: SovitsLogScan, fp16: bool, lr0: float, decay: float) -> None:
    target.notes.append(f"train.log: {len(scan.entries)} loss line(s), {scan.nonfinite_count} with NaN/Inf "
                        f"({scan.pattern})")
    for n, message in scan.problems[:3]:
        target.add("warning", f"a loss line that does not decode: {message}", f"train.log:{n}")
    first = scan.first_nonfinite
    if first is not None:
        severity = "error" if scan.pattern in ("persistent", "single") and (fp16 or scan.data_nan) else "warning"
        how = {"intermittent": "finite lines follow (GradScaler skipped those steps)",
               "persistent": "every line since is NaN", "single": "the last line"}[scan.pattern]
        why = "; kl_ssl is NaN too: the SSL features of a clip are NaN" if scan.data_nan else ""
        if scan.data_nan:
            fix = DATA_FIX
        elif fp16:
            fix = "fp16_run false (or bf16), then resume from the latest clean checkpoint"
        else:  # the config says fp32 now; the lines may come from an earlier fp16 run
            fix = f"if these lines were written with fp16_run false, fp16 is not the cause: {DATA_FIX}"
        target.add(severity, f"NaN/Inf loss from epoch {first.best_epoch}, step {first.global_step} "
                   f"({', '.join(first.nonfinite)}); {how}{why}", f"train.log:{first.line_number}", fix)
    offsets = scan.lr_offsets
    if offsets:
        target.notes.append(f"resumed run: lr = learning_rate x lr_decay^(epoch + k) with k = "
                            f"{', '.join(map(str, offsets))} (the scheduler decays the restored lr again, "
                            f"s2_train.py:268-281); {len(scan.resumes)} 'Loaded checkpoint' line(s)")
    off = scan.lr_misfits
    if off:
        target.add("warning", f"{len(off)} loss line(s) whose lr ({off[0].lr:.6g} first) fits no "
                   "learning_rate x lr_decay^(epoch + k) of config.json, resumed or not",
                   f"train.log:{off[0].line_number}",
                   "the log comes from another config: check train.learning_rate and train.lr_decay")


def _check_checkpoints(target: Target, files: list[Path], train: dict) -> None:
    if not files:
        target.notes.append("no G_/D_ checkpoints in logs_s2_*/ (a first run starts from the pretrained weights)")
        return
    reports = scan_checkpoints(files)
    for v in experiments(reports):
        problems = {sev for sev, _, _ in v.problems}
        for sev, text, where in v.problems:
            target.add(sev, text, where, v.advice)
        for r in (r for r in v.reports if r.bad and "error" not in problems):
            target.add("warning", f"NaN/Inf in {len(r.bad)} of {r.tensors} tensors (first: {r.bad[0]}); "
                       "not the file s2_train.py resumes from", r.path, v.advice)
    if train.get("if_save_latest"):
        target.notes.append("train.if_save_latest is true (the WebUI default): only the latest G_/D_ pair is kept, "
                            "so a NaN pair leaves no clean one behind")
    target.notes.append(f"{len(reports)} checkpoint(s) scanned, {sum(r.clean for r in reports)} clean")
