"""``kedro viz build`` makes a static site of every pipeline; headless Chromium (Debian's ``chromium``
package, installed by ``make test``) renders it and every stage's node names are in the drawn graph. The
screenshot is kept at data/08_reporting/kedro_viz.png."""

import functools
import http.server
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT, make_project_copy
from vans_pipelines.pipeline_registry import register_pipelines

SCREENSHOT = PROJECT_ROOT / "data" / "08_reporting" / "kedro_viz.png"


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    pytest.fail("no headless Chromium: install Debian's `chromium` package (`make test` does, as root)")


@pytest.fixture(scope="module")
def viz_site(tmp_path_factory):
    project = make_project_copy(tmp_path_factory.mktemp("viz"))
    env = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"}
    kedro = Path(sys.executable).parent / "kedro"
    result = subprocess.run(
        [str(kedro), "viz", "build"], cwd=project, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "circular dependency detected among layers" not in result.stdout + result.stderr
    site = project / "build"
    assert (site / "index.html").is_file() and (site / "api" / "main").is_file()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


def render(url: str, *extra: str) -> str:
    """The DOM after the app has run (virtual time lets its scripts and layout settle)."""
    cmd = [
        chromium(),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--window-size=1600,1000",
        "--virtual-time-budget=20000",
        *extra,
        url,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def drawn_node_names(dom: str) -> set[str]:
    marker = 'class="pipeline-node__text"'
    names = set()
    for part in dom.split(marker)[1:]:
        names.add(part.split(">", 1)[1].split("<", 1)[0])
    return names


@pytest.mark.slow
def test_every_stage_is_drawn_and_screenshotted(viz_site, tmp_path):
    pipelines = register_pipelines()
    default = drawn_node_names(render(viz_site, "--dump-dom"))
    for stage in ("ingest", "caption", "sft", "grpo_vlm", "grpo_vdm", "evaluate"):
        names = {n.name for n in pipelines[stage].nodes}
        assert names <= default, f"{stage}: not drawn: {sorted(names - default)}"
    tune = drawn_node_names(render(viz_site + "?pid=tune", "--dump-dom"))
    assert {n.name for n in pipelines["tune"].nodes} <= tune

    shot = tmp_path / "kedro_viz.png"
    render(viz_site, f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000  # a drawn graph, not a blank page
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(shot, SCREENSHOT)
