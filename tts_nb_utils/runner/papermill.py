"""Run the project's notebooks with papermill, collect a report, and keep committed notebooks output-free.

This is what ``tts-nb run``, ``tts-nb list``, ``make run`` and the notebook tests call. Each notebook runs in
its own folder (as Jupyter does) with an explicit kernel name, so a notebook's stored kernelspec never
decides which Python runs it.
"""

from __future__ import annotations

import ast
import contextlib
import os
import re
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import nbformat
import yaml

from ..errors import UsageError
from ..io import (
    YAMLLimitError,
    atomic_path,
    atomic_write_json,
    atomic_write_text,
    load_yaml,
    remove_dead_parts,
)

#: The kernel ``make install`` registers for the project's virtual environment.
PROJECT_KERNEL = "tts-nb"


# --------------------------------------------------------------------------------------------- discovery


def discover(folder: str | Path | None = None) -> list[Path]:
    """The notebooks in ``folder`` (default: the project's ``notebooks/``), sorted by name."""
    if folder is None:
        from .paths import notebooks_dir

        folder = notebooks_dir()
    return sorted(p for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))


def resolve_notebooks(names: list[str] | None, folder: str | Path | None = None) -> list[Path]:
    """Map what a user typed to notebook paths: a path, a file name, a stem or a number prefix ("02").

    No names means every notebook, in order. Raises UsageError for a name that matches nothing
    (or more than one notebook), listing what exists.
    """
    available = discover(folder) if folder is not None or not names else None
    if not names:
        return available or []
    out: list[Path] = []
    for name in names:
        p = Path(name)
        if p.suffix == ".ipynb" and p.is_file():
            out.append(p.resolve())
            continue
        if available is None:
            try:
                available = discover(folder)
            except FileNotFoundError:
                available = []
        key = p.name.removesuffix(".ipynb")
        matches = [nb for nb in available if nb.stem == key] or [nb for nb in available if nb.stem.startswith(key)]
        if len(matches) != 1:
            known = ", ".join(nb.name for nb in available) or "(none found)"
            what = "matches several notebooks" if matches else "is not a notebook file and matches no notebook"
            raise UsageError(f"{name!r} {what}. Notebooks: {known}")
        out.append(matches[0])
    return out


# -------------------------------------------------------------------------------------------- parameters


def parse_value(text: str) -> Any:
    """Parse a ``-p NAME VALUE`` value like papermill: a Python or YAML literal, else the plain string.

    ``3`` -> 3, ``1e-4`` -> 0.0001, ``True``/``true`` -> True, ``None``/``null`` -> None,
    ``[[0, 5e-4], [10, 4e-4]]`` -> a list, ``cuda`` -> "cuda". A value that starts like a list, dict or
    tuple but does not parse raises UsageError instead of silently becoming a string.
    """
    s = text.strip()
    try:
        return ast.literal_eval(s)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        pass
    try:
        value = load_yaml(s, f"parameter value {text!r}")
    except (yaml.YAMLError, YAMLLimitError) as e:
        if s[:1] in "[{(":
            raise UsageError(f"parameter value {text!r} is not a valid Python/YAML literal: {e}") from None
        return text
    if isinstance(value, str | int | float | bool | list | dict) or value is None:
        if s[:1] in "[{(" and isinstance(value, str):
            raise UsageError(f"parameter value {text!r} is not a valid Python/YAML literal")
        return value
    return text


def notebook_parameters(path: str | Path) -> dict[str, dict[str, Any]]:
    """The notebook's ``parameters`` cell: ``{name: {"default": ..., "type": ..., "help": ...}}``.

    From papermill's ``inspect_notebook``; ``default`` is the source text of the value.
    """
    import papermill as pm

    nb = nbformat.read(str(path), as_version=4)
    if nb.metadata.get("kernelspec", {}).get("name"):
        params = pm.inspect_notebook(str(path))
    else:  # papermill needs a kernel or language to parse the cell; a user's notebook may have neither
        nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / Path(path).name
            nbformat.write(nb, str(copy))
            params = pm.inspect_notebook(str(copy))
    return {
        name: {"default": info.get("default"), "type": _declared(info), "help": info.get("help", "")}
        for name, info in params.items()
    }


#: Types a parameter whose default is None declares, at the start of its help comment (``CONFIG = None  # str:
#: your config``) or as an annotation, as :func:`_kind` names them; None itself is always accepted.
DECLARED_TYPES = ("str", "int", "float", "bool", "list", "dict")


