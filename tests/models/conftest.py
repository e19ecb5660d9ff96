import pytest

from vans_pipelines.models.tokenizer import build_word_tokenizer
from vans_pipelines.world import all_captions
from vans_pipelines.world.events import Event


@pytest.fixture(scope="session")
def tokenizer():
    corpus = [
        *all_captions(Event("bounce", "red circle", "left")),
        "What will happen next?",
        "Done so far: place.",
    ]
    return build_word_tokenizer(corpus)
