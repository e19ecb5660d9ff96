"""benchmarks/vdm_scaling.py --smoke on a tiny finished project: one curve point per layout, trained from
scratch and read back by the oracle, sampled at each guidance scale."""

import json

import pytest

from tests.benchmarks.conftest import run_benchmark


@pytest.mark.slow
def test_one_curve_point_per_layout_trains_the_transformer_and_reads_val_with_the_oracle(
    finished_run, tmp_path
):
    out = tmp_path / "rows.json"
    done = run_benchmark(
        "vdm_scaling",
        "--project",
        str(finished_run),
        "--smoke",
        "--layouts",
        "default,width128",
        "--guidance",
        "1,2",
        "--json",
        str(out),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    rows = json.loads(out.read_text())["figures"]["rows"]
    by_layout = {layout: [r for r in rows if r["layout"] == layout] for layout in ("default", "width128")}
    for pair in by_layout.values():
        assert [row["guidance"] for row in pair] == [1.0, 2.0]  # one trained model, sampled at each scale
        assert pair[0]["train_flow_loss"] == pair[1]["train_flow_loss"]
        for row in pair:
            assert row["steps"] == 2 and row["samples"] == 2 and 0 <= row["oracle_event_accuracy"] <= 1
            assert row["train_flow_loss"] > 0 and row["pixel_mse"] > 0
    assert by_layout["default"][0]["parameters"] > by_layout["width128"][0]["parameters"]  # width 256


def test_an_unknown_layout_is_named(finished_run):
    done = run_benchmark("vdm_scaling", "--project", str(finished_run), "--smoke", "--layouts", "huge")
    assert done.returncode != 0 and "--layouts: unknown layout 'huge'" in done.stderr
