import numpy as np
import pytest
import torch

from vans_pipelines.models.answer_format import format_answer
from vans_pipelines.models.lora import LoraSpec, adapters_disabled
from vans_pipelines.models.tiny import TinyVLMSpec, build_tiny_vlm
from vans_pipelines.models.vlm import VideoProcessing, VisionLanguageModel, video_inputs


def clips(n=2, frames=16, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (frames, 32, 32, 3), dtype=np.uint8) for _ in range(n)]


def test_video_inputs_follow_qwen_patch_layout():
    """Patch row 0 holds the top-left 8x8 patch of frames 0 and 1, channel-major, normalised."""
    proc = VideoProcessing(patch_size=8, image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0))
    clip = clips(1, frames=4)[0]
    out = video_inputs([clip], proc)
    assert out["video_grid_thw"].tolist() == [[2, 4, 4]]
    first = out["pixel_values_videos"][0].view(3, 2, 8, 8)  # channel, time, row, col
    expected = torch.from_numpy(clip[:2, :8, :8]).permute(3, 0, 1, 2).float() / 255
    torch.testing.assert_close(first, expected)
    # Row 1 is the patch to the right inside the same 2x2 merge window.
    second = out["pixel_values_videos"][1].view(3, 2, 8, 8)
    torch.testing.assert_close(second, torch.from_numpy(clip[:2, :8, 8:16]).permute(3, 0, 1, 2).float() / 255)


def test_video_inputs_equal_the_transformers_qwen_processor_on_still_frames():
    """transformers' own Qwen2-VL image processor (its PIL backend: the video processor needs torchvision)
    turns an image into one temporal patch of ``temporal_patch_size`` copies; a clip of that many copies of
    the image must give the same values and grid through our video path."""
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    proc = VideoProcessing(patch_size=8)
    image = np.random.default_rng(3).integers(0, 255, (32, 48, 3), dtype=np.uint8)
    theirs = Qwen2VLImageProcessorPil(
        patch_size=8,
        temporal_patch_size=2,
        merge_size=2,
        size={"shortest_edge": 16 * 16, "longest_edge": proc.max_pixels},
    )(images=[image], return_tensors="pt")
    ours = video_inputs([np.stack([image, image])], proc)
    assert ours["video_grid_thw"].tolist() == theirs["image_grid_thw"].tolist() == [[1, 4, 6]]
    torch.testing.assert_close(ours["pixel_values_videos"], theirs["pixel_values"], rtol=0, atol=1e-6)


@pytest.mark.parametrize("size", [(32, 32), (45, 70), (100, 33), (352, 640), (720, 1280), (17, 400)])
def test_resized_frame_sizes_are_transformers_smart_resize(size):
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import smart_resize

    from vans_pipelines.models.vlm import _resized

    for proc in (VideoProcessing(), VideoProcessing(patch_size=8, max_pixels=64 * 64)):
        expected = smart_resize(
            *size, factor=proc.factor, min_pixels=proc.factor**2, max_pixels=proc.max_pixels
        )
        assert _resized(*size, proc) == expected


