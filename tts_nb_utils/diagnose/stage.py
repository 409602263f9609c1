"""Did a pipeline stage produce an output for every input? (notebooks 06 and 07, ``tts-nb check-features``)

Applio's feature extraction printed its exception and carried on, so training ran on almost nothing. This
compares a stage's inputs with its outputs by name, recursively, and lists the inputs without output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..io import audio_extensions, list_files


class StageCheckError(RuntimeError):
    """A stage left inputs without outputs; the message names the folders and the first missing files."""


@dataclass
class StageReport:
    """Inputs (relative paths) of a stage, and those with no output of ``output_ext`` (``missing``)."""

    input_dir: Path
    output_dir: Path
    output_ext: str
    inputs: list[Path] = field(default_factory=list)
    missing: list[Path] = field(default_factory=list)
    extra: list[Path] = field(default_factory=list)  # outputs whose name matches no input

    @property
    def ok(self) -> bool:
        return bool(self.inputs) and not self.missing

    def format(self, limit: int = 20) -> str:
        """A short human-readable report listing up to ``limit`` missing inputs."""
        lines = [
            f"{len(self.inputs)} input(s) in {self.input_dir}, {len(self.inputs) - len(self.missing)} with a "
            f"'{self.output_ext}' output in {self.output_dir}, {len(self.missing)} missing"
        ]
        lines += [f"  missing: {p.as_posix()}" for p in self.missing[:limit]]
        if len(self.missing) > limit:
            lines.append(f"  ... and {len(self.missing) - limit} more")
        if self.extra:
            lines.append(f"  ({len(self.extra)} output(s) match no input, e.g. {self.extra[0].as_posix()})")
        return "\n".join(lines)

    def raise_if_missing(self) -> StageReport:
        """Raise StageCheckError unless every input has an output; returns self for chaining."""
        if not self.inputs:
            raise StageCheckError(f"{self.input_dir}: no input files to check; is this the right folder?")
        if self.missing:
            raise StageCheckError(
                f"{len(self.missing)} of {len(self.inputs)} input(s) have no output: the stage failed on them "
                f"and its log may not say so.\n{self.format()}"
            )
        return self


def _strip_ext(name: str, ext: str) -> str | None:
    return name[: -len(ext)] if name.lower().endswith(ext.lower()) and len(name) > len(ext) else None


def check_stage(
    input_dir: str | Path,
    output_dir: str | Path,
    output_ext: str = ".npy",
    input_exts: Iterable[str] | None = None,
    recursive: bool = True,
) -> StageReport:
    """Which files in ``input_dir`` (extensions ``input_exts``, default: audio) have no ``<name><output_ext>`` in ``output_dir``.

    An input ``a/b/x.wav`` is matched by ``a/b/x.npy`` or, for stages that write a flat folder, by any
    ``x.npy`` under ``output_dir``. ``output_ext`` may have several dots (RVC pitch files: ``".wav.npy"``).
    Hidden files (temporary ``.part`` files) are ignored. Raises FileNotFoundError for a missing folder.
    """
    input_dir, output_dir = Path(input_dir), Path(output_dir)
    for label, folder in (("input", input_dir), ("output", output_dir)):
        if not folder.is_dir():
            raise FileNotFoundError(f"{label} folder {folder} does not exist (or is not a folder)")
    ext = output_ext if output_ext.startswith(".") else f".{output_ext}"
    inputs = [p.relative_to(input_dir) for p in list_files(input_dir, input_exts or audio_extensions(), recursive)]
    out_keys: set[str] = set()
    out_stems: set[str] = set()
    outputs: list[tuple[Path, str]] = []
    for rel in (p.relative_to(output_dir) for p in list_files(output_dir, None, recursive)):
        stem = _strip_ext(rel.name, ext)
        if stem is not None:
            key = (rel.parent / stem).as_posix()
            out_keys.add(key)
            out_stems.add(stem)
            outputs.append((rel, stem))
    in_keys = {p.with_suffix("").as_posix() for p in inputs}
    in_stems = {p.stem for p in inputs}
    missing = [p for p in inputs if p.with_suffix("").as_posix() not in out_keys and p.stem not in out_stems]
    extra = [
        rel for rel, stem in outputs if (rel.parent / stem).as_posix() not in in_keys and stem not in in_stems
    ]
    return StageReport(input_dir, output_dir, ext, inputs, missing, extra)


