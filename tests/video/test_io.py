import io

import numpy as np
import pytest

from vans_pipelines.video import VideoError, decode_all, decode_resampled, encode_video
from vans_pipelines.video.io import decode_span


def test_lossless_encode_round_trip_is_exact(tmp_path):
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (6, 32, 48, 3), dtype=np.uint8)
    path = tmp_path / "clip.mp4"
    encode_video(frames, str(path), fps=8)
    assert np.array_equal(decode_all(str(path)), frames)


def test_encode_to_a_file_object():
    frames = np.full((4, 16, 16, 3), 90, np.uint8)
    buf = io.BytesIO()
    encode_video(frames, buf, fps=8)
    assert np.array_equal(decode_all(io.BytesIO(buf.getvalue())), frames)


def test_encode_rejects_wrong_layout(tmp_path):
    with pytest.raises(ValueError, match="uint8 frames"):
        encode_video(np.zeros((4, 3, 16, 16), np.uint8), str(tmp_path / "x.mp4"), fps=8)


def test_decode_resampled_fps_size_and_callback(cut_video):
    path, _ = cut_video  # 6 s, 24 fps, 64x48
    seen = []
    video = decode_resampled(
        str(path), fps=8, height=32, width=32, on_frame=lambda i, f, fps: seen.append((i, fps))
    )
    assert video.frames.shape == (48, 32, 32, 3)  # 6 s at 8 fps, centre-cropped square
    assert video.native_frames == 144 and len(seen) == 144
    assert seen[0] == (0, 24.0)
    assert abs(video.duration - 6.0) < 1e-6


def test_decode_resampled_keeps_the_frame_content(cut_video):
    path, _ = cut_video
    video = decode_resampled(str(path), fps=8, height=24, width=32)  # 64x48 scaled by 1/2: no crop
    # first shot is red-ish, last is blue-ish (lossy H.264, so compare channel means)
    first, last = video.frames[2].reshape(-1, 3).mean(0), video.frames[-3].reshape(-1, 3).mean(0)
    assert first[0] > first[2] + 80 and last[2] > last[0] + 80


@pytest.mark.parametrize(
    ("content", "reason"),
    [(b"", "not a readable video"), (b"this is not a video", "not a readable video")],
)
def test_decode_bad_bytes(tmp_path, content, reason):
    path = tmp_path / "bad.mp4"
    path.write_bytes(content)
    with pytest.raises(VideoError, match=reason):
        decode_resampled(str(path), fps=8, height=32, width=32)


def test_decode_truncated_file(cut_video, tmp_path):
    path, _ = cut_video
    data = path.read_bytes()
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(VideoError):
        decode_resampled(str(truncated), fps=8, height=32, width=32)


def test_lossy_encode_drops_an_odd_last_row_and_column(tmp_path):
    """yuv420p needs even sizes: encode_video crops, so every caller may pass any size."""
    frames = np.full((3, 17, 23, 3), 128, np.uint8)
    encode_video(frames, str(tmp_path / "odd.mp4"), fps=8, codec="libx264")
    assert decode_all(str(tmp_path / "odd.mp4")).shape == (3, 16, 22, 3)


@pytest.mark.parametrize(("native_fps", "gop"), [(24, "12"), (10, "5"), (30, "250")])
def test_decode_span_equals_the_resampled_frames_without_decoding_from_the_start(tmp_path, native_fps, gop):
    """Every span of the grid, pixel for pixel, for grids finer and coarser than the file's rate (frames
    repeated or skipped) and keyframes every few frames or one alone; a late span seeks past the rest."""
    frames = np.zeros((120, 48, 64, 3), np.uint8)
    for t in range(120):
        frames[t] = (t * 7) % 256
        frames[t, 10:20, t % 50 : t % 50 + 10] = 255 - (t * 7) % 256
    path = str(tmp_path / "clip.mp4")
    encode_video(frames, path, fps=native_fps, codec="libx264", options={"g": gop})
    for fps in (8.0, 16.0, 7.3):
        whole = decode_resampled(path, fps=fps, height=32, width=32)
        n = len(whole.frames)
        for start in range(0, n - 4, 3):
            span = decode_span(path, fps=fps, height=32, width=32, start=start, stop=min(n, start + 9))
            assert np.array_equal(span.frames, whole.frames[start : start + 9]), (fps, start)
        if gop != "250":
            late = decode_span(path, fps=fps, height=32, width=32, start=n - 4, stop=n)
            assert late.native_frames < whole.native_frames / 3
    with pytest.raises(VideoError, match="before the span"):
        decode_span(path, fps=fps, height=32, width=32, start=n - 2, stop=n + 3)


def test_a_scan_without_frames_counts_the_same_grid(cut_video):
    path, _ = cut_video
    counted = decode_resampled(str(path), fps=8, height=32, width=32, keep_frames=False)
    assert counted.frames.shape == (0, 32, 32, 3) and counted.grid_frames == 48
