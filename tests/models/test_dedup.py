from vans_pipelines.models.dedup import first_occurrences


def test_first_occurrences_index_each_key_by_its_first_position():
    rows, index = first_occurrences(["b", "a", "b", "c", "a"])
    assert rows == [0, 1, 3] and index.tolist() == [0, 1, 0, 2, 1]
    assert [["b", "a", "b", "c", "a"][rows[i]] for i in index] == ["b", "a", "b", "c", "a"]
