import numpy as np
import pandas as pd
import pytest

from vans_pipelines.triplets import TripletSet

ROW = {
    "sample_id": "a",
    "split": "train",
    "family": "predictive",
    "question": "What happens next?",
    "source": "x",
}
CLIP = np.zeros((2, 4, 4, 3), np.uint8)


def test_from_arrays_keeps_rows_clips_and_extra_columns():
    s = TripletSet.from_arrays([{**ROW, "caption": None, "crosses_cut": True}], [(CLIP, CLIP + 1)])
    t = s[0]
    assert len(s) == 1 and t.caption is None and t.extra == {"crosses_cut": True}
    assert t.target.max() == 1 and next(iter(s)).sample_id == "a"


def test_rejects_missing_columns_duplicates_mismatches_and_bad_clips():
    with pytest.raises(ValueError, match="lacks required column"):
        TripletSet(pd.DataFrame([{"sample_id": "a"}]), lambda _: (CLIP, CLIP))
    with pytest.raises(ValueError, match="duplicate sample_id"):
        TripletSet.from_arrays([{**ROW, "caption": "c"}] * 2, [(CLIP, CLIP)] * 2)
    with pytest.raises(ValueError, match="1 index rows but 2 clip pairs"):
        TripletSet.from_arrays([{**ROW, "caption": "c"}], [(CLIP, CLIP)] * 2)
    with pytest.raises(ValueError, match="a target: expected a uint8"):
        TripletSet.from_arrays([{**ROW, "caption": "c"}], [(CLIP, CLIP.astype(float))])
