"""Checking a manifest's image references: http(s) only, paths kept inside the root."""

import pickle
from pathlib import Path

import pytest

from ingest.image_refs import ImageError, ImageRef, resolve_ref
from services.errors import VitrineError


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "collection"
    (folder / "scans").mkdir(parents=True)
    (folder / "scans" / "a.jpg").write_bytes(b"jpeg")
    (tmp_path / "secret.jpg").write_bytes(b"outside")
    return folder


def reason(ref: str, root: Path) -> str:
    with pytest.raises(ImageError) as caught:
        resolve_ref(ref, root)
    return caught.value.reason


def test_relative_path_resolves_inside_root(root: Path) -> None:
    ref = resolve_ref("scans/a.jpg", root)
    assert ref == ImageRef(kind="file", path=(root / "scans" / "a.jpg").resolve())
    assert ref.location.endswith("a.jpg")


def test_dot_dot_that_stays_inside_is_fine(root: Path) -> None:
    assert resolve_ref("scans/../scans/a.jpg", root).path == (root / "scans" / "a.jpg").resolve()


def test_missing_file_still_resolves(root: Path) -> None:
    """Existence is checked when reading, so the error says "file not found"."""
    assert resolve_ref("scans/later.jpg", root).kind == "file"


def test_absolute_path_inside_root(root: Path) -> None:
    inside = (root / "scans" / "a.jpg").resolve()
    assert resolve_ref(str(inside), root).path == inside


@pytest.mark.parametrize("ref", ["../secret.jpg", "scans/../../secret.jpg", "../../etc/passwd"])
def test_relative_path_may_not_escape(root: Path, ref: str) -> None:
    assert reason(ref, root).startswith("path escapes the manifest folder")


def test_absolute_path_outside_root(root: Path) -> None:
    outside = root.parent / "secret.jpg"
    assert reason(str(outside), root).startswith("path escapes the manifest folder")


def test_symlink_escaping_root(root: Path) -> None:
    (root / "link.jpg").symlink_to(root.parent / "secret.jpg")
    (root / "linked-dir").symlink_to(root.parent)
    assert reason("link.jpg", root).startswith("path escapes the manifest folder")
    assert reason("linked-dir/secret.jpg", root).startswith("path escapes the manifest folder")


def test_symlink_inside_root(root: Path) -> None:
    (root / "alias.jpg").symlink_to(root / "scans" / "a.jpg")
    assert resolve_ref("alias.jpg", root).path == (root / "scans" / "a.jpg").resolve()


@pytest.mark.parametrize(
    "ref", ["http://example.org/a.jpg", "https://example.org/iiif/1/full/max/0/default.jpg"]
)
def test_http_urls(root: Path, ref: str) -> None:
    assert resolve_ref(ref, root) == ImageRef(kind="url", url=ref)


def test_scheme_is_case_insensitive(root: Path) -> None:
    assert resolve_ref("HTTPS://example.org/a.jpg", root).kind == "url"


@pytest.mark.parametrize(
    "ref",
    [
        "file:///etc/passwd",
        "ftp://example.org/a.jpg",
        "data:image/png;base64,iVBORw0KGgo=",
        "javascript:alert(1)",
    ],
)
def test_other_schemes_are_refused(root: Path, ref: str) -> None:
    assert reason(ref, root).startswith("unsupported URL scheme")


def test_url_without_host(root: Path) -> None:
    assert "no host" in reason("https:///a.jpg", root)


@pytest.mark.parametrize("ref", ["", "   ", "\t"])
def test_empty_reference(root: Path, ref: str) -> None:
    assert reason(ref, root) == "empty image reference"


def test_nul_in_path(root: Path) -> None:
    assert reason("scans/a\x00.jpg", root).startswith("invalid path")


def test_image_error_is_a_vitrine_error_and_pickles() -> None:
    error = ImageError("corrupt image: truncated")
    assert isinstance(error, VitrineError)
    assert str(error) == "corrupt image: truncated"
    copy = pickle.loads(pickle.dumps(error))
    assert isinstance(copy, ImageError)
    assert copy.reason == error.reason
