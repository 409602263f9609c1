"""Are a stage's feature files there, and are they usable? (notebooks 06 and 07, ``tts-nb check-features``)

Applio's extraction printed each file's exception and went on (3.2.1-3.2.4), so a model folder could hold no
features at all (notebook 06); and an embedder of the wrong width (chinese-hubert-large: 1024 values per frame,
where a v2 model reads 768) writes files that look fine until training crashes (notebook 07). For an Applio
``logs/<model>/`` of any release, :mod:`tts_nb_utils.upstream.applio` finds the folders and the width. :func:`check_features` compares the
audio folder with the feature folder (:func:`~tts_nb_utils.diagnose.stage.check_stage`: missing files) and
opens every ``.npy`` feature file: its last dimension must be ``expect_dim``, and it must be neither all
zeros nor contain NaN or infinity.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import UsageError
from .stage import StageReport, check_stage


@dataclass
class FeatureReport:
    """What :func:`check_features` found. Paths are relative to ``stage.output_dir``."""

    stage: StageReport
    expect_dim: int | None
    checked: int = 0
    wrong_dim: list[tuple[Path, tuple[int, ...]]] = field(default_factory=list)
    all_zero: list[Path] = field(default_factory=list)
    non_finite: list[Path] = field(default_factory=list)
    unreadable: list[tuple[Path, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.stage.ok and not (self.wrong_dim or self.all_zero or self.non_finite or self.unreadable)

    @property
    def widths(self) -> set[int]:
        """The last dimensions found among the files with the wrong width."""
        return {shape[-1] if shape else 0 for _, shape in self.wrong_dim}

    def format(self, limit: int = 20) -> str:
        """The stage report, then one block per kind of problem (at most ``limit`` files each)."""
        lines = [self.stage.format(limit), f"{self.checked} feature file(s) opened"]
        if self.wrong_dim:
            found = ", ".join(str(w) for w in sorted(self.widths))
            lines.append(
                f"{len(self.wrong_dim)} file(s) with last dimension {found}, expected {self.expect_dim} "
                "(an embedder of another width; RVC v2 models read 768, v1 256)"
            )
            lines += [f"  wrong width: {p.as_posix()} shape {tuple(s)}" for p, s in self.wrong_dim[:limit]]
        for label, paths in (("all zeros", self.all_zero), ("NaN or infinity", self.non_finite)):
            if paths:
                lines.append(f"{len(paths)} file(s) with {label}")
                lines += [f"  {label}: {p.as_posix()}" for p in paths[:limit]]
        lines += [f"  unreadable: {p.as_posix()}: {why}" for p, why in self.unreadable[:limit]]
        return "\n".join(lines)


def check_features(
    audio_dir: str | Path,
    feature_dir: str | Path,
    ext: str = ".npy",
    expect_dim: int | None = None,
    audio_exts: Iterable[str] | None = None,
    recursive: bool = True,
) -> FeatureReport:
    """Missing feature files, and ``.npy`` files whose last dimension is not ``expect_dim`` (when given),
    that are all zeros, or that hold NaN or infinity. A missing folder or a non-``.npy`` ``ext`` with
    ``expect_dim`` is a :class:`~tts_nb_utils.errors.UsageError`."""
    if expect_dim is not None and expect_dim < 1:
        raise UsageError(f"expect_dim={expect_dim}: give the feature width, e.g. 768 for a v2 model")
    try:
        stage = check_stage(audio_dir, feature_dir, ext, audio_exts, recursive)
    except FileNotFoundError as e:
        raise UsageError(str(e)) from None
    report = FeatureReport(stage, expect_dim)
    if not stage.output_ext.lower().endswith(".npy"):
        if expect_dim is not None:
            raise UsageError(f"--expect-dim reads NumPy files; {stage.output_ext!r} files cannot be opened")
        return report
    out_dir = Path(feature_dir)
    for rel in _feature_files(out_dir, stage.output_ext, recursive):
        _check_one(out_dir, rel, report)
    return report


def _feature_files(folder: Path, ext: str, recursive: bool) -> list[Path]:
    pattern = f"**/*{ext}" if recursive else f"*{ext}"
    return sorted(p.relative_to(folder) for p in folder.glob(pattern) if p.is_file() and not p.name.startswith("."))


def _check_one(folder: Path, rel: Path, report: FeatureReport) -> None:
    try:
        array = np.load(folder / rel, mmap_mode="r", allow_pickle=False)
    except Exception as e:  # noqa: BLE001 - 0-byte file (EOFError), bad header (ValueError), unreadable (OSError)
        why = str(e).splitlines()[0] if str(e) else type(e).__name__
        report.unreadable.append((rel, f"{why}; extract this file again"))
        return
    if not isinstance(array, np.ndarray):  # an .npz archive under an .npy name
        array.close()
        report.unreadable.append((rel, "an .npz archive, not one array; extract this file again"))
        return
    report.checked += 1
    if array.size == 0:
        report.unreadable.append((rel, f"empty, shape {tuple(array.shape)}: no frames; extract this file again"))
        return
    if report.expect_dim is not None and (array.ndim == 0 or array.shape[-1] != report.expect_dim):
        report.wrong_dim.append((rel, tuple(array.shape)))
    if array.size and np.issubdtype(array.dtype, np.number):
        if not np.isfinite(array).all():
            report.non_finite.append(rel)
        elif not np.any(array):
            report.all_zero.append(rel)
