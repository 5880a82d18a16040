"""Getty AAT ids to their bare digits."""

import pytest

from services.aat import normalise_aat


@pytest.mark.parametrize(
    "value",
    [
        "300033618",
        " 300033618 ",
        "aat:300033618",
        "AAT:300033618",
        "aat: 300033618",
        "AAT 300033618",
        "aat/300033618",
        "http://vocab.getty.edu/aat/300033618",
        "https://vocab.getty.edu/aat/300033618",
        "http://vocab.getty.edu/page/aat/300033618",
        "http://vocab.getty.edu/aat/300033618/",
        "http://vocab.getty.edu/aat/300033618.json",
    ],
)
def test_accepted_forms_give_the_bare_id(value: str) -> None:
    assert normalise_aat(value) == "300033618"


@pytest.mark.parametrize(
    "value",
    [
        "",
        "aat:",
        "painting",
        "30003361",  # eight digits
        "3000336180",  # ten digits
        "500115493",  # a ULAN id
        "7011781",  # a TGN id
        "http://vocab.getty.edu/ulan/500115493",
        "http://example.org/aat/300033618",
        "tgn:300033618",
        "300033618x",
    ],
)
def test_anything_else_is_none(value: str) -> None:
    assert normalise_aat(value) is None
