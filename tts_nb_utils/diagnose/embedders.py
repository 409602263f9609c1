"""What repeated or interrupted downloads left in a model folder (notebook 06, ``tts-nb check-embedders``).

Applio 3.2.1-3.2.2 called ``wget.download(url, out=path)`` for an online embedder every time it was loaded.
The ``wget`` package (3.2) downloads into a temporary file named ``<out><8 random characters>.tmp`` and
renames it when the body is complete; when ``out`` already exists it saves ``<name> (1).<ext>`` instead
(``(2)``, ``(3)``... when run from inside that folder), and a body shorter than its Content-Length raises
``ContentTooShortError`` and leaves the temporary file behind. :func:`check_embedders` lists those
leftovers, plus the hidden ``.part`` files of an interrupted atomic writer (``tts_nb_utils.io``) and
Hugging Face's ``.incomplete`` blobs, and, with a manifest, every file whose size or sha256 disagrees with it.

A manifest is either JSON, ``{"name": "sha256"}`` or ``{"name": {"sha256": ..., "size": bytes}}`` (names
relative to the folder), or ``sha256sum`` output (``<sha256>  <name>`` per line).
"""

from __future__ import annotations

import json
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

from ..download import sha256_file
from ..errors import UsageError
from ..io import walk_files

#: ``name (1).pt``: what wget saves when ``name.pt`` exists.
DUPLICATE = re.compile(r"^(?P<stem>.+) \((?P<n>\d+)\)(?P<ext>\.[^.]+)?$")
#: ``name.pt`` + 8 characters of tempfile's alphabet + ``.tmp``: wget's temporary file.
WGET_TMP = re.compile(r"^(?P<target>.+)[a-z0-9_]{8}\.tmp$")
PARTIAL = (re.compile(r"^\..+\.part[^/]*$"), re.compile(r".+\.incomplete$"), re.compile(r".+\.tmp$"))


@dataclass
class Finding:
    """One file in the folder and what is wrong with it (``kind``: duplicate, partial, size, sha256, missing,
    unreadable)."""

    path: str
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.kind:9s} {self.path}: {self.message}"


@dataclass
class EmbedderReport:
    folder: Path
    files: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def format(self, limit: int = 50) -> str:
        head = f"{self.files} file(s) in {self.folder}, {len(self.findings)} finding(s)"
        lines = [head, *(textwrap.fill(str(f), 110, initial_indent="  ", subsequent_indent="      ",
                                       break_long_words=False, break_on_hyphens=False)
                         for f in self.findings[:limit])]
        if len(self.findings) > limit:
            lines.append(f"  ... and {len(self.findings) - limit} more")
        return "\n".join(lines)


def check_embedders(folder: str | Path, manifest: dict[str, dict] | None = None) -> EmbedderReport:
    """Duplicates (``name (1).pt``), orphan temporary files, and (with ``manifest``, see
    :func:`read_manifest`) files that are missing or whose size or sha256 differ. Recursive; a missing
    folder is a UsageError."""
    folder = Path(folder)
    if not folder.is_dir():
        raise UsageError(f"embedder folder {folder} does not exist (or is not a folder)")
    files, unreadable = walk_files(folder)
    names = [p.relative_to(folder).as_posix() for p in files]
    report = EmbedderReport(folder, len(names))
    report.findings += [Finding(p.relative_to(folder).as_posix() or ".", "unreadable",
                                f"folder cannot be read ({why}): its files were not checked; fix its permissions")
                        for p, why in unreadable]
    present = set(names)
    for name in names:
        finding = _leftover(name, present)
        if finding:
            report.findings.append(finding)
    for name, expected in (manifest or {}).items():
        report.findings += _against_manifest(folder, name, expected)
    return report


def _leftover(name: str, present: set[str]) -> Finding | None:
    base = name.rsplit("/", 1)[-1]
    parent = name[: len(name) - len(base)]
    if m := WGET_TMP.match(base):
        target = parent + m["target"]
        state = "exists" if target in present else "was never completed"
        return Finding(name, "partial", f"wget's temporary file for {target} ({state}); delete it")
    if any(p.match(base) for p in PARTIAL):
        return Finding(name, "partial", "an interrupted download's temporary file; delete it")
    if m := DUPLICATE.match(base):
        original = parent + m["stem"] + (m["ext"] or "")
        if original in present:
            return Finding(
                name, "duplicate", f"a second download of {original} (wget never overwrites: the loader "
                f"keeps reading {original}); delete it and look for the loader that downloads on every call",
            )
    return None


def _against_manifest(folder: Path, name: str, expected: dict) -> list[Finding]:
    path = folder / name
    if not path.is_file():
        return [Finding(name, "missing", "listed in the manifest, not in the folder")]
    size = path.stat().st_size
    if expected.get("size") is not None and size != int(expected["size"]):
        return [Finding(name, "size", f"{size:,} bytes, the manifest says {int(expected['size']):,}: "
                        "cut short or another file; download it again")]
    try:
        digest = sha256_file(path) if expected.get("sha256") else None
    except OSError as e:
        return [Finding(name, "unreadable", f"cannot be read ({e.strerror or e}): fix its permissions")]
    if digest is not None and digest != expected["sha256"].lower():
        return [Finding(name, "sha256", f"sha256 differs from the manifest's {expected['sha256'][:16]}...")]
    return []


def read_manifest(path: str | Path) -> dict[str, dict]:
    """``{name: {"sha256": str | None, "size": int | None}}`` from a JSON manifest or ``sha256sum`` output."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise UsageError(f"manifest {path}: {e.strerror or e}") from None
    if text.lstrip().startswith("{"):
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as e:
            raise UsageError(f"manifest {path}: not valid JSON ({e})") from None
        return {name: _entry(path, name, value) for name, value in raw.items()}
    entries = {}
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            m = re.match(r"^([0-9a-fA-F]{64}) [ *](.+)$", line.strip())
            if not m:
                raise UsageError(f"manifest {path}:{number}: expected '<sha256>  <name>', got {line.strip()!r}")
            entries[m[2]] = {"sha256": m[1].lower(), "size": None}
    return entries


def _entry(path: Path, name: str, value) -> dict:
    if isinstance(value, str):
        value = {"sha256": value}
    if not isinstance(value, dict) or not (value.get("sha256") or value.get("size") is not None):
        raise UsageError(f"manifest {path}: entry {name!r} needs a sha256 string or {{'sha256', 'size'}}")
    sha, size = value.get("sha256"), value.get("size")
    if sha is not None and not (isinstance(sha, str) and re.fullmatch(r"[0-9a-fA-F]{64}", sha)):
        raise UsageError(f"manifest {path}: entry {name!r}: sha256 {sha!r} is not 64 hexadecimal digits")
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 0):
        raise UsageError(f"manifest {path}: entry {name!r}: size {size!r} is not a number of bytes (0 or more)")
    return {"sha256": value.get("sha256"), "size": value.get("size")}
