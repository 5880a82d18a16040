"""Iconclass notations: their ancestor paths, top-level digit and labels.

Paths come from the notation's own structure, so notations the `iconclass`
package does not know (new, local or mistyped ones) still get one. Each level
of the structure is one ancestor: a digit, a letter (or doubled letter, as in
`25FF`, a sibling of `25F`), a bracketed name such as `(CROW)`, and each digit
of a key such as `(+12)`. The combination `46A170:5(+12)` has the paths of
`46A170` and of `5(+12)`, then itself. Path entries are normalised: whitespace
outside brackets dropped, letters outside brackets upper-cased (`49l8` is
`49L8`), an unclosed bracket closed.

Labels come from the package's bundled data (offline); the data is loaded on
first use, not on import.
"""

import functools
import re
import threading
from collections.abc import Iterable
from typing import Any

import iconclass

from services.errors import ConfigError

_STARTS_LIKE_NOTATION = re.compile(r"^\s*\d")
# The placeholder the package's templates use for a bracketed name, in its
# languages: `song-birds (with NAME)`, `Singvögel (mit NAMEN)`, `鳴禽類 (名称 を伴う)`.
_NAME_PLACEHOLDER = re.compile(
    r"\((?:(?:with|mit|avec|col|con|com)\s[^()]*|[^()]*(?:を伴う|付き))\)"
)
_LOCK = threading.Lock()


def split_notations(text: str) -> list[str]:
    """Notations of a `;`-separated cell; a `;` inside a bracketed text does not split.

    >>> split_notations("25F32(CROW)(+1); 86(EIA AGE; O, SCANDE)")
    ['25F32(CROW)(+1)', '86(EIA AGE; O, SCANDE)']
    """
    return rejoin_notations(text.split(";"))


def rejoin_notations(parts: Iterable[str]) -> list[str]:
    """Stripped, non-empty notations, with pieces of a motto split on its `;` put back.

    A piece is glued to the previous notation when that one has an unclosed
    bracket and the piece does not start with a digit, so an unclosed bracket
    never swallows the notations after it.
    """
    notations: list[str] = []
    for raw in parts:
        previous = notations[-1] if notations else ""
        if previous.count("(") > previous.count(")") and not _STARTS_LIKE_NOTATION.match(raw):
            notations[-1] = f"{previous};{raw}".strip()
        elif raw.strip():
            notations.append(raw.strip())
    return notations


def notation_path(notation: str) -> list[str]:
    """Every ancestor of `notation` and the notation itself, root first.

    Empty text, or text not starting with a digit, gives [].

    >>> notation_path("25F32(CROW)(+1)")
    ['2', '25', '25F', '25F3', '25F32', '25F32(CROW)', '25F32(CROW)(+1)']
    """
    return list(_cached_path(notation.strip()))


def top_level(notation: str) -> str | None:
    """The top-level division ('0'..'9') of `notation`, or None when it is not one."""
    path = _cached_path(notation.strip())
    return path[0] if path else None


def labels(notation: str, lang: str = "en") -> str | None:
    """The package's label of `notation` in `lang`, or None when it does not know it.

    A combination is labelled `first : second` when every part is known.
    Raises ConfigError for a language the package has no labels in.

    >>> labels("25F32(CROW)(+1)")
    'song-birds: crow (+ animals used symbolically)'
    """
    return _cached_label(notation.strip(), lang)


@functools.lru_cache(maxsize=65536)
def _cached_path(notation: str) -> tuple[str, ...]:
    parts = [part for part in _split_outside_brackets(notation, ":") if part]
    if not parts or not _STARTS_LIKE_NOTATION.match(parts[0]):
        return ()
    paths = [_part_path(part) for part in parts if _STARTS_LIKE_NOTATION.match(part)]
    entries = [entry for path in paths for entry in path]
    if len(paths) > 1:
        entries.append(":".join(path[-1] for path in paths))
    return tuple(dict.fromkeys(entries))


