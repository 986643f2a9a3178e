"""`make lab`: JupyterLab on the project's notebooks, saving them the way they are committed.

    .venv/bin/python -m skillmix_utils.lab [--port 8888] [any jupyter lab option]

The notebooks' source of truth is the paired jupytext script `notebooks/NN_*.py`; the `.ipynb`
beside it is derived from it and committed without outputs. JupyterLab (through jupytext's
contents manager, configured in pyproject.toml's `[tool.jupytext]`) reads a notebook's cells
from the `.py` and, on save, writes both files. `clean_notebook` runs before every save and
keeps the committed notebooks' files free of what a run adds (outputs, execution counts, the
kernel's language_info, widget state), so editing and saving in JupyterLab leaves `git status`
clean unless a cell's text changed; the outputs stay on screen, and the executed copies that
`skillmix run` writes under `outputs/<study>/notebooks/` keep theirs.

The server runs the interpreter that runs this module (the project's `.venv`), whose `python3`
kernel `make setup` registers, so notebooks import this checkout's package and find the same
cache as make and the CLI (llm/models.cache_dir).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from skillmix_utils.core.provenance import CHECKOUT
from skillmix_utils.runner.markers import NOTEBOOKS_DIR

# What a committed notebook's metadata holds; everything else is added by running or viewing.
KEPT_NOTEBOOK_METADATA = ("jupytext", "kernelspec")
KEPT_CELL_METADATA = ("tags",)
HOOK = f"{__name__}.clean_notebook"


def _is_committed_notebook(path: str, contents_manager) -> bool:
    """Only the project's own notebooks are cleaned; any other notebook (an executed copy under
    outputs/, a scratch notebook) keeps its outputs when saved."""
    root = Path(getattr(contents_manager, "root_dir", CHECKOUT) or CHECKOUT)
    target = (root / path.strip("/")).resolve()
    return target.parent == NOTEBOOKS_DIR.resolve() and target.suffix == ".ipynb"


def strip_notebook(nb: dict) -> dict:
    """Drop outputs, execution counts and run-time metadata from a notebook (as a dict), in place.

    >>> nb = {"metadata": {"kernelspec": {"name": "python3"}, "language_info": {"version": "3.11"}},
    ...       "cells": [{"cell_type": "code", "execution_count": 3, "outputs": [{"text": "hi"}],
    ...                  "metadata": {"tags": ["parameters"], "scrolled": True}, "source": "x = 1"}]}
    >>> strip_notebook(nb)["cells"][0]
    {'cell_type': 'code', 'execution_count': None, 'outputs': [], 'metadata': {'tags': ['parameters']}, 'source': 'x = 1'}
    >>> nb["metadata"]
    {'kernelspec': {'name': 'python3'}}
    """
    nb["metadata"] = {k: v for k, v in nb.get("metadata", {}).items() if k in KEPT_NOTEBOOK_METADATA}
    for cell in nb.get("cells", []):
        cell["metadata"] = {k: v for k, v in cell.get("metadata", {}).items()
                            if k in KEPT_CELL_METADATA}
        if cell.get("cell_type") == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def clean_notebook(model: dict, path: str = "", contents_manager=None, **kwargs) -> None:
    """Jupyter's pre-save hook (`ContentsManager.pre_save_hook`): a committed notebook is
    written without outputs or run-time metadata; other files are left alone."""
    if model.get("type") == "notebook" and model.get("content") is not None \
            and _is_committed_notebook(path, contents_manager):
        strip_notebook(model["content"])


def lab_command(port: int = 8888, extra: list[str] | None = None) -> list[str]:
    """The `jupyter lab` command line `make lab` runs: this interpreter's JupyterLab, rooted at
    the checkout, opening on notebooks/, with the pre-save hook."""
    return [sys.executable, "-m", "jupyterlab", f"--port={port}",
            f"--ServerApp.root_dir={CHECKOUT}",
            f"--LabApp.default_url=/lab/tree/{NOTEBOOKS_DIR.relative_to(CHECKOUT).as_posix()}",
            f"--ContentsManager.pre_save_hook={HOOK}", *(extra or [])]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skillmix_utils.lab", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8888)
    args, extra = parser.parse_known_args(argv)
    cmd = lab_command(args.port, extra)
    print("starting:", " ".join(cmd), flush=True)
    try:
        return subprocess.call(cmd, cwd=CHECKOUT)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
