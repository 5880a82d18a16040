"""Training captions: the catalogue's caption, or templates over its metadata.

Templates name metadata in braces: `{labels}` (Iconclass labels in the chosen
language, then AAT labels), `{iconclass}`, `{aat}`, `{title}`, `{caption}`, or
any other column of the catalogue. A template whose fields an item lacks is
skipped for that item. Each item gets a few candidate captions; training
draws one per epoch, evaluation always uses the first (canonical) one.

>>> builder = CaptionBuilder(CaptionConfig(lang="en", per_item=2))
>>> builder.captions("a1", {"iconclass": ("25F23(LION)",)})[0]
'Image depicting beasts of prey, predatory animals: lion'
"""

import random
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from services.errors import ConfigError
from services.iconclass_terms import labels as iconclass_label

Fields = Mapping[str, Sequence[str]]

TEMPLATES_BY_LANG: dict[str, tuple[str, ...]] = {
    "en": ("Image depicting {labels}", "An illustration of {labels}", "{labels}"),
    "it": ("Immagine che raffigura {labels}", "Un'illustrazione di {labels}", "{labels}"),
    "de": ("Bild, das {labels} darstellt", "Eine Darstellung von {labels}", "{labels}"),
    "fr": ("Image représentant {labels}", "Une illustration de {labels}", "{labels}"),
    "nl": ("Afbeelding van {labels}", "Een illustratie van {labels}", "{labels}"),
}
"""Default templates per language; other languages get `{labels}` alone."""


def default_templates(lang: str) -> tuple[str, ...]:
    return TEMPLATES_BY_LANG.get(lang, ("{labels}",))


@dataclass(frozen=True)
class CaptionConfig:
    """Where captions come from.

    Attributes:
        use_caption: take the catalogue's `caption` as the canonical caption
            when an item has one (templates add the other candidates).
        templates: empty means the defaults of `lang`.
        lang: language of Iconclass labels.
        per_item: candidate captions kept per item.
        max_labels: labels one caption names at most (CLIP reads 77 tokens).
        seed: which labels and templates each candidate draws.
    """

    use_caption: bool = True
    templates: tuple[str, ...] = ()
    lang: str = "en"
    per_item: int = 3
    max_labels: int = 6
    seed: int = 0

    def __post_init__(self) -> None:
        if self.per_item < 1:
            raise ConfigError("captions per item must be at least 1")
        for template in self.templates:
            try:
                names = [name for _, name, _, _ in string.Formatter().parse(template) if name]
            except ValueError as error:
                raise ConfigError(f"caption template {template!r}: {error}") from error
            if not names:
                raise ConfigError(
                    f"caption template {template!r} names no field: use e.g. '{{labels}}'"
                )

    @property
    def effective_templates(self) -> tuple[str, ...]:
        return self.templates or default_templates(self.lang)


class CaptionBuilder:
    """Turns an item's metadata into its candidate captions (deterministic per item)."""

    def __init__(self, config: CaptionConfig) -> None:
        self.config = config

    def label_list(self, fields: Fields) -> tuple[list[str], list[str]]:
        """Iconclass labels in the configured language and AAT labels of an item."""
        iconclass = []
        for notation in fields.get("iconclass", ()):
            label = iconclass_label(notation, self.config.lang)
            if label and label not in iconclass:
                iconclass.append(label)
        aat = [value for value in fields.get("aat_labels", ()) if value]
        return iconclass, aat

    def captions(self, record_id: str, fields: Fields) -> list[str]:
        """Up to `per_item` distinct captions, the canonical one first; [] when none fits."""
        iconclass, aat = self.label_list(fields)
        found: list[str] = []
        caption = _first(fields.get("caption", ()))
        if self.config.use_caption and caption:
            found.append(caption)
        rng = random.Random(f"{self.config.seed}\x00{record_id}")
        templates = list(self.config.effective_templates)
        attempts = 0
        while len(found) < self.config.per_item and attempts < 4 * self.config.per_item:
            # The first pass keeps catalogue order, later ones draw labels and templates.
            template = templates[attempts % len(templates)]
            shuffled = attempts >= len(templates)
            text = self._render(template, fields, iconclass, aat, rng if shuffled else None)
            attempts += 1
            if text and text not in found:
                found.append(text)
        return found

    def _render(
        self,
        template: str,
        fields: Fields,
        iconclass: list[str],
        aat: list[str],
        rng: random.Random | None,
    ) -> str | None:
        values: dict[str, str] = {}
        for _, name, _, _ in string.Formatter().parse(template):
            if not name:
                continue
            if name == "labels":
                chosen = self._pick(iconclass + aat, rng)
            elif name == "iconclass":
                chosen = self._pick(iconclass, rng)
            elif name == "aat":
                chosen = self._pick(aat, rng)
            else:
                chosen = [value for value in fields.get(name, ()) if value]
            if not chosen:
                return None
            values[name] = "; ".join(chosen)
        return " ".join(template.format(**values).split()) or None

    def _pick(self, labels: list[str], rng: random.Random | None) -> list[str]:
        limit = self.config.max_labels
        if rng is None or len(labels) <= 1:
            return labels[:limit]
        return rng.sample(labels, min(limit, len(labels)))


def _first(values: Sequence[str]) -> str | None:
    return next((value.strip() for value in values if value and value.strip()), None)
