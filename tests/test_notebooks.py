"""The notebooks run top to bottom, in a fresh folder, as a user would open them."""

import os
import re
import shutil

import pytest

nbclient = pytest.importorskip("nbclient")
nbformat = pytest.importorskip("nbformat")

NOTEBOOKS = os.path.join(os.path.dirname(__file__), "..", "notebooks")
MULTI30K = os.path.abspath(os.path.join(NOTEBOOKS, "..", "..", "shared", "data", "multi30k"))


# Each notebook trains or exports for minutes: they are left to `-m slow`
# (tests/test_export.py and test_tflite.py cover what 04 calls, in CI).
TRAINS = pytest.mark.slow


@pytest.mark.parametrize(
    "name", [pytest.param("01_quickstart.ipynb", marks=TRAINS),
             pytest.param("02_attention_nmt_multi30k.ipynb", marks=TRAINS),
             pytest.param("03_pointer_networks.ipynb", marks=TRAINS),
             pytest.param("04_serving_and_tflite.ipynb", marks=TRAINS),
             pytest.param("05_summarization.ipynb", marks=TRAINS),
             pytest.param("06_images_and_speech.ipynb", marks=TRAINS)])
def test_notebook_runs(name, tmp_path):
    shutil.copy(os.path.join(NOTEBOOKS, name), tmp_path / name)
    notebook = nbformat.read(str(tmp_path / name), as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code"), (
        "commit notebooks with their outputs stripped"
    )
    # 02, 05 and 06 read slices of ../shared/data, beside the checkout.
    for variable, folder in (("MULTI30K_DIR", "multi30k"), ("MNIST_DIR", "mnist-digits"),
                             ("FSDD_DIR", "fsdd"), ("SAMSUM_DIR", "samsum")):
        os.environ.setdefault(variable, os.path.join(os.path.dirname(MULTI30K), folder))
    for prefix, variable in (("02", "MULTI30K_DIR"), ("05", "SAMSUM_DIR"), ("06", "FSDD_DIR")):
        if name.startswith(prefix) and not os.path.isdir(os.environ[variable]):
            pytest.skip(f"no data at {os.environ[variable]}")
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
    elif name.startswith("02"):
        bleu = float(re.search(r"BLEU ([0-9.]+)", text).group(1))
        assert bleu > 3.0  # a slice trains far from the recipe's, but learns
        assert "attention rows sum to 1: True" in text and "<Figure" in text
    elif name.startswith("03"):
        assert "convex hull, beam 5:" in text and "'invalid_rate': 0.0" in text
        assert "LiteRT tours identical to the SavedModel's on 3 of 3" in text
        assert text.count("<Figure") >= 2  # the hull and tour plots
    elif name.startswith("05"):
        assert "ROUGE-1" in text and "model: " in text and "<IPython.core.display.Image" in text
    elif name.startswith("06"):
        assert "sequence accuracy" in text and "attention rows sum to 1: True" in text
        assert text.count("truth '") == 8
    else:
        assert "LiteRT n-best identical to the SavedModel's on 20 of 20" in text
