"""The training loop: epochs of contrastive steps, validation, checkpoints, early stopping.

Deterministic for a seed: the batch order and each item's caption are drawn
from (seed, epoch), augmentation from the global RNG whose state every
checkpoint keeps, so a run resumed after an interruption ends exactly where
the uninterrupted run would.
"""

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from finetune.augment import Transform, check_preset
from finetune.checkpoint import (
    load_checkpoint,
    load_weights,
    restore_rng_states,
    rng_states,
    save_checkpoint,
    save_weights,
)
from finetune.evaluate import EvalSet, Metrics, Tokenizer, measure
from finetune.metrics import RECALL_KS, selection_score
from finetune.optim import LockConfig, build_optimizer, build_scheduler, lock_towers
from finetune.splits import unit_hash
from finetune.step import ContrastiveStep
from services.errors import ConfigError


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one run (saved in the model card).

    `warmup` is a fraction of all steps; `patience` epochs without a better
    validation score stop the run (0: never), but not before `min_epochs`
    (default: half the epochs), so a model still on its early loss plateau is
    not stopped before it starts to learn.
    """

    epochs: int = 10
    lr: float = 1e-5
    weight_decay: float = 0.1
    batch_size: int = 64
    accumulate: int = 1
    warmup: float = 0.1
    seed: int = 0
    augment: str = "light"
    lock: LockConfig = field(default_factory=LockConfig)
    patience: int = 3
    min_epochs: int | None = None
    recall_k: int = 5
    workers: int = 0

    def __post_init__(self) -> None:
        check_preset(self.augment)
        if self.epochs < 1 or self.batch_size < 2 or self.accumulate < 1:
            raise ConfigError("epochs must be at least 1, batch size at least 2")
        if self.batch_size % self.accumulate:
            raise ConfigError(
                f"batch size {self.batch_size} must be a multiple of --accumulate {self.accumulate}"
            )
        if not 0 <= self.warmup < 1:
            raise ConfigError("warm-up is a fraction of all steps, from 0 to below 1")
        if self.lr <= 0:
            raise ConfigError("the learning rate must be positive")
        if self.recall_k not in RECALL_KS:
            raise ConfigError(f"early stopping watches Recall@K for K in {RECALL_KS}")

    @property
    def first_stop_epoch(self) -> int:
        return self.min_epochs if self.min_epochs is not None else max(1, self.epochs // 2)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class EpochRecord:
    epoch: int
    loss: float
    validation: Metrics
    score: float
    lr: float
    samples_per_second: float


@dataclass(frozen=True)
class TrainResult:
    best_state: dict[str, torch.Tensor]
    best_epoch: int
    history: tuple[EpochRecord, ...]
    stopped_early: bool


@dataclass(frozen=True)
class StepReport:
    """What a progress bar shows after a step."""

    epoch: int
    step: int
    steps: int
    loss: float | None
    samples_per_second: float


StepHook = Callable[[StepReport], None]
EpochHook = Callable[[EpochRecord], None]


class PairDataset(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """(augmented image, tokens of this epoch's caption) per item."""

    def __init__(
        self,
        ids: Sequence[str],
        images: Sequence[torch.Tensor],
        tokens: Sequence[torch.Tensor],
        transform: Transform,
        seed: int,
    ) -> None:
        self.ids = list(ids)
        self.images = list(images)
        self.tokens = list(tokens)
        self.transform = transform
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.ids)

    def caption_index(self, index: int) -> int:
        count = self.tokens[index].shape[0]
        return int(unit_hash(f"{self.epoch}\x00{self.ids[index]}", self.seed) * count)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[index]), self.tokens[index][self.caption_index(index)]


def epoch_batches(count: int, batch_size: int, seed: int, epoch: int) -> list[list[int]]:
    """This epoch's batches: a seeded permutation, the last short batch dropped."""
    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(count, generator=generator).tolist()
    if count <= batch_size:
        return [order]
    return [
        order[start : start + batch_size] for start in range(0, count - batch_size + 1, batch_size)
    ]