def _part_path(part: str) -> list[str]:
    """Structural path of one notation without `:`, plus the package's parent chain.

    The package knows parents the structure does not show: `31AA` (female)
    hangs under `31A`, `48AA982` under `48A982`.
    """
    structural = _structural_path(part)
    found = _lookup(structural[-1]) if structural else None
    if found is None:
        return structural
    name = found.get("bracketed_text")
    chain = [entry.replace("(...)", name) if name else entry for entry in found.get("p", [])]
    known = [entry for entry in chain if "(...)" not in entry and entry not in structural]
    # Ancestors are shorter than their descendants: a stable sort puts the root first.
    return sorted(known + structural, key=len)


def _structural_path(part: str) -> list[str]:
    """Each level of the notation's structure appends one entry."""
    path: list[str] = []
    done = ""
    index = 0
    while index < len(part):
        char = part[index]
        if char == "(":
            close = _closing_bracket(part, index)
            group = part[index : close + 1] if close < len(part) else part[index:] + ")"
            key = group[2:-1] if group.startswith("(+") else ""
            if key.isalnum():
                path.extend(f"{done}(+{key[:size]})" for size in range(1, len(key) + 1))
            else:
                path.append(done + group)
            done += group
            index = close + 1
        elif char.isspace():
            index += 1
        elif char.isalpha():
            end = index
            while end < len(part) and part[end].upper() == char.upper():
                end += 1
            done += part[index:end].upper()
            path.append(done)
            index = end
        else:
            done += char
            path.append(done)
            index += 1
    return path


def _closing_bracket(text: str, start: int) -> int:
    """Index of the bracket closing the one at `start` (len(text) when unclosed)."""
    depth = 0
    for index in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[index], 0)
        if depth == 0:
            return index
    return len(text)


def _split_outside_brackets(text: str, separator: str) -> list[str]:
    parts: list[str] = []
    depth = 0
    current = ""
    for char in text:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == separator and depth <= 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    parts.append(current.strip())
    return parts


@functools.cache
def _source() -> iconclass.Iconclass:
    return iconclass.Iconclass()


@functools.lru_cache(maxsize=65536)
def _lookup(part: str) -> dict[str, Any] | None:
    """The package's record of one notation without `:`, or None when it has none."""
    with _LOCK:
        source = _source()
    try:
        found: dict[str, Any] = source.obj(part)
    except (iconclass.NotationNotFound, LookupError):
        return None
    return found


def _texts(lang: str) -> dict[str, str]:
    """The package's labels in `lang`, loaded once (under a lock: loading fills a dict)."""
    with _LOCK:
        source = _source()
        if lang not in source.texts:
            try:
                source.load(lang)
            except KeyError as error:
                raise ConfigError(
                    f"Iconclass has no labels in {lang!r}; use one of en, de, fr, it, pt, jp."
                ) from error
        texts: dict[str, str] = source.texts[lang]
    return texts


@functools.lru_cache(maxsize=65536)
def _cached_label(notation: str, lang: str) -> str | None:
    texts = _texts(lang)  # first, so an unknown language fails even for a bad notation
    if not _cached_path(notation):
        return None
    part_labels = [_part_label(part, texts) for part in _split_outside_brackets(notation, ":")]
    if not all(part_labels):
        return None
    return " : ".join(label for label in part_labels if label)


def _part_label(part: str, texts: dict[str, str]) -> str | None:
    """Label of one notation without `:`.

    Done here rather than with `Iconclass.txt`: that fetches Wikidata labels
    over the network for `(wd:Q…)` names, and its name substitution also hits
    ordinary brackets such as `(family group)`.
    """
    structural = _structural_path(part)
    found = _lookup(structural[-1]) if structural else None
    if found is None:
        return None
    text = texts.get(found.get("b", ""), "")
    if not text:
        return None
    if "bracketed_text" in found:
        name: str = found["bracketed_text"]
        text, count = _NAME_PLACEHOLDER.subn(lambda _: name, text, count=1)
        text = text if count else f"{text} {name}"
    if "k" in found and (key_text := texts.get(found["k"], "")):
        text = f"{text} (+ {key_text})"
    return text
