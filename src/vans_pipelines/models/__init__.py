"""Models: the Qwen2.5-VL VLM, the Wan2.1-style VDM, the video-text scorer, LoRA and the tokenizer.

Library code: nothing here knows about Kedro.
"""

from transformers.utils import logging as _hf_logging

# Tiny checkpoints load in milliseconds; per-shard progress bars would only clutter pipeline logs.
_hf_logging.disable_progress_bar()
