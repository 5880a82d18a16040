"""Near-duplicate clusters as CSV: one row per member, or one row per pair.

The member rows are what `vitrine duplicates --csv` writes; the pair rows list
each pair at or above the threshold with both titles, for checking by eye or
labelling as calibration pairs.
"""

import csv
import io
from collections.abc import Sequence

from services.duplicates import DuplicateCluster


def clusters_csv(clusters: Sequence[DuplicateCluster]) -> str:
    """One row per cluster member: cluster id and size, record id, best score, title."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["cluster", "size", "id", "score", "title", "cluster_min_score"])
    for cluster in clusters:
        for member in cluster.members:
            writer.writerow(
                [
                    cluster.id,
                    cluster.size,
                    member.id,
                    f"{member.score:.4f}",
                    member.title,
                    f"{cluster.min_score:.4f}",
                ]
            )
    return buffer.getvalue()


def pairs_csv(clusters: Sequence[DuplicateCluster]) -> str:
    """One row per pair: cluster id, the two record ids, their similarity, their titles."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["cluster", "id_a", "id_b", "score", "title_a", "title_b"])
    for cluster in clusters:
        titles = {member.id: member.title for member in cluster.members}
        for pair in cluster.pairs:
            writer.writerow(
                [cluster.id, pair.a, pair.b, f"{pair.score:.4f}", titles[pair.a], titles[pair.b]]
            )
    return buffer.getvalue()
