"""benchmarks/ingest_scale.py --smoke (what CI runs of it): every way of ingesting runs and is timed, and
span triplets store and read back what the issue asks for."""

from tests.benchmarks.conftest import smoke_figures


def test_smoke_ingests_both_formats_and_reads_them_back(tmp_path):
    figures = smoke_figures("ingest_scale.py", tmp_path / "ingest_scale.json")
    throughput = figures["throughput"]
    assert figures["smoke"] is True and throughput["triplets"] > 0
    assert set(throughput["ways"]) == {"decode", "ingest scan", "spans, 1 worker", "npz clips, 1 worker"}
    stored = throughput["stored"]
    assert stored["span_mib_per_1000"] < stored["npz_mib_per_1000"] / 100  # an index, not pixels
    readers = throughput["readers"]
    assert readers["span_triplets_per_s"] > 0 and readers["npz_triplets_per_s"] > 0
    assert 50 < readers["sft_vdm_tflop_per_sample"] < 200  # Wan2.1-1.3B on one 33 x 352 x 640 clip
    assert {row["format"] for row in figures["memory"]} == {"npz", "span"}
