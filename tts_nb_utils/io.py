"""File and value plumbing every tool shares: atomic writes, ``parse_bool``, and listing audio files.

* Atomic output: write to a temporary file in the destination folder, then rename. A run killed half-way
  leaves either the old file or nothing, never a half-written one, so a rerun can resume by skipping outputs
  that exist; the temporaries a killed writer left are removed by the next write (their name holds the pid).
  The rename never goes over a device, a pipe or a link (``check_output_file``), and an OS error names the
  output, never the temporary name.
* ``walk_files``: every file under a folder and the sub-folders that could not be listed, so that a tool
  reports them instead of judging the rest as if they were not there; ``not_a_file`` says in words why a
  path is no readable file (missing, a folder, a device).
* ``parse_bool``: command-line and environment strings to bool; anything unrecognised is an error, never
  truthy (notebook 06: Applio's ``bool("False")`` is True).
* ``list_audio_files``: the audio files under a folder, the one lister the data tools and stage checks use.
* ``cli_field``: a config dataclass field that is also a ``tts-nb`` option (``cli/_common.py`` reads it).

Used by every notebook's tools (the data tools of notebook 01 write through it; notebook 06 calls
``parse_bool``). A low layer: it imports nothing but ``errors`` from the package.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import tempfile
import textwrap
from collections.abc import Iterable, Iterator
from dataclasses import field
from pathlib import Path
from typing import Any

from .errors import OutputPathError, UsageError

#: A terminal escape sequence (colours, cursor moves: ESC [ params letter), as upstream loggers and tracebacks
#: print them; :func:`strip_ansi` removes them before text is parsed or shown.
ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def strip_ansi(text: str) -> str:
    """``text`` without terminal escape sequences (:data:`ANSI_ESCAPE`)."""
    return ANSI_ESCAPE.sub("", text)


def wrap_text(text: str, width: int, indent: str = "    ", break_long_words: bool = False,
              break_on_hyphens: bool = False) -> str:
    """Every line of ``text`` longer than ``width`` characters wrapped there, continuation lines indented by
    ``indent``; shorter lines are kept as they are. Console output of the tools and notebooks fits a screen
    this way and is never cut (``break_long_words=False`` keeps paths and URLs whole)."""
    return "\n".join(
        textwrap.fill(line, width, subsequent_indent=indent, break_long_words=break_long_words,
                      break_on_hyphens=break_on_hyphens) if len(line) > width else line
        for line in text.splitlines()
    )


def not_a_file(path: str | os.PathLike) -> str:
    """Why ``path`` cannot be read as a file, in words: "does not exist", "is a folder, not a file", "is not a
    regular file (a device, pipe or socket)"; "" when it is a regular file. For messages that name the path."""
    p = Path(path)
    if str(path) == "":
        return "is empty (no path given)"
    if p.is_file():
        return ""
    if p.is_dir():
        return "is a folder, not a file"
    return "is not a regular file (a device, pipe or socket)" if p.exists() else "does not exist"


def check_output_file(dest: str | os.PathLike, option: str = "output") -> Path:
    """``dest`` as a Path when a regular file may be written there: it is missing or a regular file that is not a
    link. Raises OutputPathError naming ``option`` otherwise (``/dev/null``, a fifo, a folder, a symlink)."""
    dest = Path(dest)
    if dest.is_symlink():
        raise OutputPathError(f"{option} {dest} is a link: give the path of a regular file (the link is kept)")
    if dest.exists() and not dest.is_file():
        what = "a folder" if dest.is_dir() else "not a regular file (a device, pipe or socket)"
        raise OutputPathError(f"{option} {dest} is {what}: give the path of a regular file to write")
    return dest


