"""Text embedding without the padding: the same vectors, a fraction of the work.

open_clip's CLIP text tower always runs its full context (77 tokens for
ViT-B-32), although a query like "a lion rampant" is a handful of tokens
followed by padding. Under the causal attention mask no token sees the tokens
after it, and the embedding is read at the end-of-text token (the highest id,
`argmax` pooling), so cutting the sequence just after the last end-of-text
token of the batch changes nothing in the result — and a short query costs
about a tenth of the compute. Models built otherwise (no causal mask, other
pooling, Hugging Face text towers) are encoded the ordinary way.
"""

from typing import Any

import torch
from open_clip.model import CLIP
from open_clip.transformer import text_global_pool


def can_trim(model: torch.nn.Module) -> bool:
    """Whether `model` is a CLIP text tower whose output ignores tokens after end-of-text."""
    return (
        isinstance(model, CLIP) and model.attn_mask is not None and model.text_pool_type == "argmax"
    )


def encode_text(model: Any, tokens: torch.Tensor) -> torch.Tensor:
    """`model.encode_text(tokens)`, computed on the tokens up to the last end-of-text."""
    if not can_trim(model):
        return model.encode_text(tokens)
    assert isinstance(model, CLIP)
    length = int(tokens.argmax(dim=-1).max().item()) + 1
    tokens = tokens[:, :length]
    cast_dtype = model.transformer.get_cast_dtype()
    x = model.token_embedding(tokens).to(cast_dtype)
    x = x + model.positional_embedding[:length].to(cast_dtype)
    x = model.transformer(x, attn_mask=model.attn_mask[:length, :length])
    x = model.ln_final(x)
    x = text_global_pool(x, tokens, model.text_pool_type)
    if isinstance(model.text_projection, torch.nn.Linear):
        return model.text_projection(x)
    if model.text_projection is not None:
        return x @ model.text_projection
    return x
