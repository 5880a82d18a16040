"""Which physical collection an alias points at, and the ones kept for rollback.

Every switch is one atomic Qdrant alias call (`Store.point_alias`) and is
written to the collection's state (`switches`), so `rollback` knows where to go
back to and `keep` knows which old versions are the most recent.
"""

from dataclasses import dataclass

from services.collection_state import AliasSwitch, CollectionState, utc_now
from services.errors import VitrineError
from services.store import version_of
from services.wiring import Services


@dataclass(frozen=True)
class SwitchResult:
    collection: str
    from_physical: str | None
    to_physical: str
    deleted: tuple[str, ...] = ()


def switch_alias(
    services: Services, alias: str, physical: str, *, reason: str, job: str | None = None
) -> SwitchResult:
    """Point `alias` at `physical` in one call and record the switch."""
    previous = services.store.aliases().get(alias)
    services.store.point_alias(alias, physical)
    state = services.states.load(alias) or CollectionState(name=alias)
    state.switches.append(
        AliasSwitch(
            at=utc_now(), from_physical=previous, to_physical=physical, reason=reason, job=job
        )
    )
    state.model_version = version_of(physical)
    services.states.save(state)
    return SwitchResult(alias, previous, physical)


def previous_versions(services: Services, alias: str) -> list[str]:
    """Physical collections of `alias` other than the current one, most recent first."""
    current = services.store.resolve(alias)
    existing = set(services.store.physical_collections(alias)) - {current}
    state = services.states.load(alias)
    ordered: list[str] = []
    for switch in reversed(state.switches if state else []):
        for name in (switch.from_physical, switch.to_physical):
            if name in existing and name not in ordered:
                ordered.append(name)
    return ordered + sorted(existing - set(ordered))


def keep_versions(services: Services, alias: str, keep: int) -> tuple[str, ...]:
    """Delete old physical collections of `alias` beyond the `keep` most recent."""
    if keep < 0:
        raise VitrineError(f"--keep must be 0 or more (got {keep}).")
    doomed = previous_versions(services, alias)[keep:]
    for physical in doomed:
        services.store.delete_physical(physical)
    return tuple(doomed)


def rollback(services: Services, alias: str) -> SwitchResult:
    """Point `alias` back at the most recent previous physical collection.

    Raises:
        VitrineError: no previous version is kept.
    """
    candidates = previous_versions(services, alias)
    if not candidates:
        raise VitrineError(
            f"Collection {alias!r} has no previous version to go back to (old versions are "
            "deleted beyond --keep)."
        )
    return switch_alias(services, alias, candidates[0], reason="rollback")
