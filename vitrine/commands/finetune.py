"""`vitrine finetune` and `vitrine evaluate`: train a model version, compare it with its base."""

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from finetune.augment import PRESETS
from finetune.captions import CaptionConfig
from finetune.compare import evaluate_version
from finetune.evaluate import Metrics
from finetune.metrics import METRIC_NAMES
from finetune.optim import LockConfig
from finetune.prepare import DataSource, LabelRequest
from finetune.run import FinetuneRequest, FinetuneSummary, finetune, run_folder
from finetune.splits import SplitConfig
from finetune.train import EpochRecord, StepHook, StepReport, TrainConfig
from vitrine.context import err_console, out_console, print_json, services_from

DataFlag = Annotated[
    Path | None, typer.Option("--data", help="Manifest (CSV/TSV/JSONL) or image folder of pairs.")
]
CollectionFlag = Annotated[
    str | None, typer.Option("--collection", "-c", help="Use an ingested collection's items.")
]
MapFlag = Annotated[
    list[str] | None,
    typer.Option("--map", help="FIELD=COLUMN[:SEP] for --data, as in `vitrine ingest`."),
]
MappingFlag = Annotated[
    Path | None, typer.Option("--mapping", help="A TOML/JSON column mapping file for --data.")
]
LabelsFlag = Annotated[
    list[str] | None,
    typer.Option("--labels", help="Zero-shot label (repeatable); matched on --label-field."),
]
LabelFieldFlag = Annotated[
    str | None,
    typer.Option(
        "--label-field",
        help="Field holding each item's zero-shot label (default: Iconclass top-level classes).",
    ),
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")]


def finetune_command(
    ctx: typer.Context,
    out: Annotated[str, typer.Option("--out", help="Name of the new model version.")] = ...,  # type: ignore[assignment]
    data: DataFlag = None,
    collection: CollectionFlag = None,
    map_flags: MapFlag = None,
    mapping_file: MappingFlag = None,
    model: Annotated[
        str | None,
        typer.Option(
            help="Base model: open_clip name, hf-hub:ID, local-dir:PATH (default: configured)."
        ),
    ] = None,
    pretrained: Annotated[
        str | None, typer.Option(help="Pretrained tag for an open_clip name.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the training split.")] = 10,
    lr: Annotated[
        float, typer.Option(help="Peak learning rate (1e-5 suits pretrained CLIP).")
    ] = 1e-5,
    batch_size: Annotated[
        int, typer.Option(min=2, help="Pairs per step (negatives per pair).")
    ] = 64,
    accumulate: Annotated[
        int, typer.Option(min=1, help="Split each batch into N passes (same result, less memory).")
    ] = 1,
    warmup: Annotated[float, typer.Option(help="Warm-up as a fraction of all steps.")] = 0.1,
    weight_decay: Annotated[float, typer.Option(help="AdamW weight decay.")] = 0.1,
    augment: Annotated[str, typer.Option(help=f"Augmentation: {', '.join(PRESETS)}.")] = "light",
    lock_image: Annotated[
        bool, typer.Option("--lock-image", help="Freeze the image tower.")
    ] = False,
    lock_text: Annotated[bool, typer.Option("--lock-text", help="Freeze the text tower.")] = False,
    lock_image_layers: Annotated[
        int, typer.Option(min=0, help="Freeze the image embeddings and first N layers.")
    ] = 0,
    lock_text_layers: Annotated[
        int, typer.Option(min=0, help="Freeze the text embeddings and first N layers.")
    ] = 0,
    patience: Annotated[
        int,
        typer.Option(
            min=0, help="Stop after N epochs without a better validation score (0: never)."
        ),
    ] = 3,
    recall_k: Annotated[int, typer.Option(help="Validation watches Recall@K (1, 5 or 10).")] = 5,
    seed: Annotated[int, typer.Option(help="Seed of split, captions, order and augmentation.")] = 0,
    validation: Annotated[float, typer.Option(help="Share of items for validation.")] = 0.15,
    test: Annotated[float, typer.Option(help="Share of items held out for testing.")] = 0.15,
    group_by: Annotated[
        str | None, typer.Option(help="Keep items with the same value of this field in one split.")
    ] = None,
    lang: Annotated[str, typer.Option(help="Language of Iconclass labels in captions.")] = "en",
    template: Annotated[
        list[str] | None,
        typer.Option(
            "--template", help="Caption template, e.g. 'Image depicting {labels}' (repeatable)."
        ),
    ] = None,
    no_caption: Annotated[
        bool, typer.Option("--no-caption", help="Ignore the caption column: templates only.")
    ] = False,
    captions_per_item: Annotated[
        int, typer.Option(min=1, help="Captions drawn from per item.")
    ] = 3,
    alpha_step: Annotated[float, typer.Option(help="WiSE-FT alpha grid step.")] = 0.1,
    labels: LabelsFlag = None,
    label_field: LabelFieldFlag = None,
    resume: Annotated[bool, typer.Option("--resume", help="Continue an interrupted run.")] = False,
    promote: Annotated[
        bool, typer.Option("--promote", help="Make it the default model if the run is healthy.")
    ] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    workers: Annotated[int, typer.Option(min=0, help="Data-loading processes while training.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Fine-tune a CLIP model on image-caption pairs and save it as a new model version."""
    services = services_from(ctx, model=model, pretrained=pretrained, device=device)
    request = FinetuneRequest(
        version=out,
        source=DataSource(data, collection, tuple(map_flags or ()), mapping_file),
        train=TrainConfig(
            epochs=epochs,
            lr=lr,
            weight_decay=weight_decay,
            batch_size=batch_size,
            accumulate=accumulate,
            warmup=warmup,
            seed=seed,
            augment=augment,
            lock=LockConfig(lock_image, lock_text, lock_image_layers, lock_text_layers),
            patience=patience,
            recall_k=recall_k,
            workers=workers,
        ),
        split=SplitConfig(seed=seed, validation=validation, test=test, group_by=group_by),
        captions=CaptionConfig(
            use_caption=not no_caption,
            templates=tuple(template or ()),
            lang=lang,
            per_item=captions_per_item,
            seed=seed,
        ),
        labels=LabelRequest(tuple(labels or ()), label_field),
        alpha_step=alpha_step,
        resume=resume,
        promote=promote,
    )
    show = sys.stderr.isatty() and not as_json
    try:
        with _training_bar(epochs, show) as (on_step, on_epoch):
            summary = finetune(services, request, on_step=on_step, on_epoch=on_epoch)
    except KeyboardInterrupt:
        err_console.print(
            f"Interrupted. The last finished epoch is saved in {run_folder(services, out)}: "
            "run the same command with --resume to continue."
        )
        raise typer.Exit(130) from None
    finally:
        services.close()
    if as_json:
        print_json(summary.to_json())
    else:
        _print_summary(summary)


@contextmanager
def _training_bar(epochs: int, show: bool) -> Iterator[tuple[StepHook, "EpochPrinter"]]:
    with Progress(
        TextColumn("epoch {task.fields[epoch]}/" + str(epochs)),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]}  {task.fields[rate]} samples/s"),
        TimeElapsedColumn(),
        console=err_console,
        disable=not show,
    ) as bar:
        task = bar.add_task("train", total=None, epoch=1, loss="–", rate="–")

        def on_step(report: StepReport) -> None:
            fields: dict[str, Any] = {
                "epoch": report.epoch + 1,
                "rate": f"{report.samples_per_second:.0f}",
            }
            if report.loss is not None:
                fields["loss"] = f"{report.loss:.3f}"
            bar.update(task, completed=report.step, total=report.steps, **fields)

        yield on_step, EpochPrinter(bar.console if show else None)


class EpochPrinter:
    """One line per finished epoch above the bar (only on a terminal)."""

    def __init__(self, console: object | None) -> None:
        self.console = console

    def __call__(self, record: EpochRecord) -> None:
        if self.console is not None:
            self.console.print(  # type: ignore[attr-defined]
                f"epoch {record.epoch}: loss {record.loss:.3f}, validation score {record.score:.3f}, "
                f"{record.samples_per_second:.0f} samples/s"
            )


def _print_summary(summary: FinetuneSummary) -> None:
    items = summary.items
    out_console.print(
        f"[bold]{summary.version}[/] saved in {summary.folder}: trained on {items['train']} pairs "
        f"({items['validation']} validation, {items['test']} test, {summary.skipped} skipped), "
        f"{summary.epochs_run} epochs (best {summary.best_epoch}"
        + (", stopped early" if summary.stopped_early else "")
        + f"), WiSE-FT alpha {summary.alpha:g}, {summary.seconds:.0f} s"
    )
    out_console.print(metrics_table(summary.metrics["test"], "test split"))
    for warning in summary.warnings:
        err_console.print(f"[bold red]WARNING:[/] {warning}", highlight=False)
    if summary.warnings:
        err_console.print(
            "[bold red]Not promoted:[/] `vitrine models promote` needs --force for this version."
        )
    elif summary.promoted:
        out_console.print("Promoted: new ingests use this version.")
    if summary.report:
        out_console.print(f"Skipped items are listed in {summary.report}")


def metrics_table(columns: Mapping[str, Metrics | None], title: str) -> Table:
    """Metrics as rows, models as columns."""
    table = Table("metric", *columns, title=title)
    for metric in METRIC_NAMES:
        cells = []
        for values in columns.values():
            value = None if values is None else values.get(metric)
            cells.append("–" if value is None else f"{value:.3f}")
        table.add_row(metric, *cells)
    return table


def evaluate_command(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="Model version to evaluate.")] = ...,  # type: ignore[assignment]
    data: DataFlag = None,
    collection: CollectionFlag = None,
    map_flags: MapFlag = None,
    mapping_file: MappingFlag = None,
    labels: LabelsFlag = None,
    label_field: LabelFieldFlag = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Compare base, fine-tuned and WiSE-FT on the held-out test split of the data."""
    services = services_from(ctx, device=device)
    try:
        comparison = evaluate_version(
            services,
            model,
            DataSource(data, collection, tuple(map_flags or ()), mapping_file),
            LabelRequest(tuple(labels or ()), label_field),
            run_folder(services, model) / "evaluate-report.jsonl",
        )
    finally:
        services.close()
    if as_json:
        print_json(comparison.to_json())
        return
    title = f"{comparison.version}: test split, {comparison.items} items (WiSE-FT alpha {comparison.alpha:g})"
    out_console.print(metrics_table(comparison.to_json(), title))
    out_console.print("mrr and ndcg10 are text->image; zs_* is zero-shot classification.")
    for note in comparison.notes:
        err_console.print(f"[yellow]Note:[/] {note}", highlight=False)
