"""benchmarks/paper_memory.py --smoke (what CI runs of it): every step of the paper recipe estimated on
fake tensors, and the estimate checked against the real peak of the small config on this CPU."""

from tests.benchmarks.conftest import smoke_figures

STEPS = ["sft_vlm", "sft_vdm", "stage1", "stage2", "eval_batch"]


def test_smoke_estimates_every_step_and_agrees_with_the_real_peak(tmp_path):
    figures = smoke_figures("paper_memory.py", tmp_path / "paper_memory.json")
    assert [row["step"] for row in figures["estimates"]] == STEPS
    for row in figures["estimates"]:
        assert row["bytes"] == sum(row["bytes_by_part"].values()) > 0
        assert row["bytes_by_part"]["parameters"] > 0 and row["tflops"] > 0
    # conf/paper's memory settings are named where they apply
    settings = {row["step"]: row["settings"] for row in figures["estimates"]}
    assert settings["sft_vlm"] == ["sft.vlm.trainer: batch_size 4 x accumulate_grad_batches 2"]
    assert settings["stage2"] == ["grpo_vdm.micro_batch_size: 2"]
    checks = {c["step"]: c["ratio"] for c in figures["check"]}
    assert set(checks) == set(STEPS)
    for step in STEPS:  # within 15 % of the allocator's real peak
        assert abs(checks[step] - 1) <= 0.15, (step, checks[step])
