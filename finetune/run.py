"""`finetune`: a whole fine-tuning run as one call, for the CLI, jobs and scripts.

Data -> split -> contrastive training (checkpointed, resumable) -> WiSE-FT alpha
chosen on validation -> base, fine-tuned and WiSE-FT measured on the test
split -> a new model version in the registry with its card.

Example:
    >>> summary = finetune(services, FinetuneRequest(  # doctest: +SKIP
    ...     version="prints-ft-1", source=DataSource(manifest=Path("prints.csv"))))
"""

import importlib.metadata
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import open_clip
import torch
from open_clip.model import get_model_preprocess_cfg

from finetune.augment import train_transform
from finetune.captions import CaptionConfig
from finetune.cards import curves, health_warnings
from finetune.checkpoint import CHECKPOINT, save_weights
from finetune.evaluate import EvalSet, Metrics, Tokenizer, measure
from finetune.metrics import selection_score
from finetune.pixels import training_images
from finetune.prepare import DataSource, LabelRequest, PreparedData, eval_set, label_set, prepare
from finetune.registry import Registry, check_version
from finetune.splits import SplitConfig, split_counts
from finetune.train import (
    EpochHook,
    EpochRecord,
    PairDataset,
    StepHook,
    TrainConfig,
    Trainer,
    TrainResult,
)
from finetune.version import module_of, publish_version, tidy_run_folder
from finetune.wise import alpha_grid, choose_alpha, interpolate
from ingest.report import ErrorReport
from services.collection_state import utc_now
from services.errors import ConfigError
from services.models import LoadedModel, ModelSpec, load_model
from services.wiring import Services

FINETUNED_WEIGHTS = "finetuned.safetensors"


@dataclass(frozen=True)
class FinetuneRequest:
    """Everything one run needs; `base` None means the configured model."""

    version: str
    source: DataSource
    base: ModelSpec | None = None
    train: TrainConfig = field(default_factory=TrainConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    captions: CaptionConfig = field(default_factory=CaptionConfig)
    labels: LabelRequest = field(default_factory=LabelRequest)
    alpha_step: float = 0.1
    groups: Mapping[str, str] | None = None
    resume: bool = False
    promote: bool = False


@dataclass(frozen=True)
class FinetuneSummary:
    version: str
    folder: Path
    parent: str
    alpha: float
    items: dict[str, int]
    skipped: int
    best_epoch: int
    epochs_run: int
    stopped_early: bool
    metrics: dict[str, dict[str, Metrics]]
    warnings: list[str]
    promoted: bool
    seconds: float
    report: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "folder": str(self.folder),
            "parent": self.parent,
            "alpha": self.alpha,
            "items": self.items,
            "skipped": self.skipped,
            "best_epoch": self.best_epoch,
            "epochs_run": self.epochs_run,
            "stopped_early": self.stopped_early,
            "metrics": self.metrics,
            "warnings": self.warnings,
            "promoted": self.promoted,
            "seconds": self.seconds,
            "report": self.report,
        }


def run_folder(services: Services, version: str) -> Path:
    """Where a version's training state lives (checkpoints, fine-tuned weights, report)."""
    return services.settings.data_dir / "finetune" / version


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {key: value.detach().clone().cpu() for key, value in model.state_dict().items()}


def _fingerprint(request: FinetuneRequest, data: PreparedData, base: ModelSpec) -> dict[str, Any]:
    return {
        "train": request.train.to_json(),
        "split": request.split.__dict__,
        "captions": request.captions.__dict__,
        "data": data.hash,
        "base": [base.name, base.pretrained],
    }


def finetune(
    services: Services,
    request: FinetuneRequest,
    *,
    on_step: StepHook | None = None,
    on_epoch: EpochHook | None = None,
) -> FinetuneSummary:
    """Run one fine-tuning and publish the result as model version `request.version`.

    Raises:
        ConfigError: bad settings, a version that exists, too little data, or
            an interrupted run that needs `resume`.
        SourceError / CollectionNotFoundError / ModelUnavailableError: the data
            or the base model cannot be read.
    """
    started = time.perf_counter()
    registry = Registry(services.settings.registry_path)
    version = check_version(request.version)
    if registry.exists(version):
        raise ConfigError(f"model version {version!r} exists already: choose another --out")
    folder = run_folder(services, version)
    if (folder / CHECKPOINT).is_file() and not request.resume:
        raise ConfigError(
            f"an interrupted run of {version!r} is in {folder}: add --resume to continue it, "
            "or delete that folder to start over"
        )
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "report.jsonl").unlink(missing_ok=True)
    base = request.base or services.model_spec
    with ErrorReport(folder / "report.jsonl") as report:
        data = prepare(
            services, request.source, request.captions, request.split, report, request.groups
        )
        loaded = load_model(base, services.device)
        parts = _evaluation_parts(services, request, data, loaded, report)
        base_state = _state(module_of(loaded))
        result, history = _train(
            services, request, data, loaded, parts["validation"], folder, report, on_step, on_epoch
        )
        skipped = sum(report.counts.values())
    save_weights(result.best_state, folder / FINETUNED_WEIGHTS)
    outcome = _compare(loaded, base_state, result.best_state, parts, request, services.device)
    warnings = health_warnings(
        history,
        outcome["base_score"],
        outcome["finetuned_score"],
        batch_size=request.train.batch_size,
    )
    card = _card(request, base, loaded, data, result, outcome, warnings, skipped)
    published = publish_version(registry, folder, loaded, base, card, history, outcome)
    promoted = False
    if request.promote and not warnings:
        registry.promote(version)
        promoted = True
    tidy_run_folder(folder)
    return FinetuneSummary(
        version=version,
        folder=published,
        parent=loaded.version,
        alpha=outcome["alpha"],
        items=card["data"]["items"],
        skipped=skipped,
        best_epoch=result.best_epoch,
        epochs_run=len(history),
        stopped_early=result.stopped_early,
        metrics=card["metrics"],
        warnings=warnings,
        promoted=promoted,
        seconds=round(time.perf_counter() - started, 2),
        report=str(folder / "report.jsonl") if skipped else None,
    )


