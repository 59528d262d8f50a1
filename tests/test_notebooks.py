"""The notebooks in ``notebooks/`` run from top to bottom (small settings) and are committed without outputs."""

from __future__ import annotations

from pathlib import Path

import pytest

NOTEBOOK_FOLDER = Path(__file__).resolve().parents[1] / "notebooks"
NOTEBOOKS = ("01-quickstart", "02-forecast-robustness", "03-controller-comparison", "04-paper-study", "05-gym")


def test_the_notebooks_are_there():
    assert sorted(path.stem for path in NOTEBOOK_FOLDER.glob("*.ipynb")) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_is_committed_without_outputs(name):
    import nbformat

    notebook = nbformat.read(NOTEBOOK_FOLDER / f"{name}.ipynb", as_version=4)
    nbformat.validate(notebook)
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip the outputs"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_with_small_settings(name, tmp_path, monkeypatch):
    """Executed in a scratch folder (outputs never go back into the repository); a failing cell
    raises :class:`nbclient.exceptions.CellExecutionError` with its traceback."""
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("AIDC_NOTEBOOK_SMALL", "1")
    monkeypatch.setenv("AIDC_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # quiet debugger warning of frozen modules
    notebook = nbformat.read(NOTEBOOK_FOLDER / f"{name}.ipynb", as_version=4)
    client = NotebookClient(notebook, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    assert any("image/png" in output.get("data", {}) for output in outputs), "the notebook shows no figure"
