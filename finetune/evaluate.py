"""Evaluating models on a held-out split: retrieval both ways and zero-shot labels.

An `EvalSet` holds what every model is measured on (model-ready pixels, one
caption per item, a zero-shot label set), prepared once; `measure` embeds it
with one model and returns the ten metrics of `finetune.metrics`.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from finetune.data import Example
from finetune.metrics import caption_relevance, model_metrics
from finetune.step import autocast_for
from services.embedder import normalise
from services.iconclass_terms import labels as iconclass_label
from services.iconclass_terms import top_level

Tokenizer = Callable[[list[str]], torch.Tensor]
Metrics = dict[str, float | None]

ICONCLASS_TOPS = tuple(str(digit) for digit in range(10))
DEFAULT_LABEL_TEMPLATE = "Image depicting {label}"


@dataclass(frozen=True)
class LabelSet:
    """Zero-shot classes: their names and the prompt each is embedded as."""

    names: tuple[str, ...]
    prompts: tuple[str, ...]
    field: str


@dataclass(frozen=True)
class EvalSet:
    """Items to measure on: `pixels[i]` shows the item captioned `captions[i]`."""

    ids: tuple[str, ...]
    pixels: torch.Tensor
    captions: tuple[str, ...]
    labels: LabelSet | None = None
    targets: tuple[frozenset[int], ...] = field(default=())

    def __len__(self) -> int:
        return len(self.ids)


def iconclass_label_set(lang: str, template: str = DEFAULT_LABEL_TEMPLATE) -> LabelSet:
    """The ten Iconclass top-level divisions, named in `lang`."""
    names = tuple(iconclass_label(top, lang) or top for top in ICONCLASS_TOPS)
    prompts = tuple(template.format(label=name) for name in names)
    return LabelSet(ICONCLASS_TOPS, prompts, "iconclass")


def given_label_set(
    names: Sequence[str], label_field: str, template: str = DEFAULT_LABEL_TEMPLATE
) -> LabelSet:
    """A label set someone gave, matched against the values of `label_field`."""
    unique = tuple(dict.fromkeys(name.strip() for name in names if name.strip()))
    return LabelSet(unique, tuple(template.format(label=name) for name in unique), label_field)


def targets_for(example: Example, labels: LabelSet) -> frozenset[int]:
    """The classes of `labels` an example belongs to (empty: it is not classified)."""
    if labels.field == "iconclass" and labels.names == ICONCLASS_TOPS:
        tops = {top_level(notation) for notation in example.values("iconclass")}
        return frozenset(labels.names.index(top) for top in tops if top in labels.names)
    wanted = {value.casefold() for value in example.values(labels.field)}
    return frozenset(index for index, name in enumerate(labels.names) if name.casefold() in wanted)


def build_eval_set(
    examples: Sequence[Example], pixels: torch.Tensor, labels: LabelSet | None
) -> EvalSet:
    targets = tuple(targets_for(example, labels) for example in examples) if labels else ()
    return EvalSet(
        ids=tuple(example.id for example in examples),
        pixels=pixels,
        captions=tuple(example.captions[0] for example in examples),
        labels=labels,
        targets=targets,
    )


@torch.no_grad()
def _encode_texts(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    texts: Sequence[str],
    device: torch.device,
    batch_size: int,
) -> np.ndarray:
    chunks = []
    for start in range(0, len(texts), batch_size):
        tokens = tokenizer(list(texts[start : start + batch_size])).to(device)
        with autocast_for(device):
            chunks.append(model.encode_text(tokens))  # type: ignore[operator]
    return normalise(torch.cat(chunks))


@torch.no_grad()
def _encode_images(
    model: torch.nn.Module, pixels: torch.Tensor, device: torch.device, batch_size: int
) -> np.ndarray:
    chunks = []
    for start in range(0, pixels.shape[0], batch_size):
        with autocast_for(device):
            chunks.append(model.encode_image(pixels[start : start + batch_size].to(device)))  # type: ignore[operator]
    return normalise(torch.cat(chunks))


def measure(
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    evalset: EvalSet,
    device: torch.device,
    batch_size: int = 64,
) -> Metrics:
    """The ten metrics of `model` on `evalset` (the model is left in eval mode)."""
    model.eval()
    images = _encode_images(model, evalset.pixels, device, batch_size)
    queries, _, _ = caption_relevance(evalset.captions)
    texts = _encode_texts(model, tokenizer, queries, device, batch_size)
    classes = None
    if evalset.labels is not None and any(evalset.targets):
        classes = _encode_texts(model, tokenizer, evalset.labels.prompts, device, batch_size)
    return model_metrics(
        images,
        texts,
        evalset.captions,
        class_vectors=classes,
        class_targets=[set(target) for target in evalset.targets],
    )
