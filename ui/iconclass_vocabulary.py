"""Iconclass labels in several languages, and finding notations by a word.

Labels come from `services.iconclass_terms` (the `iconclass` package's bundled
data, offline), the same labels ingest writes into payloads.
"""

import re
from collections.abc import Iterable

from services.iconclass_terms import labels

LANGUAGES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "it": "Italiano",
    "pt": "Português",
}
NOTATION_START = re.compile(r"^\d")


class IconclassVocabulary:
    """Labels of notations (from services.iconclass_terms) and notations for words."""

    def knows(self, notation: str) -> bool:
        """Whether the vocabulary has `notation` (bracketed names and keys included)."""
        return labels(notation.strip()) is not None

    def label(self, notation: str, lang: str = "en") -> str:
        """The label of `notation` in `lang`; empty when the vocabulary does not know it."""
        return labels(notation.strip(), lang) or ""

    def find(self, word: str, lang: str, candidates: Iterable[str], limit: int = 12) -> list[str]:
        """Notations among `candidates` whose label in `lang` contains `word`.

        Whole-word matches come before partial ones, broader notations (shorter)
        before narrower ones. A notation typed as `word` matches itself and its
        descendants.
        """
        needle = word.strip().lower()
        if not needle:
            return []
        pattern = re.compile(rf"\b{re.escape(needle)}\b")
        ranked: list[tuple[int, int, str]] = []
        for notation in candidates:
            if notation.lower().startswith(needle) and NOTATION_START.match(needle):
                ranked.append((0, len(notation), notation))
                continue
            label = self.label(notation, lang).lower()
            if pattern.search(label):
                ranked.append((1, len(notation), notation))
            elif needle in label:
                ranked.append((2, len(notation), notation))
        return [notation for *_, notation in sorted(ranked)[:limit]]
