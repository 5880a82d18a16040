"""Getty AAT identifiers in the one form the payload stores: the bare digits."""

import re

# Every AAT concept id is nine digits starting 300 (ULAN ids start 500, TGN 7),
# so a wrong vocabulary's id is caught here rather than silently stored.
_AAT_ID = re.compile(
    r"""
    ^(?:
        https?://vocab\.getty\.edu/(?:page/)?aat/   # the Linked Open Data URI or its page
      | aat\s*[:/]?\s*                               # aat:300033618, AAT 300033618
    )?
    (?P<id>300\d{6})
    (?:\.(?:json|jsonld|rdf|ttl|nt)|/)?$
    """,
    re.IGNORECASE | re.VERBOSE,
)


def normalise_aat(value: str) -> str | None:
    """The bare AAT id of `value`, or None when it is not an AAT id.

    >>> [normalise_aat(v) for v in ("aat:300033618", "http://vocab.getty.edu/aat/300033618")]
    ['300033618', '300033618']
    >>> normalise_aat("500115493") is None  # a ULAN id
    True
    """
    match = _AAT_ID.match(value.strip())
    return match["id"] if match else None
