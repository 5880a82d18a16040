"""Iconclass labels in several languages, and finding notations by a word.

Uses the `iconclass` package's bundled data (offline). Loaded once per process
(see `ui.state.vocabulary`); each language's texts are read on first use.
"""

import re
import threading
from collections.abc import Iterable

import iconclass

LANGUAGES = {
    "en": "English",
    "de": "Deutsch",
    "fr": "Français",
    "it": "Italiano",
    "pt": "Português",
}
NOTATION_START = re.compile(r"^\d")
# A Wikidata bracket, `(wd:Q123)`, would make the package fetch a label online.
WIKIDATA = re.compile(r"\(wd:Q\d+\)")


class IconclassVocabulary:
    """Labels of notations and notations for words, over the package's data."""

    def __init__(self) -> None:
        self._source = iconclass.Iconclass()
        self._lock = threading.Lock()

    def _load(self, lang: str) -> None:
        with self._lock:
            if lang not in self._source.texts:
                self._source.load(lang)

    def knows(self, notation: str) -> bool:
        """Whether the vocabulary has `notation` (bracketed names and keys included)."""
        try:
            self._source.obj(notation.strip())
        except (iconclass.NotationNotFound, KeyError, TypeError):
            return False
        return True

    def label(self, notation: str, lang: str = "en") -> str:
        """The label of `notation` in `lang`; empty when the vocabulary does not know it."""
        text = notation.strip()
        if not NOTATION_START.match(text) or WIKIDATA.search(text):
            return ""
        self._load(lang)
        try:
            label = str(self._source.txt(text, lang))
        except (iconclass.NotationNotFound, KeyError, TypeError, IndexError):
            return ""
        return "" if label.strip(" :") == "" else label

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
