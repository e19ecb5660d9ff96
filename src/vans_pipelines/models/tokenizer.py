"""A word-level tokenizer the project builds offline from its own captions (the embedded default).

Real checkpoints bring their own tokenizer; the tiny models share this one, trained with Hugging Face
``tokenizers`` on the corpus of questions, reasoning and captions, and saved as a standard
``PreTrainedTokenizerFast`` folder so ``AutoTokenizer.from_pretrained`` loads it back.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import PreTrainedTokenizerFast

#: The answer format of the paper: a reasoning block, then the answer caption.
THINK_OPEN, THINK_CLOSE, ANS_OPEN, ANS_CLOSE = "[Think]", "[/Think]", "[Ans]", "[/Ans]"

#: Qwen2.5-VL's chat and vision markers, so prompts are spelled the same for tiny and real models.
IM_START, IM_END = "<|im_start|>", "<|im_end|>"
VISION_START, VISION_END, VIDEO_PAD, IMAGE_PAD = (
    "<|vision_start|>",
    "<|vision_end|>",
    "<|video_pad|>",
    "<|image_pad|>",
)
PAD, UNK = "<|pad|>", "<|unk|>"

SPECIAL_TOKENS = (PAD, UNK, IM_START, IM_END, VISION_START, VISION_END, VIDEO_PAD, IMAGE_PAD)
ANSWER_MARKERS = (THINK_OPEN, THINK_CLOSE, ANS_OPEN, ANS_CLOSE)
CHAT_ROLES = ("system", "user", "assistant")


def build_word_tokenizer(corpus: Iterable[str], *, min_frequency: int = 1) -> PreTrainedTokenizerFast:
    """Train a lower-cased word-level tokenizer on ``corpus``; markers and chat tokens are single tokens.

    >>> tok = build_word_tokenizer(["The red square falls.", "Paint the blue circle red."])
    >>> tok.decode(tok("the red circle falls.")["input_ids"])
    'the red circle falls.'
    >>> tok.convert_ids_to_tokens(tok("[Think] ok [/Think]")["input_ids"])[0]
    '[Think]'
    """
    model = Tokenizer(models.WordLevel(unk_token=UNK))
    model.normalizer = normalizers.Lowercase()
    model.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation()]
    )
    model.decoder = decoders.Sequence([decoders.WordPiece(prefix="##", cleanup=True)])
    trainer = trainers.WordLevelTrainer(special_tokens=list(SPECIAL_TOKENS), min_frequency=min_frequency)
    model.train_from_iterator([*CHAT_ROLES, *corpus], trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=model,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=IM_END,
        additional_special_tokens=list(SPECIAL_TOKENS[2:]),
    )
    # Markers stay ordinary (non-special) added tokens: decoding keeps them so answers can be parsed.
    tokenizer.add_tokens([AddedToken(m, normalized=False, special=False) for m in ANSWER_MARKERS])
    tokenizer.padding_side = "left"
    return tokenizer
