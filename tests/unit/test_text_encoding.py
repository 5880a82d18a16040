"""Trimming the padding from text queries gives the vectors of the full context."""

import open_clip
import pytest
import torch
from open_clip.model import CLIP

from services.text_encoding import can_trim, encode_text
from tests.support.tiny_model import TINY_CFG

TEXTS = [
    "a lion",
    "a lion rampant holding a sword in its right paw, crowned, on a shield",
    "une vue de la ville de Leyde avec ses moulins",
    "",
]


@pytest.fixture(scope="module")
def model() -> CLIP:
    torch.manual_seed(0)
    return CLIP(**TINY_CFG).eval()


def test_trimmed_vectors_equal_the_full_context(model: CLIP) -> None:
    tokens = open_clip.get_tokenizer("ViT-B-32")(TEXTS)
    with torch.inference_mode():
        full, trimmed = model.encode_text(tokens), encode_text(model, tokens)
    assert can_trim(model)
    assert torch.allclose(full, trimmed, atol=1e-5)


def test_each_text_alone_equals_its_row_in_a_batch(model: CLIP) -> None:
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    with torch.inference_mode():
        batch = encode_text(model, tokenizer(TEXTS))
        alone = torch.cat([encode_text(model, tokenizer([text])) for text in TEXTS])
    assert torch.allclose(batch, alone, atol=1e-5)


def test_a_tower_without_a_causal_mask_is_encoded_in_full() -> None:
    config = {**TINY_CFG, "text_cfg": {**TINY_CFG["text_cfg"], "pool_type": "last"}}
    model = CLIP(**config).eval()
    tokens = open_clip.get_tokenizer("ViT-B-32")(TEXTS)
    assert not can_trim(model)
    with torch.inference_mode():
        assert torch.equal(encode_text(model, tokens), model.encode_text(tokens))
