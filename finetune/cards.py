"""Model cards: what a version is, where it came from, how it scored, what went wrong.

`model_card.json` is for tools (the UI, `vitrine models show`), `README.md`
for people and hubs; the curves are PNGs beside them.
"""

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from finetune.metrics import METRIC_NAMES
from finetune.plots import line_chart
from finetune.train import EpochRecord

PLOTS = {"loss": "loss.png", "validation": "validation.png", "wise": "wise.png"}
HEALTH_CHECKS = ("loss did not fall", "no better than the base")


def health_warnings(
    history: Sequence[EpochRecord],
    base_score: float,
    finetuned_score: float,
    *,
    batch_size: int,
    min_drop: float = 0.05,
) -> list[str]:
    """Loud warnings for a run that did not learn, or learned nothing useful.

    The loss counts as fallen when its lowest epoch mean is at least `min_drop`
    (5 %) below both the first epoch's and chance level, ln(batch size): the
    loss of a model whose embeddings all look alike. A randomly initialised
    model first falls *to* chance level (its plateau), which is not learning.
    """
    found = []
    losses = [record.loss for record in history]
    reference = min(losses[0], math.log(batch_size)) if losses else 0.0
    if len(losses) < 2 or min(losses[1:]) > (1 - min_drop) * reference:
        found.append(
            "loss did not fall: the training loss stayed at "
            f"{losses[0]:.3f} -> {losses[-1]:.3f} (chance level {math.log(batch_size):.3f}). The model may still be on its early plateau "
            "(train longer: --epochs) or the learning rate does not suit it (try --lr ten times "
            "higher or lower); check that captions describe their images."
        )
    if finetuned_score <= base_score:
        found.append(
            "no better than the base: on validation the fine-tuned model scores "
            f"{finetuned_score:.3f}, the base {base_score:.3f}. The new version keeps as much of "
            "the base as WiSE-FT chose; do not promote it without looking at the metrics."
        )
    return found


def curves(
    history: Sequence[EpochRecord], wise_scores: Mapping[float, float]
) -> dict[str, list[float]]:
    """Number series for the card (the UI charts them)."""
    return {
        "train loss": [round(record.loss, 6) for record in history],
        "validation score": [round(record.score, 6) for record in history],
        "wise validation score": [round(score, 6) for _, score in sorted(wise_scores.items())],
    }


def write_plots(
    folder: Path,
    history: Sequence[EpochRecord],
    base_score: float,
    wise_scores: Mapping[float, float],
    recall_k: int,
) -> list[str]:
    """Loss, validation and WiSE-FT charts as PNGs in `folder`; returns their file names."""
    line_chart(
        {"training loss": [(record.epoch, record.loss) for record in history]},
        "Training loss (symmetric InfoNCE) per epoch",
        "epoch",
        folder / PLOTS["loss"],
    )
    line_chart(
        {
            f"validation Recall@{recall_k} (mean of both directions)": [(0, base_score)]
            + [(record.epoch, record.score) for record in history]
        },
        "Validation score per epoch (epoch 0: the base model)",
        "epoch",
        folder / PLOTS["validation"],
    )
    line_chart(
        {"validation score": sorted(wise_scores.items())},
        "WiSE-FT: validation score by alpha (0 = base, 1 = fine-tuned)",
        "alpha",
        folder / PLOTS["wise"],
    )
    return list(PLOTS.values())


def metrics_table(columns: Mapping[str, Mapping[str, float | None]]) -> str:
    """A Markdown table: one row per metric, one column per model."""
    names = list(columns)
    lines = ["| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for metric in METRIC_NAMES:
        cells = [_cell(columns[name].get(metric)) for name in names]
        lines.append(f"| {metric} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _cell(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def readme(card: Mapping[str, Any]) -> str:
    """The human-readable card (README.md, as a hub shows it)."""
    warnings = card.get("warnings") or []
    test = card.get("metrics", {}).get("test", {})
    lines = [
        f"# {card['version']}",
        "",
        f"Fine-tuned with vitrine from `{card['parent']}` on {card['data']['items']['train']} "
        f"image-caption pairs ({card['data']['source']}); WiSE-FT alpha {card['alpha']}.",
        "",
        "Load with `open_clip.create_model_and_transforms('local-dir:<this folder>')`.",
        "",
    ]
    if warnings:
        lines += ["## Warnings", "", *[f"- **{warning}**" for warning in warnings], ""]
    if test:
        lines += ["## Test split", "", metrics_table(test), ""]
    lines += [f"![{name}]({name})" for name in card.get("plots", [])]
    return "\n".join(lines) + "\n"