#: ``NAME = None  # str: help`` or ``NAME: str = None  # help``: the type a parameter whose default is None takes.
_DECLARED = re.compile(rf"^\(?({'|'.join(DECLARED_TYPES)})\)?:\s")


def _declared(info: dict[str, Any]) -> str | None:
    """The parameter's type: papermill's (from an annotation or the default), or, for a None default, the type
    its help comment starts with (``# str: ...``)."""
    inferred = info.get("inferred_type_name")
    if info.get("default") == "None" and inferred in (None, "None"):
        m = _DECLARED.match(info.get("help") or "")
        return m.group(1) if m else inferred
    return inferred


def declared_parameters(paths: list[Path], problems: dict[Path, str | None]) -> dict[Path, dict[str, dict]]:
    """:func:`notebook_parameters` of each readable notebook (``problems``: :func:`read_problem` of each path;
    an unreadable notebook declares none)."""
    return {p: notebook_parameters(p) if problems[p] is None else {} for p in paths}


def split_parameters(
    paths: list[Path], parameters: dict[str, Any], problems: dict[Path, str | None] | None = None,
    declared: dict[Path, dict[str, dict]] | None = None,
) -> dict[Path, dict[str, Any]]:
    """Give each notebook the parameters it declares; a name no selected notebook declares is a UsageError.
    ``problems``: :func:`read_problem` of each path when the caller has it; ``declared``:
    :func:`declared_parameters` when the caller has it (papermill parses each notebook to find them)."""
    problems = problems if problems is not None else {p: read_problem(p) for p in paths}
    declared = declared if declared is not None else declared_parameters(paths, problems)
    unknown = [k for k in parameters if not any(k in d for d in declared.values())]
    if unknown:
        lines = [f"  {p.name}: {', '.join(d) or '(no parameters)'}" for p, d in declared.items()]
        raise UsageError(
            f"unknown parameter(s) {', '.join(unknown)}: no selected notebook declares them. "
            "Parameters by notebook:\n" + "\n".join(lines)
        )
    return {
        p: {k: check_parameter(p, k, v, d[k]["default"], d[k]["type"]) for k, v in parameters.items() if k in d}
        for p, d in declared.items()
    }


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, list | tuple):
        inner = {_kind(v) for v in value}
        if inner and inner <= {"int", "float"}:
            return "list of numbers"
        if inner and all(k.startswith("list") for k in inner):
            return "nested list"
        return "list"
    return type(value).__name__


def check_parameter(notebook: Path, name: str, value: Any, default_src: str | None,
                    declared: str | None = None) -> Any:
    """``value`` if it fits the type of the parameter's default in ``notebook`` (int, float, bool, str, list,
    nested list), converted where that is lossless (an int for a float, a number for a str). A parameter whose
    default is None is checked against its ``declared`` annotation (:data:`DECLARED_TYPES`). Raises
    UsageError naming the parameter, the value, the type expected and the notebook, before any kernel starts."""
    try:
        default = ast.literal_eval(default_src) if default_src is not None else None
    except (ValueError, SyntaxError):
        return value  # a default that is not a literal (papermill allows any expression): nothing to check
    if default is None and value is not None and declared in DECLARED_TYPES:
        return _check_declared(notebook, name, value, declared)
    want, got = _kind(default), _kind(value)
    if default is None or want == got or (want == "list" and got.startswith("list")) or (
        want == "nested list" and got == "list" and not value
    ):
        return value
    if want == "float" and got == "int":
        return float(value)
    if want == "str" and got in ("int", "float", "bool"):
        return str(value)
    examples = {"int": "a whole number such as 3", "float": "a number such as 1e-4", "bool": "True or False",
                "str": "text", "list of numbers": "a list such as [1, 2]",
                "nested list": "a list of lists such as [[0, 5e-4], [40, 4e-4]]", "list": "a list such as [1, 2]",
                "dict": "a mapping such as {a: 1}"}
    article = "an" if want[0] in "aeiou" else "a"
    quote = f" (quote it for the shell: -p {name} '...')" if "list" in want or want == "dict" else ""
    raise UsageError(
        f"parameter {name}={value!r} ({got}) does not fit {notebook.name}: its default {default_src} is "
        f"{article} {want}; give {examples.get(want, 'a value of that type')}{quote}"
    )


def _check_declared(notebook: Path, name: str, value: Any, want: str) -> Any:
    got = _kind(value)
    if got == want or (want == "list" and got.startswith("list")) or (want == "float" and got == "int"):
        return float(value) if want == "float" else value
    if want == "str" and got in ("int", "float"):  # -p NAME 42 for a text parameter: the text "42"
        return str(value)
    raise UsageError(f"parameter {name}={value!r} ({got}) does not fit {notebook.name}: it is declared {want} "
                     f"(default None); give {'a path or text' if want == 'str' else f'a {want}'} or None")


