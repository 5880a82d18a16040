"""`evaluate_version`: base, fine-tuned and WiSE-FT side by side on the held-out test split.

The split, captions and base model are read from the version's card, so the
test split is the one training never saw (items added to the data since are
split by the same rule, and never were trained on either).
"""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from finetune.captions import CaptionConfig
from finetune.checkpoint import load_weights
from finetune.evaluate import EvalSet, Metrics, Tokenizer, measure
from finetune.prepare import DataSource, LabelRequest, eval_set, label_set, prepare
from finetune.registry import Registry
from finetune.run import FINETUNED_WEIGHTS, run_folder
from finetune.splits import SplitConfig
from finetune.version import module_of
from ingest.report import ErrorReport
from services.errors import ConfigError
from services.models import LOCAL_DIR, ModelSpec, load_model
from services.wiring import Services


@dataclass(frozen=True)
class Comparison:
    """Test metrics per model (`finetuned` None when its weights are not on this machine)."""

    version: str
    alpha: float
    items: int
    base: Metrics
    finetuned: Metrics | None
    wise: Metrics
    notes: tuple[str, ...]

    def to_json(self) -> dict[str, Metrics | None]:
        return {"base": self.base, "finetuned": self.finetuned, "wise": self.wise}


def evaluate_version(
    services: Services,
    version: str,
    source: DataSource,
    labels: LabelRequest,
    report_path: Path,
) -> Comparison:
    """Measure a version, its base and its pure fine-tuned weights on the test split.

    Raises:
        ModelUnavailableError: no such version, or its base cannot be loaded.
        ConfigError: the card lacks what evaluation needs, or the test split is empty.
    """
    registry = Registry(services.settings.registry_path)
    folder = registry.folder(version)
    card = registry.card(version)
    try:
        split = SplitConfig(**card["split"])
        captions = CaptionConfig(
            **{**card["captions"], "templates": tuple(card["captions"]["templates"])}
        )
        base_entry = card["base_model"]
    except (KeyError, TypeError) as error:
        raise ConfigError(
            f"the card of {version!r} lacks {error}: only versions made by `vitrine finetune` "
            "can be evaluated against their base"
        ) from error
    notes: list[str] = []
    device = services.device
    wise = load_model(ModelSpec(f"{LOCAL_DIR}{folder}"), device)
    with ErrorReport(report_path) as report:
        data = prepare(services, source, captions, split, report)
        test = data.part("test")
        evalset = eval_set(
            services,
            test,
            wise.preprocess,
            wise.image_size,
            label_set(labels, test, captions.lang),
            report,
        )
    if len(evalset) == 0:
        raise ConfigError(f"no test item of {source.describe()} could be read: see {report_path}")
    if data.hash != card.get("data", {}).get("hash"):
        notes.append(
            "the data differs from what this version was trained on; the split rule is the "
            "same, so test items were still never trained on"
        )
    wise_metrics = measure(module_of(wise), wise.tokenizer, evalset, device)
    finetuned_metrics = _finetuned(
        services, version, card, module_of(wise), wise.tokenizer, evalset, device, notes
    )
    base = load_model(ModelSpec(base_entry["name"], base_entry.get("pretrained")), device)
    base_metrics = measure(module_of(base), base.tokenizer, evalset, device)
    return Comparison(
        version=version,
        alpha=float(card.get("alpha", 1.0)),
        items=len(evalset),
        base=base_metrics,
        finetuned=finetuned_metrics,
        wise=wise_metrics,
        notes=tuple(notes),
    )


def _finetuned(
    services: Services,
    version: str,
    card: dict[str, Any],
    model: torch.nn.Module,
    tokenizer: Tokenizer,
    evalset: EvalSet,
    device: torch.device,
    notes: list[str],
) -> Metrics | None:
    weights = run_folder(services, version) / FINETUNED_WEIGHTS
    if not weights.is_file():
        if float(card.get("alpha", 1.0)) == 1.0:
            return measure(model, tokenizer, evalset, device)
        notes.append(
            f"the fine-tuned weights ({weights}) are not on this machine: only base and "
            "WiSE-FT are compared"
        )
        return None
    wise_state = {key: value.clone() for key, value in model.state_dict().items()}
    model.load_state_dict(load_weights(weights))
    try:
        return measure(model, tokenizer, evalset, device)
    finally:
        model.load_state_dict(wise_state)