class Trainer:
    """Fine-tunes `model` in place; `run` returns the best epoch's weights."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Tokenizer,
        dataset: PairDataset,
        validation: EvalSet,
        config: TrainConfig,
        device: torch.device,
        run_dir: Path,
        fingerprint: dict[str, Any],
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.dataset = dataset
        self.validation = validation
        self.config = config
        self.device = device
        self.run_dir = run_dir
        self.fingerprint = fingerprint
        lock_towers(model, config.lock)
        self.steps_per_epoch = len(epoch_batches(len(dataset), config.batch_size, 0, 0))
        total = self.steps_per_epoch * config.epochs
        self.optimizer = build_optimizer(model, config.lr, config.weight_decay, device)
        self.scheduler = build_scheduler(self.optimizer, round(config.warmup * total), total)
        self.step = ContrastiveStep(
            model, self.optimizer, self.scheduler, device, config.accumulate
        )
        self.history: list[EpochRecord] = []
        self.best_epoch = 0
        self.best_score = float("-inf")
        self.best_file: str | None = None
        self.bad_epochs = 0
        self.epochs_done = 0
        self.finished = False
        self._stale: str | None = None

    def run(
        self,
        *,
        resume: bool = False,
        on_step: StepHook | None = None,
        on_epoch: EpochHook | None = None,
    ) -> TrainResult:
        """Train to the end (or an early stop), checkpointing every epoch.

        Raises:
            ConfigError: `resume` finds a checkpoint of other settings or data.
        """
        if resume:
            self._restore()
        else:
            torch.manual_seed(self.config.seed)
        while not self.finished and self.epochs_done < self.config.epochs:
            record = self._epoch(self.epochs_done, on_step)
            self.epochs_done += 1
            self._judge(record)
            self._checkpoint()
            if on_epoch is not None:
                on_epoch(record)
        if self.best_file is None:
            raise ConfigError("training ended before its first epoch was done")
        return TrainResult(
            best_state=load_weights(self.run_dir / self.best_file),
            best_epoch=self.best_epoch,
            history=tuple(self.history),
            stopped_early=self.epochs_done < self.config.epochs,
        )

    def _epoch(self, epoch: int, on_step: StepHook | None) -> EpochRecord:
        self.dataset.epoch = epoch
        batches = epoch_batches(len(self.dataset), self.config.batch_size, self.config.seed, epoch)
        loader = DataLoader(
            self.dataset,
            batch_sampler=batches,
            num_workers=self.config.workers,
            pin_memory=self.device.type == "cuda",
        )
        self.model.train()
        total = torch.zeros((), device=self.device)
        samples = 0
        started = time.perf_counter()
        for index, (images, texts) in enumerate(loader, start=1):
            loss = self.step(images, texts)
            total += loss * images.shape[0]
            samples += images.shape[0]
            if on_step is not None:
                rate = samples / max(time.perf_counter() - started, 1e-9)
                shown = float(loss) if index % 10 == 0 or index == len(batches) else None
                on_step(StepReport(epoch, index, len(batches), shown, rate))
        seconds = time.perf_counter() - started
        mean_loss = float(total) / max(samples, 1)
        metrics = measure(self.model, self.tokenizer, self.validation, self.device)
        return EpochRecord(
            epoch=epoch + 1,
            loss=mean_loss,
            validation=metrics,
            score=selection_score(metrics, self.config.recall_k),
            lr=float(self.scheduler.get_last_lr()[0]),
            samples_per_second=samples / max(seconds, 1e-9),
        )

    def _judge(self, record: EpochRecord) -> None:
        """Keep the best weights; stop after `patience` epochs without progress."""
        self.history.append(record)
        if record.score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = record.score, record.epoch, 0
            previous, self.best_file = self.best_file, f"best-epoch{record.epoch}.safetensors"
            save_weights(self.model.state_dict(), self.run_dir / self.best_file)
            self._stale = previous
        else:
            self.bad_epochs += 1
            self._stale = None
        patience = self.config.patience
        if patience and self.epochs_done >= self.config.first_stop_epoch:
            self.finished = self.bad_epochs >= patience

    def _checkpoint(self) -> None:
        save_checkpoint(
            self.run_dir,
            {
                "fingerprint": self.fingerprint,
                "epochs_done": self.epochs_done,
                "finished": self.finished,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "rng": rng_states(),
                "history": [dataclasses.asdict(record) for record in self.history],
                "best": {
                    "epoch": self.best_epoch,
                    "score": self.best_score,
                    "file": self.best_file,
                },
                "bad_epochs": self.bad_epochs,
            },
        )
        if self._stale:  # only once the checkpoint that no longer names it is written
            (self.run_dir / self._stale).unlink(missing_ok=True)

    def _restore(self) -> None:
        state = load_checkpoint(self.run_dir)
        if state is None:
            torch.manual_seed(self.config.seed)
            return
        if state["fingerprint"] != self.fingerprint:
            raise ConfigError(
                f"the interrupted run in {self.run_dir} used other settings or other data, so it "
                "cannot be resumed with these: run with the same flags, or delete that folder "
                "to start over"
            )
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        restore_rng_states(state["rng"])
        self.epochs_done = int(state["epochs_done"])
        self.finished = bool(state["finished"])
        self.history = [EpochRecord(**record) for record in state["history"]]
        best = state["best"]
        self.best_epoch, self.best_score, self.best_file = (
            best["epoch"],
            best["score"],
            best["file"],
        )
        self.bad_epochs = int(state["bad_epochs"])
