"""`vitrine duplicates` and `vitrine evaluate-duplicates`: near-duplicate images in a collection."""

import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from services.atomic import write_text_atomic
from services.duplicate_evaluation import Calibration, Evaluation, calibrate, evaluate
from services.duplicate_export import clusters_csv
from services.duplicate_pairs import read_pairs
from services.duplicates import (
    DEFAULT_THRESHOLD,
    DuplicateCluster,
    find_clusters,
    oversized_cluster,
)
from services.neighbours import DEFAULT_NEIGHBOURS
from vitrine.context import err_console, out_console, print_json, services_from

Collection = Annotated[str, typer.Option("--collection", "-c", help="Collection to look in.")]
THRESHOLD_HELP = "Image similarity (cosine) from which two items count as near-duplicates."
Threshold = Annotated[
    float | None,
    typer.Option(
        min=-1.0,
        max=1.0,
        help=f"{THRESHOLD_HELP} Default: the one --calibrate finds, else {DEFAULT_THRESHOLD}.",
    ),
]
EvaluationThreshold = Annotated[
    float | None,
    typer.Option(
        min=-1.0,
        max=1.0,
        help=f"{THRESHOLD_HELP} Default: the best F1 on the same pairs (optimistic).",
    ),
]
NeighboursOption = Annotated[
    int, typer.Option("--neighbours", min=1, help="Nearest items searched per item.")
]
IncludeUnchecked = Annotated[
    bool,
    typer.Option(
        "--include-unchecked",
        help="Count pairs with an empty visually_checked_same_design as duplicates.",
    ),
]
Seed = Annotated[int, typer.Option(help="Seed for drawing non-duplicate pairs.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def duplicates_command(
    ctx: typer.Context,
    collection: Collection,
    threshold: Threshold = None,
    neighbours: NeighboursOption = DEFAULT_NEIGHBOURS,
    pairs_file: Annotated[
        Path | None,
        typer.Option(
            "--calibrate",
            help="Labelled pairs (id_a,id_b,label) to choose the threshold with the best F1.",
        ),
    ] = None,
    include_unchecked: IncludeUnchecked = False,
    seed: Seed = 0,
    csv_path: Annotated[
        Path | None, typer.Option("--csv", help="Also write the clusters to this CSV file.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Find clusters of near-duplicate images across a whole collection."""
    pair_file = read_pairs(pairs_file, include_unchecked=include_unchecked) if pairs_file else None
    with closing(services_from(ctx)) as services:
        calibration = (
            calibrate(services.store, collection, pair_file, seed=seed) if pair_file else None
        )
        if threshold is None:
            threshold = calibration.best.threshold if calibration else DEFAULT_THRESHOLD
        items = services.store.info(collection).points
        with _progress_bar(items, quiet=as_json) as advance:
            clusters = find_clusters(
                services.store,
                collection,
                threshold=threshold,
                neighbours=neighbours,
                progress=advance,
            )
    if csv_path is not None:
        write_text_atomic(csv_path, clusters_csv(clusters))
    if as_json:
        print_json(
            {
                "collection": collection,
                "items": items,
                "threshold": threshold,
                "neighbours": neighbours,
                "calibration": calibration.to_json() if calibration else None,
                "clusters": [cluster.to_json() for cluster in clusters],
            }
        )
        return
    if calibration:
        _print_calibration(calibration)
    _print_clusters(clusters, threshold, items)
    if csv_path is not None:
        out_console.print(f"Clusters written to {csv_path}")


def evaluate_duplicates_command(
    ctx: typer.Context,
    collection: Collection,
    pairs_file: Annotated[
        Path,
        typer.Option(
            "--pairs", help="Labelled pairs: id_a,id_b,label, or image_a,image_b,... candidates."
        ),
    ],
    threshold: EvaluationThreshold = None,
    neighbours: NeighboursOption = DEFAULT_NEIGHBOURS,
    include_unchecked: IncludeUnchecked = False,
    seed: Seed = 0,
    as_json: JsonFlag = False,
) -> None:
    """Measure how well each labelled item's nearest neighbours find its labelled duplicates."""
    pair_file = read_pairs(pairs_file, include_unchecked=include_unchecked)
    with closing(services_from(ctx)) as services:
        result = evaluate(
            services.store,
            collection,
            pair_file,
            threshold=threshold,
            neighbours=neighbours,
            seed=seed,
        )
    if as_json:
        print_json(result.to_json())
        return
    _print_evaluation(result)


@contextmanager
def _progress_bar(total: int, *, quiet: bool) -> Iterator[Callable[[int], None]]:
    """An items counter on stderr when it is a terminal."""
    with Progress(
        TextColumn("duplicates"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        disable=quiet or not sys.stderr.isatty(),
    ) as bar:
        task = bar.add_task("duplicates", total=total)
        yield lambda count: bar.advance(task, count)


def _note(text: str) -> None:
    err_console.print(f"[yellow]Note:[/] {text}", highlight=False)


def _calibration_notes(calibration: Calibration) -> None:
    if calibration.negatives_sampled:
        _note(
            f"The pairs file lists no non-duplicates: {calibration.negatives_sampled} random "
            f"pairs it does not list (seed {calibration.seed}) serve as non-duplicates."
        )
    if calibration.unchecked:
        _note(
            f"{calibration.unchecked} pairs nobody checked by eye were left out "
            "(--include-unchecked counts them as duplicates)."
        )
    if calibration.missing:
        _note(
            f"{len(calibration.missing)} ids are not in the collection; their pairs were "
            f"left out: {', '.join(calibration.missing[:10])}"
        )


def _print_calibration(calibration: Calibration) -> None:
    _calibration_notes(calibration)
    table = Table("threshold", "precision", "recall", "F1", "", title="Labelled pairs")
    for point in calibration.table():
        mark = "best F1" if point == calibration.best else ""
        table.add_row(
            f"{point.threshold:.4f}",
            f"{point.precision:.3f}",
            f"{point.recall:.3f}",
            f"{point.f1:.3f}",
            mark,
        )
    out_console.print(table)
    out_console.print(
        f"{calibration.positives} duplicate and {calibration.negatives} non-duplicate pairs; "
        f"best F1 {calibration.best.f1:.3f} at threshold {calibration.best.threshold:.4f}"
    )


def _print_clusters(clusters: list[DuplicateCluster], threshold: float, items: int) -> None:
    if not clusters:
        out_console.print(f"No near-duplicates at threshold {threshold:.4f} among {items} items.")
        return
    table = Table("cluster", "id", "score", "title")
    for cluster in clusters:
        for index, member in enumerate(cluster.members):
            label = f"{cluster.id} ({cluster.size})" if index == 0 else ""
            table.add_row(label, member.id, f"{member.score:.4f}", member.title[:60])
    out_console.print(table)
    clustered = sum(cluster.size for cluster in clusters)
    out_console.print(
        f"{len(clusters)} clusters holding {clustered} of {items} items at threshold "
        f"{threshold:.4f}"
    )
    oversized = oversized_cluster(clusters, items)
    if oversized is not None:
        _note(
            f"cluster {oversized.id} holds {oversized.size} of {items} items: the threshold "
            "is too low for this model. Raise --threshold, or calibrate it with --calibrate."
        )


def _print_evaluation(result: Evaluation) -> None:
    if result.calibration:
        _calibration_notes(result.calibration)
        _note(
            "No --threshold given: the one calibrated on these same pairs is used, which "
            "flatters precision, recall and F1 (top-1, top-5 and nDCG do not depend on it)."
        )
    elif result.unchecked:
        _note(f"{result.unchecked} pairs nobody checked by eye were left out.")
    scores = result.scores
    table = Table("measure", "value")
    for name, value in (
        ("precision", scores.precision),
        ("recall", scores.recall),
        ("F1", scores.f1),
        ("top-1 accuracy", scores.top1),
        ("top-5 accuracy", scores.top5),
        (f"nDCG@{scores.depth}", scores.ndcg),
    ):
        table.add_row(name, f"{value:.3f}")
    out_console.print(table)
    out_console.print(
        f"{scores.queries} items with labelled duplicates, threshold {scores.threshold:.4f} "
        f"({result.threshold_source}), {scores.depth} neighbours each"
    )
