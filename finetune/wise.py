"""WiSE-FT: weight-space ensembles of the base and the fine-tuned model.

`theta(alpha) = (1 - alpha) * base + alpha * finetuned`, computed with
`torch.lerp`, which returns the base weights exactly at alpha 0 and the
fine-tuned ones exactly at alpha 1. The alpha with the best validation score
becomes the new version (Wortsman et al., "Robust fine-tuning of zero-shot
models", 2022).
"""

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import torch

from services.errors import ConfigError

State = Mapping[str, torch.Tensor]


def alpha_grid(step: float = 0.1) -> tuple[float, ...]:
    """0, step, 2*step, ..., 1 (rounded, 1 always included).

    >>> alpha_grid(0.25)
    (0.0, 0.25, 0.5, 0.75, 1.0)
    """
    if not 0 < step <= 1:
        raise ConfigError("the WiSE-FT alpha step must be in (0, 1]")
    count = round(1 / step)
    values = [round(min(1.0, index * step), 6) for index in range(count + 1)]
    if values[-1] != 1.0:
        values.append(1.0)
    return tuple(dict.fromkeys(values))


def interpolate(base: State, finetuned: State, alpha: float) -> dict[str, torch.Tensor]:
    """The weights at `alpha`; tensors that are not floating point come from the fine-tuned model."""
    if set(base) != set(finetuned):
        raise ConfigError("the base and fine-tuned models have different parameters")
    mixed = {}
    for name, tuned in finetuned.items():
        start = base[name]
        if tuned.is_floating_point():
            mixed[name] = torch.lerp(start.to(tuned.dtype), tuned, alpha)
        else:
            mixed[name] = tuned.clone()
    return mixed


@dataclass(frozen=True)
class WiseChoice:
    alpha: float
    scores: dict[float, float]


def choose_alpha(score_at: Callable[[float], float], alphas: tuple[float, ...]) -> WiseChoice:
    """The alpha with the best score; on a tie the smaller one (closer to the robust base)."""
    scores = {alpha: score_at(alpha) for alpha in alphas}
    best = max(sorted(scores), key=lambda alpha: scores[alpha])
    return WiseChoice(best, scores)
