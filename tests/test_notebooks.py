"""The notebooks run top to bottom, in a fresh folder, as a user would open them."""

import os
import shutil

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")


@pytest.mark.parametrize("name", ["01_quickstart.ipynb", "04_serving_and_tflite.ipynb"])
def test_notebook_runs(name, tmp_path):
    shutil.copy(os.path.join(NOTEBOOKS, name), tmp_path / name)
    notebook = nbformat.read(str(tmp_path / name), as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit notebooks with their outputs stripped"
    )
    client = nbclient.NotebookClient(
        notebook, timeout=600, kernel_name="python3",
        resources={"metadata": {"path": str(tmp_path)}},
    )
    client.execute()
    text = "".join(
        output.get("text", "") + str(output.get("data", {}).get("text/plain", ""))
        for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs
    )
    if name.startswith("01"):
        assert "held-out exact match" in text and "serving_default" in text
    else:
        assert "LiteRT n-best identical to the SavedModel's on 20 of 20" in text
