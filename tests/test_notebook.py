"""notebooks/quickstart.ipynb runs top to bottom (with a tiny budget) so it never rots."""

import os

import pytest
from conftest import DATA_DIR, REPO

pytestmark = pytest.mark.real_data  # every test here trains or reads on the real data files


@pytest.mark.real_model
def test_quickstart_notebook_executes(minilm, monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("HF_TL_DATA_DIR", str(DATA_DIR))
    monkeypatch.setenv("HF_TL_QUICKSTART_TRAIN_SAMPLES", "32")
    monkeypatch.setenv("HF_TL_QUICKSTART_EVAL_SAMPLES", "32")
    notebook = nbformat.read(REPO / "notebooks" / "quickstart.ipynb", as_version=4)
    client = nbclient.NotebookClient(notebook, timeout=600, kernel_name="python3",
                                     resources={"metadata": {"path": str(REPO / "notebooks")}})
    client.execute(env=dict(os.environ))
    outputs = "".join(o.get("text", "") for cell in notebook.cells if cell.cell_type == "code"
                      for o in cell.get("outputs", []))
    assert "frozen" in outputs and "lora" in outputs and "dev Spearman" in outputs
    assert "trainable params:" in outputs
