"""The doctor's Applio model-folder check (notebook 08; notebooks 06 and 07 explain the failures).

An Applio ``logs/<model>/`` folder in any layout from 3.2.1 to main (:mod:`tts_nb_utils.upstream.applio`:
``v2_extracted/``/``v1_extracted/`` up to 3.2.8, ``extracted/`` beside ``model_info.json`` from 3.2.9).
Runs :func:`~tts_nb_utils.diagnose.features.check_features` on each feature folder against the width the
model reads (``config.json``'s ``text_enc_hidden_dim``: 768 for v2 and 3.2.9+, 256 for v1),
:func:`~tts_nb_utils.diagnose.stage.check_stage` for the pitch files, reads ``filelist.txt`` (an empty or
mute-only list is an error: there is nothing of the voice to learn), and runs
:func:`~tts_nb_utils.diagnose.embedders.check_embedders` on the checkout's ``rvc/models/embedders/``
(``rvc/lib/utils.py``), two levels above ``logs/<model>``, when it is there. Upstream's own ``logs/mute*/``
and ``logs/reference/`` are not models: they are skipped, and the notes say so.
"""

from __future__ import annotations

from pathlib import Path

from ..diagnose.embedders import check_embedders
from ..diagnose.features import check_features
from ..diagnose.stage import check_stage
from ..upstream.applio import FeatureFolder, audio_clips, read_model, shipped_folder, split_filelist
from .report import Target

EMBEDDERS = Path("rvc") / "models" / "embedders"
NB06, NB07 = "06_applio_embedder_cache_and_too_fast_training.ipynb", "07_applio_half_error_in_feature_extraction.ipynb"


def check_applio(target: Target) -> None:
    """Features, pitch files, the file list and the embedders folder of one model."""
    model = read_model(target.path)
    clips = audio_clips(model.clips)
    for folder in model.features:
        _features(target, model.clips, folder)
    if not model.features:
        target.add("error", "no extracted/ (3.2.9+) or v2_extracted/ (3.2.1-3.2.8) folder: feature extraction "
                   "never ran or failed before writing", target.path, "run the extraction again and read its "
                   "output", NB07)
    for sub in ("f0", "f0_voiced"):
        if (target.path / sub).is_dir():
            missing = check_stage(model.clips, target.path / sub, ".wav.npy", recursive=False).missing
            if missing:
                target.add("error", f"{len(missing)} clip(s) without a pitch file", target.path / sub,
                           "run the extraction again", NB06)
    _filelist(target, target.path / "filelist.txt", len(clips), model.layout)
    target.notes.append(f"layout: Applio {model.layout}" + (f", embedder {model.embedder}" if model.embedder else ""))
    _shipped_notes(target)
    _embedders(target)


def _features(target: Target, clips: Path, folder: FeatureFolder) -> None:
    report = check_features(clips, folder.path, ".npy", folder.width, recursive=False)
    n, name = len(report.stage.inputs), folder.path.name
    if report.stage.missing:
        target.add("error", f"{len(report.stage.missing)} of {n} clip(s) have no feature file (first: "
                   f"{report.stage.missing[0].as_posix()})", folder.path, "run the extraction again and read "
                   "its output: Applio printed each file's error and went on", NB07)
    if report.wrong_dim:
        widths = ", ".join(str(w) for w in sorted(report.widths))
        target.add("error", f"{len(report.wrong_dim)} feature file(s) {widths} wide; the model reads "
                   f"{folder.width} (from {folder.source}): training fails on its first batch",
                   folder.path / report.wrong_dim[0][0], f"extract again with an embedder {folder.width} wide "
                   "(contentvec, chinese-hubert-base)", NB07)
    for label, files in (("all zeros", report.all_zero), ("NaN or infinity", report.non_finite)):
        if files:
            target.add("error", f"{len(files)} feature file(s) with {label}", folder.path / files[0],
                       "extract these clips again", NB07)
    for rel, why in report.unreadable[:3]:
        target.add("error", f"unreadable feature file: {why}", folder.path / rel, "extract it again", NB07)
    target.notes.append(f"{name}: {report.checked} feature file(s) opened for {n} clip(s), "
                        f"width {folder.width} from {folder.source}")


def _filelist(target: Target, path: Path, clips: int, layout: str) -> None:
    if not path.is_file():
        target.add("warning", "no filelist.txt: extraction has not finished (it is written last)", path,
                   "run the extraction step", NB06)
        return
    lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    own, mute = split_filelist(lines, target.path.name)
    if not lines:
        target.add("error", "filelist.txt is empty: no clip has all of its feature and pitch files, so there "
                   "is nothing to train on (3.2.9+ stops: 'Not enough data present in the training set')",
                   path, "fix the features, then extract again to rewrite the list", NB06)
    elif not own:
        target.add("error", f"filelist.txt holds only the {len(mute)} mute entries: training runs on silence, "
                   "about one step per epoch, and learns no voice", path,
                   "fix the features, then extract again to rewrite the list", NB06)
    elif len(own) < clips:
        target.add("warning", f"filelist.txt lists {len(own)} of {clips} clips: the others lack a feature or "
                   "pitch file", path, "extract again", NB06)
    target.notes.append(f"filelist.txt: {len(lines)} line(s), {len(mute)} mute")


def _shipped_notes(target: Target) -> None:
    logs = target.path.parent
    if logs.name != "logs":
        return
    shipped = sorted(p.name for p in logs.iterdir() if p.is_dir() and shipped_folder(p))
    if shipped:
        target.notes.append(f"skipped, Applio's own files: {', '.join(f'logs/{n}/' for n in shipped)}")


def _embedders(target: Target) -> None:
    embedders = target.path.parent.parent / EMBEDDERS
    if not embedders.is_dir():
        target.notes.append(f"embedders not checked: no {EMBEDDERS.as_posix()} two levels above the model")
        return
    report = check_embedders(embedders)
    for f in report.findings:
        target.add("warning", f"{f.kind}: {f.message}", embedders / f.path,
                   "delete it; the loader downloads on every call (Applio issue 489)", NB06)
    target.notes.append(f"{report.files} file(s) in {embedders}")
