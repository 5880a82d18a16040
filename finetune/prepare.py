"""What a fine-tuning run and an evaluation share: examples, their split, evaluation sets.

Both read the same data the same way, so `vitrine evaluate` measures on the
very test split that training never saw.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from PIL import Image

from finetune.captions import CaptionBuilder, CaptionConfig
from finetune.data import Example, collection_examples, data_hash, manifest_examples
from finetune.evaluate import (
    EvalSet,
    LabelSet,
    build_eval_set,
    given_label_set,
    iconclass_label_set,
)
from finetune.pixels import evaluation_images
from finetune.splits import Split, SplitConfig, assign_splits, check_splits, groups_by_field
from ingest.mapping import ColumnMapping, load_mapping_file, merge, parse_map_flags
from ingest.report import ErrorReport
from services.errors import ConfigError
from services.wiring import Services


@dataclass(frozen=True)
class DataSource:
    """Where pairs come from: a manifest (with its column mapping) or a collection."""

    manifest: Path | None = None
    collection: str | None = None
    map_flags: tuple[str, ...] = ()
    mapping_file: Path | None = None

    def __post_init__(self) -> None:
        if (self.manifest is None) == (self.collection is None):
            raise ConfigError(
                "give the training data either as --data MANIFEST or --collection NAME"
            )

    def describe(self) -> str:
        return str(self.manifest) if self.manifest else f"collection {self.collection}"

    def mapping(self, remembered: Mapping[str, Any] | None = None) -> ColumnMapping:
        mapping = ColumnMapping.model_validate(remembered) if remembered else ColumnMapping()
        if self.mapping_file is not None:
            mapping = merge(mapping, load_mapping_file(self.mapping_file))
        if self.map_flags:
            mapping = merge(mapping, parse_map_flags(list(self.map_flags)))
        return mapping


@dataclass(frozen=True)
class LabelRequest:
    """Zero-shot labels: given names matched on `field`, or Iconclass top-level classes."""

    names: tuple[str, ...] = ()
    field: str | None = None


@dataclass(frozen=True)
class PreparedData:
    examples: tuple[Example, ...]
    splits: Mapping[str, Split]
    hash: str
    mapping: dict[str, Any] = field(default_factory=dict)

    def part(self, split: Split) -> list[Example]:
        return [example for example in self.examples if self.splits[example.id] == split]


def load_examples(
    services: Services, source: DataSource, captions: CaptionConfig, report: ErrorReport
) -> tuple[list[Example], dict[str, Any]]:
    """The examples of a source and the column mapping they were read with."""
    builder = CaptionBuilder(captions)
    if source.manifest is not None:
        mapping = source.mapping()
        return manifest_examples(source.manifest, mapping, builder, report), mapping.model_dump()
    assert source.collection is not None
    state = services.states.load(source.collection)
    examples = collection_examples(
        services.store, source.collection, state.source if state else None, builder, report
    )
    return examples, dict(state.mapping) if state else {}


def prepare(
    services: Services,
    source: DataSource,
    captions: CaptionConfig,
    split: SplitConfig,
    report: ErrorReport,
    groups: Mapping[str, str] | None = None,
) -> PreparedData:
    """Read, caption and split the examples.

    Args:
        groups: record id -> group id from another tool (near-duplicate
            clusters); overrides `split.group_by` for the ids it names.
    """
    examples, mapping = load_examples(services, source, captions, report)
    if not examples:
        raise ConfigError(
            f"no usable image-caption pairs in {source.describe()}: see {report.path}"
        )
    merged: dict[str, str] = {}
    if split.group_by:
        merged = groups_by_field(
            {example.id: example.values(split.group_by) for example in examples}
        )
    merged.update(groups or {})
    splits = assign_splits([example.id for example in examples], split, merged)
    check_splits(splits)
    return PreparedData(tuple(examples), splits, data_hash(examples), mapping)


def label_set(request: LabelRequest, examples: Sequence[Example], lang: str) -> LabelSet:
    """The zero-shot classes: given names, the values of a field, or Iconclass top levels."""
    if request.field:
        names = request.names or tuple(
            sorted({value for example in examples for value in example.values(request.field)})
        )
        return given_label_set(names, request.field)
    if request.names:
        raise ConfigError(
            "--labels needs --label-field: which metadata field holds each item's label"
        )
    return iconclass_label_set(lang)


def eval_set(
    services: Services,
    examples: Sequence[Example],
    preprocess: Callable[[Image.Image], torch.Tensor],
    size: int,
    labels: LabelSet | None,
    report: ErrorReport,
) -> EvalSet:
    kept, pixels = evaluation_images(examples, services.settings, preprocess, size, report)
    return build_eval_set(kept, pixels, labels)