def test_video_patches_are_ordered_as_qwen25_vl_embeds_them():
    """Qwen2.5-VL's vision tower embeds each row with a Conv3d over (time, row, col) patches and expects
    the rows of a merge window to be consecutive: our rows through its ``patch_embed`` must equal that
    Conv3d run over the whole clip, windows gathered in the same order. Frames differ, so the temporal
    order is checked too."""
    from transformers.models.qwen2_5_vl.configuration_qwen2_5_vl import Qwen2_5_VLVisionConfig
    from transformers.models.qwen2_5_vl.modeling_qwen2_5_vl import Qwen2_5_VisionPatchEmbed

    torch.manual_seed(0)
    config = Qwen2_5_VLVisionConfig(patch_size=8, temporal_patch_size=2, hidden_size=16)
    embed = Qwen2_5_VisionPatchEmbed(8, 2, 3, 16).eval()
    proc = VideoProcessing(patch_size=8, image_mean=(0.0, 0.0, 0.0), image_std=(1.0, 1.0, 1.0))
    clip = clips(1, frames=4)[0][:, :32, :32]
    out = video_inputs([clip], proc)
    with torch.no_grad():
        rows = embed(out["pixel_values_videos"])  # [gt * gh * gw, 16]
        video = torch.from_numpy(clip).permute(3, 0, 1, 2).float().unsqueeze(0) / 255  # [1, C, T, H, W]
        grid = embed.proj(video)[0]  # [16, gt, gh, gw]
    gt, gh, gw = out["video_grid_thw"][0].tolist()
    m = config.spatial_merge_size
    expected = grid.view(16, gt, gh // m, m, gw // m, m).permute(1, 2, 4, 3, 5, 0).reshape(-1, 16)
    torch.testing.assert_close(rows, expected, rtol=1e-5, atol=1e-5)


def test_odd_frame_counts_are_padded_with_the_last_frame():
    out = video_inputs(clips(1, frames=5), VideoProcessing(patch_size=8))
    assert out["video_grid_thw"].tolist() == [[3, 4, 4]]


def test_sft_batch_masks_the_prompt(tokenizer):
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    batch = vlm.batch(
        clips(), ["What will happen next?"] * 2, [format_answer("a", "b"), format_answer("a b", "c")]
    )
    n_video = 8 * 4 * 4 // 4
    assert (batch["input_ids"] == vlm.video_token_id).sum(1).tolist() == [n_video, n_video]
    labelled = batch["labels"] != -100
    assert not labelled[batch["input_ids"] == vlm.video_token_id].any()
    assert labelled.sum(1).tolist()[0] < labelled.sum(1).tolist()[1]
    assert vlm.model(**batch).loss.isfinite()


def test_generation_returns_grouped_answers_and_masks(tokenizer):
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    out = vlm.generate(
        clips(), ["What will happen next?"] * 2, max_new_tokens=6, do_sample=True, num_return_sequences=3
    )
    assert len(out.texts) == 6
    assert out.completion_mask.shape == (6, out.sequences.shape[1] - out.prompt_length)


def test_tiny_and_lora_models_load_back_through_the_pretrained_path(tokenizer, tmp_path):
    """The paper config loads a plain checkpoint folder; a tiny model saved with save_pretrained must come
    back through that same path with identical outputs, and so must a LoRA adapter on top of it."""
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    vlm.model.save_pretrained(tmp_path / "plain")  # a checkpoint as released: no project metadata
    tokenizer.save_pretrained(tmp_path / "plain")
    loaded = VisionLanguageModel.from_pretrained(tmp_path / "plain")
    assert loaded.base_path == str(tmp_path / "plain")
    inputs = vlm.batch(clips(), ["What will happen next?"] * 2)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(**inputs).logits, vlm.model(**inputs).logits)

    loaded.add_lora(LoraSpec(rank=4, alpha=8))
    for name, param in loaded.model.named_parameters():
        if "lora_B" in name:
            param.data.normal_(0, 0.5)
    loaded.save_pretrained(tmp_path / "adapted")
    assert not (tmp_path / "adapted" / "model.safetensors").exists()  # adapter only, base referenced
    again = VisionLanguageModel.from_pretrained(tmp_path / "adapted")
    with torch.no_grad():
        adapted = loaded.model(**inputs).logits
        torch.testing.assert_close(again.model(**inputs).logits, adapted)
        assert not torch.allclose(adapted, vlm.model(**inputs).logits)
        with adapters_disabled(again.model):
            torch.testing.assert_close(again.model(**inputs).logits, vlm.model(**inputs).logits)


def test_in_memory_lora_model_saves_its_base(tokenizer, tmp_path):
    vlm = build_tiny_vlm(tokenizer, TinyVLMSpec(), fps=8.0)
    vlm.add_lora(LoraSpec(rank=2, alpha=4))
    vlm.save_pretrained(tmp_path / "m")
    assert (tmp_path / "m" / "base" / "config.json").is_file()
    inputs = vlm.batch(clips(), ["What will happen next?"] * 2)
    with torch.no_grad():
        torch.testing.assert_close(
            VisionLanguageModel.from_pretrained(tmp_path / "m").model(**inputs).logits,
            vlm.model(**inputs).logits,
        )


def test_unknown_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(OSError):
        VisionLanguageModel.from_pretrained(tmp_path / "missing")