# ------------------------------------------------------------------------------------------------ running


@dataclass
class NotebookResult:
    notebook: str
    source: str
    output: str
    status: str  # "ok" or "failed"
    seconds: float
    parameters: dict[str, Any] = field(default_factory=dict)
    error: dict[str, Any] | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def default_kernel() -> str:
    """The project's registered kernel when it exists, else ``python3`` (the running interpreter's)."""
    try:
        from jupyter_client.kernelspec import KernelSpecManager

        if PROJECT_KERNEL in KernelSpecManager().find_kernel_specs():
            return PROJECT_KERNEL
    except Exception:  # noqa: BLE001 - a broken Jupyter install should not stop the fallback
        pass
    return "python3"


@contextlib.contextmanager
def _headless_kernel() -> Iterator[None]:
    """Mark kernels started inside this block as headless (see tts_nb_utils.runner.widgets), and turn tqdm's
    progress bars off there (``TQDM_DISABLE``): in an executed copy a bar is frozen text such as "0%|", not
    progress. Variables the user set are left as they are."""
    from .widgets import HEADLESS_ENV

    saved = {k: os.environ.get(k) for k in (HEADLESS_ENV, "TQDM_DISABLE")}
    for key, value in saved.items():
        if value is None:
            os.environ[key] = "1"
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)


def _language(path: Path) -> str:
    """The notebook's language, defaulting to Python for notebooks saved without kernel metadata."""
    meta = nbformat.read(str(path), as_version=4).metadata
    return meta.get("kernelspec", {}).get("language") or meta.get("language_info", {}).get("name") or "python"


CellRef = tuple[int | None, int | None, str]  # (index in the source notebook, in the executed copy, first line)


def _user_cells(output_nb: Path) -> Iterator[tuple[CellRef, Any]]:
    """The cells of an executed copy that are the user's (not papermill's parameter or error cells), with where
    each stands in the source notebook and in the copy. Yields nothing for a copy that cannot be read."""
    try:
        nb = nbformat.read(str(output_nb), as_version=4)
    except Exception:  # noqa: BLE001 - a copy cut short by a dead kernel: no cell to name
        return
    source_index = 0
    for i, cell in enumerate(nb.cells):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags or "papermill-error-cell-tag" in tags:
            continue
        src = cell.get("source", "").strip().splitlines()
        yield (source_index, i, src[0] if src else ""), cell
        source_index += 1


def _status(cell: Any) -> str | None:
    return cell.get("metadata", {}).get("papermill", {}).get("status")


def _failed_cell(output_nb: Path) -> CellRef:
    """The cell papermill marked failed or running; for a timeout or a dead kernel, whose statuses say nothing,
    the last code cell that started (has an execution count)."""
    last_started = None
    for ref, cell in _user_cells(output_nb):
        if _status(cell) in ("failed", "running"):
            return ref
        if cell.get("cell_type") == "code" and cell.get("execution_count") is not None:
            last_started = ref
    return last_started or (None, None, "")


def _unfinished_cell(output_nb: Path) -> CellRef:
    """The first code cell that did not complete in an executed copy papermill reported as a success (a cell that
    called ``sys.exit()`` stops the run quietly), or ``(None, None, "")`` when every cell ran."""
    for ref, cell in _user_cells(output_nb):
        if cell.get("cell_type") == "code" and _status(cell) not in (None, "completed"):
            return ref
    return None, None, ""


def _message(e: BaseException) -> str:
    """The line of an exception's text that says what happened (not a rule of dashes or an empty line)."""
    evalue = getattr(e, "evalue", None)  # PapermillExecutionError carries the cell's exception
    if evalue is not None:
        return str(evalue)
    lines = [ln.strip() for ln in str(e).splitlines() if ln.strip() and set(ln.strip()) != {"-"}]
    return lines[0] if lines else type(e).__name__


def _error(cell_index: int | None, executed_index: int | None, first_line: str, exception: str, message: str) -> dict:
    return {"cell_index": cell_index, "executed_cell_index": executed_index, "cell_first_line": first_line,
            "exception": exception, "message": message}


def read_problem(path: str | Path) -> str | None:
    """Why ``path`` cannot be run as a notebook (not JSON, not nbformat 4, unreadable), or None when it can."""
    try:
        nbformat.validate(nbformat.read(str(path), as_version=4))
    except Exception as e:  # noqa: BLE001 - nbformat and json raise many types; the message says which
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        return f"{Path(path).name} is not a valid notebook ({type(e).__name__}: {first}); restore it from git or re-save it"
    return None


