"""notebooks/vans_run.ipynb executes against a tiny finished run (nbclient, the project's Python)."""

import nbformat
import pytest
from nbclient import NotebookClient

from tests.conftest import PROJECT_ROOT


@pytest.mark.slow
def test_the_notebook_runs_on_a_finished_run(finished_run, monkeypatch, tmp_path):
    monkeypatch.setenv("VANS_PROJECT", str(finished_run))
    monkeypatch.setenv("KEDRO_DISABLE_TELEMETRY", "true")
    notebook = nbformat.read(PROJECT_ROOT / "notebooks" / "vans_run.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}
    ).execute()
    outputs = [o for cell in notebook.cells if cell.cell_type == "code" for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    html = "".join(o.get("data", {}).get("text/html", "") for o in outputs)
    assert "Joint-GRPO (GRPO VLM -&gt; GRPO VDM)" in html or "Joint-GRPO (GRPO VLM -> GRPO VDM)" in html
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) >= 2  # the reward curves and the video grid frame
