"""Where things are: the repository, its notebooks and bundled data, and Colab links to a notebook.

Used by every notebook (to find the demo corpus whatever the working directory) and by the runner.
"""

from __future__ import annotations

from pathlib import Path

from .. import GITHUB_REPO

PACKAGE_DIR = Path(__file__).resolve().parent.parent


def repo_root() -> Path:
    """The checkout this package was installed from (editable install or a clone on ``sys.path``).

    Raises FileNotFoundError when the package was installed without its repository (a plain wheel).
    """
    root = PACKAGE_DIR.parent
    if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file():
        return root
    raise FileNotFoundError(
        f"tts_nb_utils is installed from {PACKAGE_DIR}, which is not inside a tts-nb checkout "
        f"(no notebooks/ and pyproject.toml beside it). Clone https://github.com/{GITHUB_REPO} and "
        "install it with `pip install -e .` to get the notebooks and the demo data."
    )


def notebooks_dir() -> Path:
    """The folder of the project's notebooks."""
    return repo_root() / "notebooks"


def data_dir() -> Path:
    """The bundled demo data folder (``data/`` in the checkout)."""
    return repo_root() / "data"


def colab_url(notebook_name: str, repo: str = GITHUB_REPO, branch: str = "main") -> str:
    """The Colab URL that opens ``notebooks/<notebook_name>`` from GitHub."""
    return f"https://colab.research.google.com/github/{repo}/blob/{branch}/notebooks/{notebook_name}"


def colab_badge(notebook_name: str, repo: str = GITHUB_REPO) -> str:
    """The Markdown "Open in Colab" badge for a notebook of this repository."""
    return (
        "[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"({colab_url(notebook_name, repo)})"
    )