def run_notebook(
    path: str | Path,
    out_dir: str | Path,
    parameters: dict[str, Any] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
) -> NotebookResult:
    """Execute one notebook with papermill into ``out_dir/<name>.ipynb``; never raises for a failing cell.

    ``timeout`` is per cell, in seconds (papermill's ``execution_timeout``). The executed copy is written
    atomically, and kept when the notebook fails, with the error in the failing cell's output.
    """
    import papermill as pm

    path = Path(path).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dest = out_dir / path.name
    remove_dead_parts(dest)  # a killed run's temporary copy (its writer's process is gone)
    parameters = dict(parameters or {})
    kernel_name = kernel_name or default_kernel()
    error: dict[str, Any] | None = None
    start = time.perf_counter()
    with atomic_path(dest) as tmp, _headless_kernel():
        try:
            pm.execute_notebook(
                str(path),
                str(tmp),
                parameters=parameters,
                kernel_name=kernel_name,
                language=_language(path),
                execution_timeout=timeout,
                cwd=str(path.parent),
                progress_bar=False,
            )
        except Exception as e:  # noqa: BLE001 - every failure becomes a report row
            cell_index, executed_index, first_line = _failed_cell(tmp)
            ename = getattr(e, "ename", None) or type(e).__name__
            error = _error(cell_index, executed_index, first_line, ename, _message(e))
        else:
            cell_index, executed_index, first_line = _unfinished_cell(tmp)
            if cell_index is not None:
                error = _error(cell_index, executed_index, first_line, "NotebookStopped",
                               "this cell did not complete (sys.exit() or exit() stops a run quietly); the cells "
                               "after it, the verify cells included, never ran")
    seconds = time.perf_counter() - start
    return NotebookResult(
        notebook=path.name,
        source=str(path),
        output=str(dest),
        status="failed" if error else "ok",
        seconds=round(seconds, 2),
        parameters=parameters,
        error=error,
    )


def run_or_report(path: Path, out_dir: str | Path, parameters: dict[str, Any], problem: str | None,
                  kernel_name: str | None = None, timeout: float | None = None) -> NotebookResult:
    """:func:`run_notebook`, or for a notebook that cannot be read (``problem``: :func:`read_problem`'s text) a
    failed row naming why, so the other notebooks of a run or sweep still run."""
    if problem is not None:
        return NotebookResult(notebook=path.name, source=str(path), output="", status="failed", seconds=0.0,
                              parameters=parameters, error=_error(None, None, "", "NotebookReadError", problem))
    return run_notebook(path, out_dir, parameters, kernel_name, timeout)


def _kernel_share(processes: int) -> None:
    """In a worker of :func:`run_many`: its kernels' torch threads are its share of the cores (unless
    ``TTS_NB_THREADS`` is set), so parallel notebooks do not each take the threads of a whole machine."""
    from ..parallel import THREADS_ENV, auto_threads

    os.environ.setdefault(THREADS_ENV, str(auto_threads(processes=processes)))


def run_many(tasks: list[tuple], jobs: int = 1) -> Iterator[tuple[int, NotebookResult]]:
    """``(index, result)`` of :func:`run_or_report` for each argument tuple in ``tasks``, as each finishes, in
    up to ``jobs`` worker processes (each starts its own kernels; in order, in this process, for one job)."""
    workers = min(int(jobs), len(tasks))
    if workers <= 1:
        for i, args in enumerate(tasks):
            yield i, run_or_report(*args)
        return
    import multiprocessing as mp
    from concurrent.futures import ProcessPoolExecutor, as_completed

    # spawn: a fresh interpreter per worker, never a fork of a process that may hold ZeroMQ sockets or threads
    with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"), initializer=_kernel_share,
                             initargs=(workers,)) as pool:
        futures = {pool.submit(run_or_report, *args): i for i, args in enumerate(tasks)}
        for future in as_completed(futures):
            yield futures[future], future.result()


