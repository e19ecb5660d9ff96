"""The docs site's generated results pages: every figure on them is found in a file they cite, and they are
what ``docs/gen_results.py`` makes from those files. ``mkdocs build --strict`` itself runs in ``make test``.

The figure check here is written apart from the generator (it shares no code with it), so a page edited by
hand, or a generator that formats a figure it did not read, fails it."""

from __future__ import annotations

import json
import re
import runpy
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = ROOT / "docs" / "results"
GENERATED = ("evaluation.md", "stages.md", "ablation.md", "benchmarks.md")
#: A figure: digits with an optional sign and decimals, not part of a name (``bleu_4``, ``Qwen2.5``).
FIGURE = re.compile(r"(?<![\w.])[-−+]?\d+(?:\.\d+)?(?![\w.]*\w)")


def page_figures(text: str) -> tuple[list[str], list[str]]:
    """The files a page cites (its ``Sources:`` line) and every figure outside its stamp and links."""
    sources: list[str] = []
    figures: list[str] = []
    in_stamp = False
    for line in text.splitlines():
        if line.startswith("!!! info"):
            in_stamp = True
            continue
        if in_stamp and line.startswith("    "):
            continue
        in_stamp = False
        if line.startswith("Sources: "):
            sources = re.findall(r"\(sources/([^)]+)\)", line)
            continue
        line = re.sub(r"\]\([^)]*\)", "]", line)  # link targets are paths, not figures
        figures += FIGURE.findall(line)
    return sources, figures


def json_numbers(data: object) -> Iterable[float]:
    if isinstance(data, dict):
        for value in data.values():
            yield from json_numbers(value)
    elif isinstance(data, list):
        for value in data:
            yield from json_numbers(value)
    elif isinstance(data, (int, float)) and not isinstance(data, bool):
        yield float(data)


def found_in(figure: str, sources: list[Path]) -> bool:
    """Whether ``figure`` is written in a text source, or is a JSON source's number at the precision shown."""
    figure = figure.replace("−", "-").lstrip("+")
    decimals = len(figure.split(".")[1]) if "." in figure else 0
    value = float(figure)
    for source in sources:
        text = source.read_text()
        if source.suffix != ".json":
            if figure in {f.replace("−", "-").lstrip("+") for f in FIGURE.findall(text)}:
                return True
            continue
        for number in json_numbers(json.loads(text)):
            if abs(number - value) <= 0.5 * 10**-decimals + 1e-12:
                return True
    return False


def unsourced_figures(page: Path) -> list[str]:
    text = page.read_text()
    if text.split("\n\n", 2)[1].startswith("Not generated"):
        return []
    names, figures = page_figures(text)
    assert names, f"{page}: names no sources"
    sources = [page.parent / "sources" / name for name in names]
    missing = [str(s) for s in sources if not s.exists()]
    assert not missing, f"{page}: cites files that are not there: {missing}"
    readable = [s for s in sources if s.suffix in {".json", ".md", ".csv"}]
    return [f for f in figures if not found_in(f, readable)]


@pytest.mark.parametrize("name", GENERATED)
def test_every_figure_on_a_results_page_is_in_a_file_it_cites(name):
    page = PAGES / name
    assert page.exists(), f"{page}: missing; run `make docs`"
    assert unsourced_figures(page) == []


def test_a_figure_typed_by_hand_is_caught(tmp_path):
    shutil.copytree(PAGES, tmp_path / "results")
    page = tmp_path / "results" / "stages.md"
    if page.read_text().split("\n\n", 2)[1].startswith("Not generated"):
        pytest.skip("this checkout's pages were generated without a run")
    page.write_text(page.read_text() + "\nThe stage gained 0.12345 in a run nobody saved.\n")
    assert unsourced_figures(page) == ["0.12345"]


def without_stamps(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.startswith("    Commit `"))


def test_the_pages_are_what_the_generator_makes_from_their_sources(tmp_path):
    """Regenerate the committed pages from their committed sources: only the stamp may differ."""
    reports = tmp_path / "reports"
    shutil.copytree(PAGES / "sources", reports)
    benchmarks = tmp_path / "benchmarks"
    benchmarks.mkdir()
    for path in reports.glob("*.json"):
        if (
            not path.name.endswith("_report.json")
            and path.name not in {"metrics.json", "summary.json"}
            and not path.name.startswith("ablation")
        ):
            shutil.move(path, benchmarks / path.name)
    out = tmp_path / "pages"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "docs" / "gen_results.py"),
            "--reports",
            str(reports),
            "--benchmarks",
            str(benchmarks),
            "--out",
            str(out),
            "--grid",
            str(tmp_path / "grid.png"),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    for name in GENERATED:
        committed, made = (PAGES / name).read_text(), (out / name).read_text()
        if committed.split("\n\n", 2)[1].startswith("Not generated"):
            assert made.split("\n\n", 2)[1].startswith("Not generated"), name
            continue
        assert without_stamps(made) == without_stamps(committed), f"{name}: not what `make docs` makes"
        assert unsourced_figures(out / name) == []


def test_doctests_render_as_code_in_the_api_reference():
    fence = runpy.run_path(str(ROOT / "docs" / "griffe_doctests.py"))["fence_doctests"]
    text = "Sum.\n\n>>> 1 + 1\n2\n\nDone."
    assert fence(text) == "Sum.\n\n```pycon\n>>> 1 + 1\n2\n```\n\nDone."
    assert fence(">>> x\n1") == "```pycon\n>>> x\n1\n```"
