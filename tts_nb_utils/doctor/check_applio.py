"""The doctor's Applio model-folder check (notebook 08; notebooks 06 and 07 explain the failures).

An Applio ``logs/<model>/`` folder as 3.2.2 leaves it after extraction: ``sliced_audios/``, features in
``v2_extracted/`` (``v1_extracted/`` for v1), pitch in ``f0/`` and ``f0_voiced/``, and ``filelist.txt``
(``rvc/train/extract/preparing_files.py:18-60``: the names present in every folder, plus two entries of
``logs/mute/`` whatever happened before, lines ``wav|features|f0|f0_voiced|speaker``). Runs
:func:`~tts_nb_utils.diagnose.features.check_features` (768 values per frame for v2, 256 for v1),
:func:`~tts_nb_utils.diagnose.stage.check_stage` for the pitch files, reads the file list, and runs
:func:`~tts_nb_utils.diagnose.embedders.check_embedders` on the checkout's ``rvc/models/embedders/``
(``rvc/lib/utils.py:43``), two levels above ``logs/<model>``, when it is there.
"""

from __future__ import annotations

from pathlib import Path

from ..diagnose.embedders import check_embedders
from ..diagnose.features import check_features
from ..diagnose.stage import check_stage
from ..io import list_audio_files
from .report import Target

WIDTHS = {"v1_extracted": 256, "v2_extracted": 768}  # text_enc_hidden_dim of v1 / v2 models
EMBEDDERS = Path("rvc") / "models" / "embedders"
NB06, NB07 = "06_applio_embedder_cache_and_too_fast_training.ipynb", "07_applio_half_error_in_feature_extraction.ipynb"


def check_applio(target: Target) -> None:
    """Features, pitch files, the file list and the embedders folder of one model."""
    model = target.path
    clips = model / "sliced_audios"
    for name, dim in WIDTHS.items():
        if (model / name).is_dir():
            _features(target, clips, model / name, dim)
    if not any((model / n).is_dir() for n in WIDTHS):
        target.add("error", "no v2_extracted/ (or v1_extracted/) folder: feature extraction never ran or "
                   "failed before writing", model, "run the extraction again and read its output", NB07)
    for sub in ("f0", "f0_voiced"):
        if (model / sub).is_dir():
            missing = check_stage(clips, model / sub, ".wav.npy").missing
            if missing:
                target.add("error", f"{len(missing)} clip(s) without a pitch file", model / sub,
                           "run the extraction again", NB06)
    _filelist(target, model / "filelist.txt", len(list_audio_files(clips)))
    embedders = model.parent.parent / EMBEDDERS
    if embedders.is_dir():
        report = check_embedders(embedders)
        for f in report.findings:
            target.add("warning", f"{f.kind}: {f.message}", embedders / f.path,
                       "delete it; the loader downloads on every call (Applio issue 489)", NB06)
        target.notes.append(f"{report.files} file(s) in {embedders}")
    else:
        target.notes.append(f"embedders not checked: no {EMBEDDERS.as_posix()} two levels above the model")


def _features(target: Target, clips: Path, folder: Path, dim: int) -> None:
    report = check_features(clips, folder, ".npy", dim)
    n = len(report.stage.inputs)
    if report.stage.missing:
        target.add("error", f"{len(report.stage.missing)} of {n} clip(s) have no feature file (first: "
                   f"{report.stage.missing[0].as_posix()})", folder, "run the extraction again and read its "
                   "output: Applio 3.2.1-3.2.2 printed each file's error and went on", NB07)
    if report.wrong_dim:
        widths = ", ".join(str(w) for w in sorted(report.widths))
        target.add("error", f"{len(report.wrong_dim)} feature file(s) {widths} wide, a {folder.name[:2]} model "
                   f"reads {dim}", folder / report.wrong_dim[0][0], "extract again with an embedder of that "
                   f"width (contentvec for {dim})", NB07)
    for label, files in (("all zeros", report.all_zero), ("NaN or infinity", report.non_finite)):
        if files:
            target.add("error", f"{len(files)} feature file(s) with {label}", folder / files[0],
                       "extract these clips again", NB07)
    for rel, why in report.unreadable[:3]:
        target.add("error", f"unreadable feature file: {why}", folder / rel, "extract it again", NB07)
    target.notes.append(f"{folder.name}: {report.checked} feature file(s) opened for {n} clip(s)")


def _filelist(target: Target, path: Path, clips: int) -> None:
    if not path.is_file():
        target.add("warning", "no filelist.txt: extraction has not finished (preparing_files.py writes it last)",
                   path, "run the extraction step", NB06)
        return
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    mute = [ln for ln in lines if "/logs/mute/" in ln.split("|", 1)[0].replace("\\", "/")]
    own = len(lines) - len(mute)
    if lines and not own:
        target.add("error", f"filelist.txt holds only the {len(mute)} mute entries: training runs on silence, "
                   "about one step per epoch", path, "fix the features, then extract again to rewrite the list", NB06)
    elif own < clips:
        target.add("warning", f"filelist.txt lists {own} of {clips} clips: the others lack a feature or pitch "
                   "file", path, "extract again", NB06)
    target.notes.append(f"filelist.txt: {len(lines)} line(s), {len(mute)} mute")