def run_notebooks(
    paths: list[Path],
    out_dir: str | Path,
    parameters: dict[str, Any] | None = None,
    kernel_name: str | None = None,
    timeout: float | None = None,
    echo: bool = True,
    jobs: int = 1,
) -> list[NotebookResult]:
    """Run each notebook (each one even when an earlier one failed) and write ``out_dir/report.json``.

    ``parameters`` go to every notebook that declares them (UsageError if none does). ``jobs``: notebooks run
    at once (:func:`run_many`); the report keeps the order of ``paths`` and is rewritten as each one ends.
    """
    out_dir = Path(out_dir)
    problems = {p: read_problem(p) for p in paths}
    per_notebook = split_parameters(paths, parameters or {}, problems)
    kernel_name = kernel_name or default_kernel()
    tasks = [(p, out_dir, per_notebook[p], problems[p], kernel_name, timeout) for p in paths]
    done: dict[int, NotebookResult] = {}
    if echo and len(paths) > 1:
        print(f"running {len(paths)} notebooks, {max(1, min(jobs, len(paths)))} at a time", flush=True)
    ordered: list[NotebookResult] = []
    for i, result in run_many(tasks, jobs):
        done[i] = result
        if echo:
            line = f"[{len(done)}/{len(paths)}] {result.notebook}: {result.status} in {result.seconds:.1f} s"
            if result.error:
                err = result.error
                line += f" (cell {err['cell_index']}: {err['exception']}: {err['message']})"
            print(line, flush=True)
        ordered = [done[k] for k in sorted(done)]
        write_report(ordered, out_dir, kernel_name)
    return ordered


def write_report(results: list[NotebookResult], out_dir: str | Path, kernel_name: str) -> Path:
    """Write ``report.json`` (per notebook: status, seconds, parameters, and the error when it failed)."""
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "kernel": kernel_name,
        "python": sys.version.split()[0],
        "ok": all(r.ok for r in results),
        "notebooks": [asdict(r) for r in results],
    }
    return atomic_write_json(Path(out_dir) / "report.json", report)


def format_summary(results: list[NotebookResult], wall: float | None = None) -> str:
    """A plain-text table: notebook, status, seconds (and the failing cell for failures); ``wall``: the whole
    run's seconds, shown when notebooks ran side by side (then less than their sum)."""
    width = max([len("notebook")] + [len(r.notebook) for r in results])
    lines = [f"{'notebook':<{width}}  {'status':<6}  {'seconds':>8}", f"{'-' * width}  ------  --------"]
    for r in results:
        lines.append(f"{r.notebook:<{width}}  {r.status:<6}  {r.seconds:>8.1f}")
        if r.error:
            e = r.error
            lines.append(f"{'':<{width}}    cell {e['cell_index']}: {e['exception']}: {e['message']}"[:400])
    total = sum(r.seconds for r in results)
    failed = sum(not r.ok for r in results)
    side_by_side = f", {wall:.1f} s wall (side by side)" if wall is not None and wall < 0.95 * total else ""
    lines.append(f"{len(results)} notebook(s), {failed} failed, {total:.1f} s in all{side_by_side}")
    return "\n".join(lines)


def format_parameters(path: Path) -> str:
    """The notebook's parameters as ``NAME = default  # help`` lines, for ``tts-nb list``."""
    problem = read_problem(path)
    if problem is not None:
        return f"    ({problem})"
    params = notebook_parameters(path)
    if not params:
        return "    (no parameters cell)"
    assignments = {k: f"{k} = {v['default']}" for k, v in params.items()}
    width = max(len(a) for a in assignments.values())
    return "\n".join(
        f"    {assignments[k]:<{width}}  # {v['help']}".rstrip(" #") for k, v in params.items()
    )


# ------------------------------------------------------------------------------------------ housekeeping


#: The kernelspec committed notebooks carry: ``python3``, which Colab recognises (an unknown name makes it warn
#: "Unrecognized runtime ...; defaulting to python3", googlecolab/colabtools#1816) and which is the venv's own
#: Python when JupyterLab runs from ``.venv``; ``tts-nb run`` names its kernel explicitly whatever is stored.
COMMITTED_KERNELSPEC = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}


def strip_text(text: str) -> str:
    """A notebook's text without outputs, execution counts, run metadata or editor state, with the committed
    kernelspec: what is committed. Opening and saving a notebook in JupyterLab changes none of what remains."""
    nb = nbformat.reads(text, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        for key in ("papermill", "execution", "collapsed", "scrolled", "jupyter"):
            cell.metadata.pop(key, None)
    tags = {"kernelspec": dict(COMMITTED_KERNELSPEC), "language_info": {"name": "python"}}
    nb.metadata = nbformat.from_dict(tags)
    return nbformat.writes(nb) + "\n"


def strip_outputs(path: str | Path) -> bool:
    """:func:`strip_text` applied to a notebook file in place (atomically); True if it changed."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    new = strip_text(text)
    if new == text:
        return False
    atomic_write_text(path, new)
    return True