def _evaluation_parts(
    services: Services,
    request: FinetuneRequest,
    data: PreparedData,
    loaded: LoadedModel,
    report: ErrorReport,
) -> dict[str, EvalSet]:
    """Validation and test sets with model-ready pixels, decoded once for every model."""
    test = data.part("test")
    labels = label_set(request.labels, test, request.captions.lang)
    return {
        split: eval_set(
            services, data.part(split), loaded.preprocess, loaded.image_size, labels, report
        )
        for split in ("validation", "test")
    }


def _train(
    services: Services,
    request: FinetuneRequest,
    data: PreparedData,
    loaded: LoadedModel,
    validation: EvalSet,
    folder: Path,
    report: ErrorReport,
    on_step: StepHook | None,
    on_epoch: EpochHook | None,
) -> tuple[TrainResult, list[EpochRecord]]:
    examples, images = training_images(
        data.part("train"), services.settings, loaded.image_size, report
    )
    if len(examples) < 2:
        raise ConfigError("fewer than two training images could be read: see the report")
    if len(validation) == 0:
        raise ConfigError("no validation image could be read: see the report")
    tokenizer: Tokenizer = loaded.tokenizer
    preprocess_cfg = get_model_preprocess_cfg(module_of(loaded))
    transform = train_transform(
        request.train.augment,
        loaded.image_size,
        preprocess_cfg.get("mean", (0.48145466, 0.4578275, 0.40821073)),
        preprocess_cfg.get("std", (0.26862954, 0.26130258, 0.27577711)),
    )
    dataset = PairDataset(
        [example.id for example in examples],
        images,
        [tokenizer(list(example.captions)) for example in examples],
        transform,
        request.train.seed,
    )
    base = request.base or services.model_spec
    trainer = Trainer(
        module_of(loaded),
        tokenizer,
        dataset,
        validation,
        request.train,
        services.device,
        folder,
        _fingerprint(request, data, base),
    )
    result = trainer.run(resume=request.resume, on_step=on_step, on_epoch=on_epoch)
    return result, list(result.history)


def _compare(
    loaded: LoadedModel,
    base_state: dict[str, torch.Tensor],
    finetuned_state: dict[str, torch.Tensor],
    parts: dict[str, EvalSet],
    request: FinetuneRequest,
    device: torch.device,
) -> dict[str, Any]:
    """Base, fine-tuned and WiSE-FT metrics; alpha chosen on validation."""
    model, tokenizer, k = module_of(loaded), loaded.tokenizer, request.train.recall_k
    metrics: dict[str, dict[str, Metrics]] = {"validation": {}, "test": {}}

    def measure_state(state: Mapping[str, torch.Tensor], split: str) -> Metrics:
        model.load_state_dict(state)
        return measure(model, tokenizer, parts[split], device)

    for name, state in (("base", base_state), ("finetuned", finetuned_state)):
        for split in ("validation", "test"):
            metrics[split][name] = measure_state(state, split)
    validation_wise: dict[float, Metrics] = {}

    def score_at(alpha: float) -> float:
        validation_wise[alpha] = measure_state(
            interpolate(base_state, finetuned_state, alpha), "validation"
        )
        return selection_score(validation_wise[alpha], k)

    choice = choose_alpha(score_at, alpha_grid(request.alpha_step))
    wise_state = interpolate(base_state, finetuned_state, choice.alpha)
    metrics["validation"]["wise"] = validation_wise[choice.alpha]
    metrics["test"]["wise"] = measure_state(wise_state, "test")
    model.load_state_dict(wise_state)
    return {
        "alpha": choice.alpha,
        "scores": choice.scores,
        "metrics": metrics,
        "base_score": selection_score(metrics["validation"]["base"], k),
        "finetuned_score": selection_score(metrics["validation"]["finetuned"], k),
    }


def _card(
    request: FinetuneRequest,
    base: ModelSpec,
    loaded: LoadedModel,
    data: PreparedData,
    result: TrainResult,
    outcome: dict[str, Any],
    warnings: list[str],
    skipped: int,
) -> dict[str, Any]:
    history = list(result.history)
    return {
        "version": request.version,
        "parent": loaded.version,
        "base_model": {"name": base.name, "pretrained": base.pretrained},
        "created_at": utc_now(),
        "data": {
            "source": request.source.describe(),
            "hash": data.hash,
            "items": split_counts(data.splits),
            "skipped": skipped,
            "mapping": data.mapping,
        },
        "split": dict(request.split.__dict__),
        "captions": dict(request.captions.__dict__),
        "hyperparameters": request.train.to_json(),
        "alpha": outcome["alpha"],
        "alpha_scores": {
            f"{alpha:g}": round(score, 6) for alpha, score in outcome["scores"].items()
        },
        "selection": f"mean of text->image and image->text Recall@{request.train.recall_k} on validation",
        "best_epoch": result.best_epoch,
        "epochs_run": len(history),
        "stopped_early": result.stopped_early,
        "metrics": outcome["metrics"],
        "curves": curves(history, outcome["scores"]),
        "warnings": warnings,
        "software": {
            "open_clip": open_clip.__version__,
            "torch": torch.__version__,
            "vitrine": importlib.metadata.version("vitrine"),
        },
    }
