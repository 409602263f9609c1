"""The doctor's report: findings (severity, what, where, fix, notebook) per recognised path, as Markdown and JSON.

Used by ``tts-nb doctor`` and notebook 08. Severities: ``error`` (the run fails or learns nothing: exit 1),
``warning`` (probably a mistake, or a trace of an earlier failure), ``info`` (a setting worth knowing).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SEVERITIES = ("error", "warning", "info")

#: The notebook that explains each kind's failures.
NOTEBOOKS = {
    "audio": "01_data_denoise_slice_validate.ipynb",
    "gpt-sovits": "02_nan_under_fp16.ipynb",
    "diffsinger-config": "03_zero_loss_config.ipynb",
    "diffsinger-experiment": "03_zero_loss_config.ipynb",
    "coqui-run": "04_lr_scheduler_fixes.ipynb",
    "dia-config": "05_dia_training_on_a_3090.ipynb",
    "applio-model": "06_applio_embedder_cache_and_too_fast_training.ipynb",
}


@dataclass
class Finding:
    """One problem: ``where`` is a file (relative to the checked path when inside it), with ``:line`` or
    ``#key`` when known; ``fix`` is what to do; ``notebook`` the one that explains it."""

    severity: str
    what: str
    where: str
    fix: str = ""
    notebook: str = ""

    def __post_init__(self) -> None:
        if self.severity not in SEVERITIES:
            raise ValueError(f"severity {self.severity!r}: use one of {SEVERITIES}")


@dataclass
class Target:
    """One recognised path: its kind (``"unknown"`` when nothing matched), the ``given`` PATH it was found
    under, its findings and notes (what was checked, what was not and why)."""

    path: Path
    kind: str
    given: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, severity: str, what: str, where: str | Path = "", fix: str = "", notebook: str = "") -> None:
        """Append a finding; ``where`` relative to this target's folder when inside it."""
        self.findings.append(Finding(severity, what, self.rel(where), fix, notebook or NOTEBOOKS.get(self.kind, "")))

    def rel(self, where: str | Path) -> str:
        if not isinstance(where, Path):
            return where
        for base in (self.path if self.path.is_dir() else self.path.parent, Path(self.given)):
            try:
                return where.relative_to(base).as_posix() or "."
            except ValueError:
                pass
        return str(where)

    @property
    def errors(self) -> int:
        return sum(f.severity == "error" for f in self.findings)


@dataclass
class DoctorReport:
    """Every target, in the order found; ``skipped``: files found but not checked, because upstream ships them
    (a DiffSinger checkout's templates and bases)."""

    targets: list[Target]
    skipped: list[str] = field(default_factory=list)

    @property
    def errors(self) -> int:
        return sum(t.errors for t in self.targets)

    @property
    def exit_code(self) -> int:
        """1 when any error was found, else 0 (warnings and unknown paths allowed)."""
        return 1 if self.errors else 0

    def counts(self) -> dict[str, int]:
        return {s: sum(f.severity == s for t in self.targets for f in t.findings) for s in SEVERITIES}

    def as_json(self) -> dict[str, Any]:
        """``{"paths": [{"path", "kind", "given", "findings": [...], "notes": [...]}], "counts", "exit_code"}``."""
        return {
            "paths": [{"path": str(t.path), "kind": t.kind, "given": t.given,
                       "findings": [asdict(f) for f in t.findings], "notes": list(t.notes)} for t in self.targets],
            "skipped": list(self.skipped),
            "counts": self.counts(),
            "exit_code": self.exit_code,
        }

    def markdown(self) -> str:
        """One section per path: its kind, a table of findings (errors first), then the notes."""
        c = self.counts()
        lines = [f"**{c['error']} error(s), {c['warning']} warning(s), {c['info']} note(s)** "
                 f"in {len(self.targets)} path(s)", ""]
        if self.skipped:
            lines += [f"skipped {len(self.skipped)} file(s) upstream ships (templates and bases, checked only as "
                      f"the base_config of your own configs): {', '.join(f'`{s}`' for s in self.skipped)}", ""]
        for t in self.targets:
            lines += [f"### `{t.path}`: {t.kind}", ""]
            if t.findings:
                lines += ["| severity | what | where | fix | notebook |", "|---|---|---|---|---|"]
                order = sorted(t.findings, key=lambda f: SEVERITIES.index(f.severity))
                lines += [f"| {f.severity} | {_cell(f.what)} | {_cell(f'`{f.where}`' if f.where else '')} | "
                          f"{_cell(f.fix)} | {f.notebook} |" for f in order]
            else:
                lines.append("no findings")
            lines += [f"- {_cell(n)}" for n in t.notes] + [""]
        return "\n".join(lines)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell: pipes escaped, line breaks as spaces."""
    return text.replace("|", "\\|").replace("\n", " ")
