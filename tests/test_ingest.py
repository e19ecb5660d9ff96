from vans_pipelines.ingest import assign_splits


def test_assign_splits_is_deterministic_and_disjoint():
    paths = [f"v{i}.mp4" for i in range(20)]
    a = assign_splits(paths, 0.1, 0.2, seed=0)
    assert a == assign_splits(list(reversed(paths)), 0.1, 0.2, seed=0)
    counts = {s: sum(v == s for v in a.values()) for s in ("train", "val", "test")}
    assert counts == {"train": 14, "val": 2, "test": 4}
    assert set(assign_splits(paths[:3], 0.1, 0.1, seed=0).values()) == {"train", "val", "test"}
    assert set(assign_splits(paths[:1], 0.1, 0.1, seed=0).values()) == {"train"}
