"""The committed notebooks: no outputs, one `parameters` cell of plain values, prose first,
every notebook's paired jupytext script in sync."""
from __future__ import annotations

import ast
from pathlib import Path

import nbformat
import pytest

# The JupyterLab test edits a notebook in place for a moment: not while these read them.
pytestmark = pytest.mark.usefixtures("notebooks_lock")

NOTEBOOKS = sorted((Path(__file__).resolve().parents[2] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_five_numbered_notebooks():
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03", "04", "05"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
    assert not dirty, f"{path.name}: cells {dirty} have outputs; strip them (jupytext --to ipynb from the .py)"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_and_prose(path):
    nb = nbformat.read(path, as_version=4)
    assert nb.cells[0].cell_type == "markdown" and len(nb.cells[0].source) > 300
    params = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(params) == 1
    tree = ast.parse(params[0].source)
    names = []
    for node in tree.body:
        assert isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant), ast.dump(node)
        assert isinstance(node.value.value, (str, int, float, bool))
        names.append(node.targets[0].id)
    assert names[:3] == ["config_path", "output_dir", "overrides"]
    assert "notebook_config(config_path, overrides, output_dir)" in "".join(c.source for c in nb.cells)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_paired_script_in_sync(path):
    jupytext = pytest.importorskip("jupytext")
    script = path.with_suffix(".py")
    assert script.exists(), f"{script.name} missing: notebooks are authored as jupytext scripts"
    from_script = jupytext.read(script)
    nb = nbformat.read(path, as_version=4)
    assert [(c.cell_type, c.source) for c in from_script.cells] == [(c.cell_type, c.source) for c in nb.cells], \
        f"{path.name} and {script.name} differ: run `jupytext --sync {script}`"