@contextlib.contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on success rename it onto ``dest``, on error delete it.

    ``suffix`` defaults to ``dest``'s own suffix, so writers that infer the format from the name
    (soundfile, matplotlib) still work. ``dest`` must be missing or a regular file (:func:`check_output_file`):
    the rename never goes over a device, a pipe or a link. An OS error names ``dest``, never the temporary
    name. It does not look for a killed writer's temporaries (that would list the folder on every write, which
    a slicer writing thousands of clips pays for quadratically): a command removes them once before it writes,
    with :func:`remove_dead_parts` for a report file or :func:`remove_dead_parts_under` for an output folder.
    """
    dest = check_output_file(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # A hidden name ".<stem>.<pid>.<random>.part<suffix>": never mistaken for a finished output by a resuming
        # run, and the pid tells a later run whether its writer is still alive.
        suffix = dest.suffix if suffix is None else suffix
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.stem}.{os.getpid()}.", suffix=f".part{suffix}", dir=dest.parent)
        os.close(fd)
    except OSError as e:
        raise _naming(e, dest) from None
    tmp_path = Path(tmp)
    try:
        os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes 0600; give the output ordinary permissions
        yield tmp_path
        check_output_file(dest)  # it may have become a link or a fifo while we wrote
        os.replace(tmp_path, dest)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise _naming(e, dest) from None
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def _naming(e: OSError, dest: Path) -> OSError:
    """``e`` with ``dest`` as its file name when it named our temporary file (users never saw that name)."""
    if e.filename is None or ".part" in Path(str(e.filename)).name:
        return type(e)(e.errno, e.strerror or str(e), str(dest))
    return e


def _writer_gone(part: Path) -> bool:
    """Whether the process that created ``part`` (its pid is the field after the stem) no longer runs."""
    fields = part.name.split(".")
    pid = next((int(f) for f in fields[2:-2] if f.isdigit()), None)
    if pid is None:  # a name from before pids were recorded: its writer is long gone
        return True
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:  # exists, owned by someone else
        return False
    return False


def _remove_dead(parts: list[Path]) -> list[Path]:
    gone = [p for p in parts if _writer_gone(p)]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


def remove_dead_parts(dest: str | os.PathLike) -> list[Path]:
    """Delete the temporaries beside ``dest`` whose writer process is gone (a killed run); returns them."""
    return _remove_dead(stale_parts(dest))


def remove_dead_parts_under(folder: str | os.PathLike) -> list[Path]:
    """:func:`remove_dead_parts` for every temporary under ``folder``, for a command that writes there."""
    return _remove_dead(stale_parts_under(folder))


def refuse_overlap(src: str | os.PathLike, dst: str | os.PathLike) -> None:
    """UsageError when writing ``dst`` could touch the input ``src``: the same file or folder, the output inside
    the input folder (a rerun would read its own output) or the input inside the output folder."""
    s, d = Path(src).resolve(), Path(dst).resolve()
    if s == d or (s.exists() and d.exists() and os.path.samefile(s, d)):
        raise UsageError(f"output {dst} is the input {src}: it would be overwritten; write somewhere else")
    if s.is_dir() and d.is_relative_to(s):
        raise UsageError(f"output {dst} is inside the input folder {src}: choose a folder outside it")
    if d.is_relative_to(s.parent) and s.is_relative_to(d):
        raise UsageError(f"input {src} is inside the output folder {dst}: choose a folder outside it")


def stale_parts(dest: str | os.PathLike) -> list[Path]:
    """The temporary files :func:`atomic_path` left beside ``dest`` when a writer was killed. Remove them only
    while no writer of ``dest`` can be running (under the writer's lock, or at the start of a rerun)."""
    dest = Path(dest)
    if not dest.parent.is_dir():
        return []
    return sorted(dest.parent.glob(f".{glob_escape(dest.stem)}.*.part{glob_escape(dest.suffix)}"))


def stale_parts_under(folder: str | os.PathLike) -> list[Path]:
    """Every temporary file :func:`atomic_path` left anywhere under ``folder`` (a killed run's leftovers), for
    a command that owns the whole folder and starts again."""
    folder = Path(folder)
    return sorted(folder.rglob(".*.part*")) if folder.is_dir() else []


def glob_escape(text: str) -> str:
    """``text`` with glob's special characters escaped, for a pattern that must match it literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in text)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(dest: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``dest`` atomically; returns ``dest`` as a Path."""
    with atomic_path(dest) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    return Path(dest)


def atomic_write_text(dest: str | os.PathLike, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``dest`` atomically. Characters the encoding cannot hold (a file name that is not valid
    UTF-8 arrives as lone surrogates) are written as backslash escapes, so a report never fails on a name."""
    return atomic_write_bytes(dest, text.encode(encoding, errors="backslashreplace"))


def atomic_write_json(dest: str | os.PathLike, obj: Any, indent: int = 2) -> Path:
    """Write ``obj`` as JSON to ``dest`` atomically."""
    return atomic_write_text(dest, json.dumps(obj, indent=indent, default=str) + "\n")


# -- progress bars --------------------------------------------------------------------------------------------
def show_progress(progress: bool = True) -> bool:
    """Whether to draw a tqdm bar: ``progress``, unless ``TQDM_DISABLE`` is set (``tts-nb run`` sets it for the
    kernels it starts: in an executed copy a bar is frozen text, not progress)."""
    return bool(progress) and os.environ.get("TQDM_DISABLE", "").strip().lower() in ("", "0", "false")


# -- YAML with limits -----------------------------------------------------------------------------------------
#: Nesting deeper than this is refused (a 5000-level file would exhaust Python's recursion instead).
YAML_MAX_DEPTH = 100
#: Nodes after aliases are expanded: a 1 KB "billion laughs" file of nested aliases expands to billions.
YAML_MAX_NODES = 200_000


class YAMLLimitError(ValueError):
    """A YAML document nested too deeply, or whose aliases expand to too many nodes."""


def load_yaml(text: str, source: str = "the YAML") -> Any:
    """``yaml.safe_load`` that refuses documents nested deeper than ``YAML_MAX_DEPTH`` or expanding (through
    aliases) to more than ``YAML_MAX_NODES`` nodes, with YAMLLimitError naming ``source``. Syntax errors raise
    ``yaml.YAMLError`` as usual."""
    import yaml

    class Loader(yaml.SafeLoader):
        depth = 0
        aliases = False

        def compose_node(self, parent: Any, index: Any) -> Any:
            Loader.aliases = Loader.aliases or self.check_event(yaml.AliasEvent)
            self.depth += 1
            if self.depth > YAML_MAX_DEPTH:
                raise YAMLLimitError(f"{source} is nested more than {YAML_MAX_DEPTH} levels deep; a config never is")
            try:
                return super().compose_node(parent, index)
            finally:
                self.depth -= 1

    data = yaml.load(text, Loader=Loader)  # noqa: S506 - a SafeLoader subclass
    stack, count = [data], 0
    while stack:
        node = stack.pop()
        count += 1
        if count > YAML_MAX_NODES:
            if Loader.aliases:
                raise YAMLLimitError(
                    f"{source} expands to more than {YAML_MAX_NODES:,} values through its aliases (&name / *name); "
                    "a config never does: remove the aliases"
                )
            raise YAMLLimitError(f"{source} holds more than {YAML_MAX_NODES:,} values; a config never does: "
                                 "is this the right file?")
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return data


# -- parse_bool ----------------------------------------------------------------------------------------------
TRUE_STRINGS = ("true", "1", "yes", "y", "on", "t")
FALSE_STRINGS = ("false", "0", "no", "n", "off", "f")


class BoolParseError(ValueError):
    """A string that is not a recognised boolean; the message names the argument and the value."""


def read_mapping(path: str | os.PathLike) -> dict[str, Any] | None:
    """A JSON (``.json``) or YAML file's top-level mapping, or None when it is not one or cannot be read: for
    code that recognises a project's files by content (the doctor, the Applio layouts)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
        data = json.loads(text) if path.suffix == ".json" else load_yaml(text, str(path))
    except Exception:  # noqa: BLE001 - not a file we recognise: the caller says so
        return None
    return data if isinstance(data, dict) else None


def parse_bool(value: str | bool | int, name: str | None = None) -> bool:
    """``"False"``, ``"0"``, ``"no"``, ``"off"`` -> False; ``"True"``, ``"1"``, ``"yes"``, ``"on"`` -> True.

    Case and surrounding spaces are ignored; a bool passes through, an int must be 0 or 1. Anything else
    (``""``, ``"maybe"``, ``"2"``, None) raises BoolParseError naming ``name`` and the value; unlike
    ``bool("False")``, which is True because the string is not empty.
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str):
        text = value.strip().lower()
        if text in TRUE_STRINGS:
            return True
        if text in FALSE_STRINGS:
            return False
    what = f"{name}={value!r}" if name else repr(value)
    raise BoolParseError(
        f"{what} is not a boolean: use one of {', '.join(TRUE_STRINGS)} or {', '.join(FALSE_STRINGS)}"
    )


def cli_field(default: Any, option: str, help: str) -> Any:
    """A dataclass field with ``default`` that the CLI layer also offers as ``option`` (``"--min-duration"``).

    The option's type comes from the field's annotation (``float``, ``int | None`` -> int), its default from
    ``default``; ``help`` is the option's help text. Declaring it here keeps one list of settings per config.
    """
    return field(default=default, metadata={"cli": option, "help": help})


# -- audio files ---------------------------------------------------------------------------------------------
def audio_extensions() -> set[str]:
    """File suffixes (lower case, with the dot) of the formats this soundfile/libsndfile can read."""
    import soundfile as sf  # here, so that importing io stays cheap for tools that list no audio
    exts = {f".{name.lower()}" for name in sf.available_formats()}
    return exts | {".wav", ".flac", ".ogg", ".oga", ".opus", ".aif", ".aiff", ".mp3", ".wave", ".m4a"}


def list_files(folder: str | os.PathLike, extensions: Iterable[str] | None = None, recursive: bool = True) -> list[Path]:
    """Files under ``folder`` (sorted), by suffix when ``extensions`` is given (any case, with the dot).

    Hidden files and folders (``.x.part.wav``, ``.cache/``) are skipped: they are temporary or private.
    ``recursive=False`` looks at ``folder`` itself only. Raises UsageError naming the folder when it does not
    exist.
    """
    root = Path(folder)
    if not root.is_dir():
        raise UsageError(f"{root}: no such folder (give the folder that holds your files)")
    exts = {e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions} if extensions else None
    return sorted(
        p for p in (root.rglob("*") if recursive else root.iterdir())
        if p.is_file() and (exts is None or p.suffix.lower() in exts)
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def walk_files(folder: str | os.PathLike) -> tuple[list[Path], list[tuple[Path, str]]]:
    """``(files, unreadable)`` under ``folder``, recursively, hidden ones included, both sorted: every regular
    file, and each folder that could not be listed with the reason (``Permission denied``), so a caller reports
    it as a finding instead of judging the rest as if it were not there. Links to folders are not followed."""
    files: list[Path] = []
    unreadable: list[tuple[Path, str]] = []

    def onerror(e: OSError) -> None:
        unreadable.append((Path(e.filename), e.strerror or str(e)))

    for parent, _dirs, names in os.walk(folder, onerror=onerror):
        files += [p for p in (Path(parent) / n for n in names) if p.is_file()]
    return sorted(files), sorted(unreadable)


def list_audio_files(folder: str | os.PathLike, extensions: Iterable[str] | None = None, recursive: bool = True) -> list[Path]:
    """Audio files under ``folder`` (sorted): :func:`list_files` with :func:`audio_extensions` by default."""
    return list_files(folder, extensions or audio_extensions(), recursive)
