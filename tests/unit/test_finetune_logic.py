"""Splits, captions, schedule, WiSE-FT interpolation, health checks and the registry."""

import json
import math
from pathlib import Path

import pytest
import torch

from finetune.captions import CaptionBuilder, CaptionConfig
from finetune.cards import health_warnings
from finetune.optim import lr_factor
from finetune.registry import Registry, check_version
from finetune.splits import SplitConfig, assign_splits, check_splits, groups_by_field, split_counts
from finetune.train import EpochRecord, epoch_batches
from finetune.wise import alpha_grid, choose_alpha, interpolate
from services.errors import ConfigError, ModelUnavailableError
from tests.support.tiny_model import build_tiny_model


def test_split_is_deterministic_stable_and_near_its_fractions() -> None:
    ids = [f"item-{n}" for n in range(4000)]
    config = SplitConfig(seed=3, validation=0.1, test=0.2)
    first = assign_splits(ids, config)
    assert first == assign_splits(list(reversed(ids)), config)
    counts = split_counts(first)
    assert abs(counts["test"] / 4000 - 0.2) < 0.03 and abs(counts["validation"] / 4000 - 0.1) < 0.03
    grown = assign_splits([*ids, *(f"new-{n}" for n in range(500))], config)
    assert all(grown[record] == split for record, split in first.items())
    assert assign_splits(ids, SplitConfig(seed=4, validation=0.1, test=0.2)) != first


def test_groups_keep_their_items_together() -> None:
    ids = [f"page-{n}" for n in range(300)]
    books = {record: f"book-{n // 10}" for n, record in enumerate(ids)}
    splits = assign_splits(ids, SplitConfig(), books)
    for book in set(books.values()):
        assert len({splits[record] for record in ids if books[record] == book}) == 1
    # The duplicates hook: any record id -> group id mapping, ids left out stand alone.
    clusters = {"page-1": "dup-a", "page-250": "dup-a"}
    assert len({assign_splits(ids, SplitConfig(), clusters)[r] for r in clusters}) == 1
    assert groups_by_field({"a": ("", " x "), "b": ()}) == {"a": "x"}


def test_empty_split_is_explained() -> None:
    with pytest.raises(ConfigError, match="would be empty"):
        check_splits(assign_splits(["only-one"], SplitConfig()))
    with pytest.raises(ConfigError):
        SplitConfig(validation=0.6, test=0.5)


def test_captions_from_caption_column_and_templates_in_a_language() -> None:
    fields = {"caption": ("a lion rampant",), "iconclass": ("25F23(LION)", "31A2748")}
    english = CaptionBuilder(CaptionConfig(per_item=3)).captions("x", fields)
    assert english[0] == "a lion rampant" and len(english) == 3
    assert any(text.startswith("Image depicting") for text in english)
    italian = CaptionBuilder(CaptionConfig(lang="it", use_caption=False)).captions("x", fields)
    assert italian[0].startswith("Immagine che raffigura") and "leone" in italian[0]
    custom = CaptionConfig(templates=("{title}: {aat}",), per_item=2)
    assert CaptionBuilder(custom).captions(
        "y", {"title": ("Krater",), "aat_labels": ("kraters",)}
    ) == ["Krater: kraters"]
    assert CaptionBuilder(CaptionConfig(use_caption=False)).captions("z", {"title": ("T",)}) == []
    with pytest.raises(ConfigError):
        CaptionConfig(templates=("no field here",))


def test_schedule_warms_up_then_decays_to_zero() -> None:
    values = [lr_factor(step, 10, 100) for step in range(101)]
    assert values[9] == 1.0 and values[0] == pytest.approx(0.1)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert values[100] == pytest.approx(0.0)


def test_epoch_batches_are_seeded_and_drop_the_short_last_batch() -> None:
    batches = epoch_batches(50, 16, seed=1, epoch=2)
    assert batches == epoch_batches(50, 16, seed=1, epoch=2) != epoch_batches(50, 16, 1, 3)
    assert [len(batch) for batch in batches] == [16, 16, 16]
    assert epoch_batches(5, 16, 0, 0)[0] and len(epoch_batches(5, 16, 0, 0)) == 1


def test_wise_interpolation_is_exact_at_both_ends() -> None:
    torch.manual_seed(0)
    base = {"w": torch.randn(5, 5), "steps": torch.tensor(3)}
    tuned = {"w": torch.randn(5, 5), "steps": torch.tensor(9)}
    assert torch.equal(interpolate(base, tuned, 0.0)["w"], base["w"])
    assert torch.equal(interpolate(base, tuned, 1.0)["w"], tuned["w"])
    assert torch.allclose(interpolate(base, tuned, 0.5)["w"], (base["w"] + tuned["w"]) / 2)
    assert alpha_grid() == tuple(round(0.1 * n, 6) for n in range(11))
    choice = choose_alpha(lambda alpha: 1 - abs(alpha - 0.3), alpha_grid())
    assert choice.alpha == 0.3 and len(choice.scores) == 11
    assert choose_alpha(lambda alpha: 1.0, (0.0, 0.5, 1.0)).alpha == 0.0


def _record(epoch: int, loss: float) -> EpochRecord:
    return EpochRecord(epoch, loss, {}, 0.0, 1e-5, 100.0)


def test_health_warnings_catch_a_plateau_and_a_worse_model() -> None:
    plateau = [_record(1, 3.77), _record(2, 3.47), _record(3, 3.466)]  # fell only to ln(32)
    assert "loss did not fall" in health_warnings(plateau, 0.1, 0.2, batch_size=32)[0]
    learning = [_record(1, 3.4), _record(2, 2.1), _record(3, 1.2)]
    assert health_warnings(learning, 0.1, 0.2, batch_size=32) == []
    worse = health_warnings(learning, 0.5, 0.4, batch_size=32)
    assert len(worse) == 1 and worse[0].startswith("no better than the base")
    pretrained = [_record(1, 1.5), _record(2, 1.3)]  # below chance from the start
    assert health_warnings(pretrained, 0.1, 0.2, batch_size=64) == []
    assert math.log(32) > 3.46


def test_registry_publish_promote_export(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "models")
    assert registry.versions() == [] and registry.promoted() is None
    staged = build_tiny_model(tmp_path / "staging" / "v1")
    (staged / "model_card.json").write_text(json.dumps({"version": "v1", "created_at": "1"}))
    registry.publish(staged, "v1")
    assert [entry.version for entry in registry.versions()] == ["v1"]
    with pytest.raises(ConfigError, match="exists already"):
        registry.publish(build_tiny_model(tmp_path / "staging" / "again"), "v1")
    registry.promote("v1")
    assert registry.promoted() == "v1" and registry.versions()[0].promoted
    copy = registry.export("v1", tmp_path / "out" / "v1-copy")
    assert (copy / "open_clip_model.safetensors").is_file()
    assert not [path for path in (tmp_path / "out").iterdir() if path.name.startswith(".")]
    with pytest.raises(ConfigError):
        registry.export("v1", copy)
    with pytest.raises(ModelUnavailableError, match="known: v1"):
        registry.folder("v2")
    with pytest.raises(ConfigError):
        check_version("Prints__v1")
