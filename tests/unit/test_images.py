"""Reading, decoding and loading images: caps, odd modes, bad files, URLs, workers."""

import contextlib
import io
import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import open_clip
import pytest
import torch
import torchvision.transforms as T
from PIL import Image

from ingest.image_decode import decode, decodes_in_thread
from ingest.image_fetch import ImageLimits, read_bytes, sha256_hex
from ingest.image_refs import ImageError, ImageRef
from ingest.images import DecodedImage, ImageLoader, model_input
from services.settings import Settings

TARGET = 224
MAX_PIXELS = 50_000_000
LIMITS = ImageLimits(max_bytes=1 << 26, max_pixels=MAX_PIXELS, timeout=2.0, backoff=0.01)
PREPROCESS = open_clip.image_transform(TARGET, is_train=False)


def jpeg(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def file_ref(path: Path) -> ImageRef:
    return ImageRef(kind="file", path=path)


def decoded(data: bytes, max_pixels: int = MAX_PIXELS) -> Image.Image:
    return decode(data, target=TARGET, max_pixels=max_pixels)


def decode_reason(data: bytes, max_pixels: int = MAX_PIXELS) -> str:
    with pytest.raises(ImageError) as caught:
        decoded(data, max_pixels)
    return caught.value.reason


def rgb_at(image: Image.Image, x: int, y: int) -> tuple[int, ...]:
    return tuple(int(value) for value in np.asarray(image)[y, x])


def close_to(actual: tuple[int, ...], expected: tuple[int, ...], tolerance: int = 12) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(actual, expected, strict=True))


def scan(width: int, height: int, seed: int = 0) -> Image.Image:
    """A photo-like RGB test image: smooth gradients, edges and grain."""
    rows, cols = np.mgrid[0:height, 0:width]
    base = np.stack(
        [(cols * 255 / width), (rows * 255 / height), ((cols // 97 + rows // 89) % 2) * 200.0], -1
    )
    grain = np.random.default_rng(seed).normal(0, 8, base.shape)
    return Image.fromarray(np.clip(base + grain, 0, 255).astype(np.uint8))


# --- decode -------------------------------------------------------------------------


def test_exif_orientation_is_applied() -> None:
    image = Image.new("RGB", (40, 20), (0, 0, 255))
    image.paste((255, 0, 0), (0, 0, 20, 20))  # left half red
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: turn 90° clockwise to view
    upright = decoded(jpeg(image, exif=exif, quality=95))
    assert upright.mode == "RGB"
    assert upright.size == (20, 40)
    assert close_to(rgb_at(upright, 10, 5), (255, 0, 0))  # the left half is now on top
    assert close_to(rgb_at(upright, 10, 35), (0, 0, 255))


def test_rgba_is_composited_on_white() -> None:
    image = Image.new("RGBA", (30, 10), (0, 0, 0, 0))
    image.paste((255, 0, 0, 255), (10, 0, 20, 10))
    image.paste((0, 0, 0, 128), (20, 0, 30, 10))
    rgb = decoded(png(image))
    assert rgb.mode == "RGB"
    assert rgb_at(rgb, 5, 5) == (255, 255, 255)
    assert rgb_at(rgb, 15, 5) == (255, 0, 0)
    assert close_to(rgb_at(rgb, 25, 5), (127, 127, 127), tolerance=2)


def test_palette_with_transparency() -> None:
    image = Image.new("P", (20, 10), 0)
    image.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    image.paste(1, (10, 0, 20, 10))
    rgb = decoded(png(image, transparency=0))
    assert rgb_at(rgb, 5, 5) == (255, 255, 255)
    assert rgb_at(rgb, 15, 5) == (0, 255, 0)


def test_palette_without_transparency() -> None:
    image = Image.new("RGB", (20, 10), (10, 120, 200)).convert("P", palette=Image.Palette.ADAPTIVE)
    assert close_to(rgb_at(decoded(png(image)), 3, 3), (10, 120, 200), tolerance=4)


def test_grey_with_alpha() -> None:
    image = Image.new("LA", (10, 10), (0, 0))
    assert rgb_at(decoded(png(image)), 5, 5) == (255, 255, 255)


def test_cmyk_jpeg() -> None:
    image = Image.new("CMYK", (16, 16), (0, 255, 255, 0))  # red in CMYK
    data = jpeg(image, quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    assert close_to(rgb_at(decoded(data), 8, 8), (255, 0, 0), tolerance=20)


def test_sixteen_bit_grey_is_scaled_not_clipped() -> None:
    values = np.tile(np.linspace(0, 65535, 256), (8, 1)).astype(np.uint16)
    data = png(Image.fromarray(values))
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    pixels = np.asarray(decoded(data))
    assert pixels.shape == (8, 256, 3)
    assert pixels[0, 0, 0] == 0
    assert pixels[-1, -1, 0] == 255
    assert 126 <= pixels[4, 128, 0] <= 130  # the middle stays mid-grey


def test_float_grey_in_unit_range() -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.full((4, 4), 0.5, dtype=np.float32)).save(buffer, "TIFF")
    assert close_to(rgb_at(decoded(buffer.getvalue()), 1, 1), (128, 128, 128), tolerance=1)


def test_bilevel() -> None:
    image = Image.new("1", (8, 8), 1)
    assert rgb_at(decoded(png(image)), 4, 4) == (255, 255, 255)


def test_truncated_jpeg() -> None:
    data = jpeg(scan(300, 200), quality=90)
    assert "truncated" in decode_reason(data[: len(data) // 2])


def test_random_bytes() -> None:
    noise = np.random.default_rng(1).bytes(2000)
    assert decode_reason(noise).startswith("corrupt image: not in an image format")


def test_no_bytes() -> None:
    assert decode_reason(b"").startswith("corrupt image")


def test_too_many_pixels() -> None:
    reason = decode_reason(png(Image.new("RGB", (20, 15))), max_pixels=100)
    assert reason.startswith("image too large: 20×15 pixels")


def test_pixel_cap_leaves_pil_limit_as_it_was() -> None:
    before = Image.MAX_IMAGE_PIXELS
    decoded(png(Image.new("RGB", (4, 4))), max_pixels=1000)
    assert before == Image.MAX_IMAGE_PIXELS


def test_draft_mode_decodes_big_jpeg_small_and_close_to_full() -> None:
    data = jpeg(scan(3000, 2000), quality=90)
    fast = decoded(data)
    assert 2 * TARGET <= min(fast.size) <= 2000
    assert fast.size[0] / fast.size[1] == pytest.approx(1.5, rel=0.01)
    fast_pixels = PREPROCESS(fast)
    full_pixels = PREPROCESS(Image.open(io.BytesIO(data)).convert("RGB"))
    max_diff = (fast_pixels - full_pixels).abs().max().item()
    cosine = torch.nn.functional.cosine_similarity(
        fast_pixels.flatten(), full_pixels.flatten(), dim=0
    ).item()
    print(f"draft {fast.size} vs full decode: max abs diff {max_diff:.4f}, cosine {cosine:.6f}")
    assert cosine > 0.999
    assert max_diff < 0.3


def test_jpeg_and_png_decode_without_pil_s_global_limit() -> None:
    """They may decode in threads: nothing global is read or changed, our cap still holds."""
    before = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = 100  # would refuse both images if PIL's check ran
    try:
        for data in (jpeg(scan(40, 30)), png(scan(40, 30))):
            assert decodes_in_thread(data)
            assert decoded(data).size == (40, 30)
            assert decode_reason(data, max_pixels=1000).startswith("image too large: 40×30")
        assert Image.MAX_IMAGE_PIXELS == 100
    finally:
        Image.MAX_IMAGE_PIXELS = before


def test_other_formats_are_not_decoded_in_threads() -> None:
    buffer = io.BytesIO()
    scan(40, 30).save(buffer, "TIFF")
    assert not decodes_in_thread(buffer.getvalue())
    assert not decodes_in_thread(b"")
    assert decoded(buffer.getvalue()).size == (40, 30)


def test_model_input_gives_exactly_the_transform_s_pixels() -> None:
    for size in (224, 64):
        transform = open_clip.image_transform(size, is_train=False)
        fast = model_input(transform)
        assert fast is not None
        for width, height in ((500, 375), (375, 500), (451, 333), (100, 50), (224, 224)):
            image = scan(width, height, seed=width)
            assert torch.equal(torch.from_numpy(fast(image)), transform(image))


def test_model_input_leaves_unknown_transforms_alone() -> None:
    training = open_clip.image_transform(224, is_train=True)
    flipped = T.Compose([T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize([0.5] * 3, [0.5] * 3)])
    no_normalise = T.Compose([T.Resize(224), T.ToTensor()])
    for transform in (training, flipped, no_normalise, CrashOn((1, 1)), lambda image: image):
        assert model_input(transform) is None


# --- read_bytes -------------------------------------------------------------------


def read(ref: ImageRef, max_bytes: int = 1 << 20) -> bytes:
    return read_bytes(ref, max_bytes=max_bytes, timeout=2.0, backoff=0.01)


def read_reason(ref: ImageRef, max_bytes: int = 1 << 20, timeout: float = 2.0) -> str:
    with pytest.raises(ImageError) as caught:
        read_bytes(ref, max_bytes=max_bytes, timeout=timeout, attempts=2, backoff=0.01)
    return caught.value.reason


def test_read_file(tmp_path: Path) -> None:
    (tmp_path / "a.bin").write_bytes(b"abc")
    assert read(file_ref(tmp_path / "a.bin")) == b"abc"
    assert sha256_hex(b"abc").startswith("ba7816bf")


def test_missing_empty_big_and_folder_files(tmp_path: Path) -> None:
    assert read_reason(file_ref(tmp_path / "nope.jpg")).startswith("file not found: ")
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert read_reason(file_ref(tmp_path / "empty.jpg")).startswith("empty file: ")
    (tmp_path / "big.jpg").write_bytes(b"x" * 101)
    assert read_reason(file_ref(tmp_path / "big.jpg"), max_bytes=100).startswith("file too large")
    assert read_reason(file_ref(tmp_path)).startswith("not a file: ")


class _Handler(BaseHTTPRequestHandler):
    """Routes: /ok.jpg, /missing.jpg (404), /flaky.jpg (500 once), /down.jpg (503),
    /big.jpg, /slow.jpg; `server.hits` counts requests per path."""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        hits: dict[str, int] = self.server.hits  # type: ignore[attr-defined]
        hits[self.path] = hits.get(self.path, 0) + 1
        body: bytes = self.server.body  # type: ignore[attr-defined]
        if self.path == "/missing.jpg":
            self.send_error(404)
        elif self.path == "/down.jpg" or (self.path == "/flaky.jpg" and hits[self.path] == 1):
            self.send_error(503 if self.path == "/down.jpg" else 500)
        elif self.path == "/slow.jpg":
            threading.Event().wait(1.0)
            self._send(body)
        elif self.path == "/big.jpg":
            self._send(b"x" * 5000)
        else:
            self._send(body)

    def _send(self, body: bytes) -> None:
        with contextlib.suppress(ConnectionError):  # the client gave up (too big, too slow)
            self.send_response(200)
            self.send_header("Content-Type", "image/jpeg")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.hits = {}  # type: ignore[attr-defined]
    httpd.body = jpeg(scan(64, 48), quality=90)  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def url(server: ThreadingHTTPServer, path: str) -> ImageRef:
    return ImageRef(kind="url", url=f"http://127.0.0.1:{server.server_address[1]}{path}")


def test_url_ok(server: ThreadingHTTPServer) -> None:
    assert read(url(server, "/ok.jpg")) == server.body  # type: ignore[attr-defined]


def test_url_404_is_not_retried(server: ThreadingHTTPServer) -> None:
    reason = read_reason(url(server, "/missing.jpg"))
    assert reason.startswith("HTTP 404 for http://127.0.0.1")
    assert server.hits["/missing.jpg"] == 1  # type: ignore[attr-defined]


def test_url_500_then_200_is_retried(server: ThreadingHTTPServer) -> None:
    assert read(url(server, "/flaky.jpg")) == server.body  # type: ignore[attr-defined]
    assert server.hits["/flaky.jpg"] == 2  # type: ignore[attr-defined]


def test_url_always_503_gives_up(server: ThreadingHTTPServer) -> None:
    reason = read_reason(url(server, "/down.jpg"))
    assert reason.startswith("unreachable URL http://127.0.0.1") and reason.endswith("HTTP 503")
    assert server.hits["/down.jpg"] == 2  # type: ignore[attr-defined]


def test_url_too_big(server: ThreadingHTTPServer) -> None:
    assert read_reason(url(server, "/big.jpg"), max_bytes=1000).startswith("file too large")


def test_url_timeout(server: ThreadingHTTPServer) -> None:
    reason = read_reason(url(server, "/slow.jpg"), timeout=0.2)
    assert reason.startswith("unreachable URL") and reason.endswith("timed out")


def test_url_closed_port() -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    port = probe.server_address[1]
    probe.server_close()
    ref = ImageRef(kind="url", url=f"http://127.0.0.1:{port}/a.jpg")
    reason = read_reason(ref)
    assert reason.startswith(f"unreachable URL http://127.0.0.1:{port}/a.jpg: ")
    assert "refused" in reason


# --- ImageLoader --------------------------------------------------------------------


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[int, ImageRef]]:
    """Six good images of different sizes and modes, then three bad ones."""
    folder = tmp_path_factory.mktemp("collection")
    good = [scan(640 + 40 * i, 480 - 30 * i, seed=i) for i in range(4)]
    good += [scan(300, 300).convert("L"), scan(200, 260).convert("RGBA")]
    paths = []
    for i, image in enumerate(good):
        path = folder / (f"{i}.jpg" if image.mode == "RGB" else f"{i}.png")
        path.write_bytes(jpeg(image, quality=90) if image.mode == "RGB" else png(image))
        paths.append(path)
    (folder / "truncated.jpg").write_bytes(jpeg(scan(300, 200))[:500])
    (folder / "noise.jpg").write_bytes(np.random.default_rng(2).bytes(1000))
    paths += [folder / "truncated.jpg", folder / "noise.jpg", folder / "missing.jpg"]
    return [(10 + i, file_ref(path)) for i, path in enumerate(paths)]


def by_index(results: Iterator[DecodedImage]) -> dict[int, DecodedImage]:
    return {result.index: result for result in results}


def loader(
    workers: int, preprocess: Callable[[Image.Image], torch.Tensor] = PREPROCESS
) -> ImageLoader:
    return ImageLoader(
        preprocess, target=TARGET, limits=LIMITS, workers=workers, in_flight=3, stop_grace=0.5
    )


def test_inline_loader_keeps_going_past_bad_images(
    collection: list[tuple[int, ImageRef]],
) -> None:
    with loader(workers=1) as inline:
        results = by_index(inline.load(collection))
    assert sorted(results) == [index for index, _ in collection]
    good = [result for result in results.values() if result.ok]
    assert len(good) == 6
    for result in good:
        assert result.pixels is not None and result.pixels.shape == (3, TARGET, TARGET)
        assert result.pixels.dtype == torch.float32 and result.error is None
        assert result.sha256 is not None and len(result.sha256) == 64
    assert "truncated" in (results[16].error or "").lower()
    assert (results[17].error or "").startswith("corrupt image")
    assert results[17].sha256 is not None  # read fine, did not decode
    assert (results[18].error or "").startswith("file not found")
    assert results[18].sha256 is None


def test_pixels_keep_the_dtype_of_the_preprocess(collection: list[tuple[int, ImageRef]]) -> None:
    def as_uint8(image: Image.Image) -> torch.Tensor:
        return torch.from_numpy(np.array(image.resize((32, 24)))).permute(2, 0, 1)

    with loader(workers=1, preprocess=as_uint8) as inline:
        [result] = list(inline.load(collection[:1]))
    assert result.pixels is not None
    assert result.pixels.dtype == torch.uint8 and result.pixels.shape == (3, 24, 32)


def test_hash_only_matches_load(collection: list[tuple[int, ImageRef]]) -> None:
    with loader(workers=1) as inline:
        hashes = dict(inline.hash_only(collection))
        loaded = by_index(inline.load(collection))
    assert isinstance(hashes[18], ImageError)
    assert all(hashes[i] == loaded[i].sha256 for i in range(10, 18))


def test_hash_only_spools_urls_for_load(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    ref = url(server, "/spooled.jpg")
    with ImageLoader(
        PREPROCESS, target=TARGET, limits=LIMITS, workers=1, spool_parent=tmp_path
    ) as inline:
        [(index, digest)] = list(inline.hash_only([(1, ref)]))
        assert list(tmp_path.glob("vitrine-spool-*/*"))
        [result] = list(inline.load([(1, ref)]))
        assert not list(tmp_path.glob("vitrine-spool-*/*"))  # consumed
    assert result.ok and result.sha256 == digest
    assert server.hits["/spooled.jpg"] == 1  # type: ignore[attr-defined]
    assert not list(tmp_path.iterdir())  # closing removed the spool


def test_threads_give_the_same_pixels_as_inline_and_hand_other_formats_on(
    collection: list[tuple[int, ImageRef]], tmp_path: Path
) -> None:
    """JPEG and PNG decode in threads; a TIFF goes on to a worker process."""
    tiff = tmp_path / "scan.tif"
    scan(320, 240, seed=9).save(tiff)
    items = [*collection, (30, file_ref(tiff))]
    with loader(workers=1) as inline:
        expected = by_index(inline.load(items))
    with loader(workers=2) as threaded:
        assert threaded.threaded
        assert not multiprocessing.active_children()
        results = by_index(threaded.load(items))
        assert multiprocessing.active_children()  # started for the TIFF
    assert sorted(results) == sorted(expected)
    for index, result in results.items():
        assert (result.error, result.sha256) == (expected[index].error, expected[index].sha256)
        if result.pixels is not None:
            expected_pixels = expected[index].pixels
            assert expected_pixels is not None
            assert torch.equal(result.pixels, expected_pixels)
    assert results[30].ok


class CrashOn:
    """A preprocess that kills its worker process on images of one size."""

    def __init__(self, size: tuple[int, int]) -> None:
        self.size = size

    def __call__(self, image: Image.Image) -> torch.Tensor:
        if image.size == self.size:
            os._exit(3)
        return PREPROCESS(image)


@pytest.fixture(scope="module")
def pool_loader() -> Iterator[ImageLoader]:
    """One two-worker loader for the pool tests: starting workers takes seconds."""
    with loader(workers=2, preprocess=CrashOn((300, 300))) as parallel:
        yield parallel


def test_two_workers_give_the_same_tensors_as_inline(
    collection: list[tuple[int, ImageRef]], pool_loader: ImageLoader
) -> None:
    safe = [item for item in collection if item[0] != 14]  # 14 is the crasher
    with loader(workers=1) as inline:
        expected = by_index(inline.load(safe))
    results = by_index(pool_loader.load(safe))
    assert sorted(results) == sorted(expected)
    for index, result in results.items():
        assert result.error == expected[index].error
        assert result.sha256 == expected[index].sha256
        if result.pixels is not None:
            expected_pixels = expected[index].pixels
            assert expected_pixels is not None
            assert torch.equal(result.pixels, expected_pixels)


def test_a_worker_crash_costs_only_its_image(
    collection: list[tuple[int, ImageRef]], pool_loader: ImageLoader
) -> None:
    results = by_index(pool_loader.load(collection))
    assert sorted(results) == [index for index, _ in collection]
    assert results[14].error == "the decoding worker crashed on this image"
    assert sum(result.ok for result in results.values()) == 5


def test_keyboard_interrupt_stops_the_workers(
    collection: list[tuple[int, ImageRef]], pool_loader: ImageLoader
) -> None:
    def interrupted() -> Iterator[tuple[int, ImageRef]]:
        yield from collection[:2]  # fewer than in_flight: no result is awaited
        assert multiprocessing.active_children()
        raise KeyboardInterrupt  # as if Ctrl-C came while the workers were busy

    with pytest.raises(KeyboardInterrupt):
        list(pool_loader.load(interrupted()))
    deadline = time.monotonic() + 10  # a worker busy reading from disk may take a moment
    while multiprocessing.active_children() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not multiprocessing.active_children()


def test_from_settings_defaults_to_one_worker_per_core() -> None:
    settings = Settings(decode_workers=0, _env_file=None)  # type: ignore[call-arg]
    built = ImageLoader.from_settings(settings, PREPROCESS, TARGET)
    assert built.workers == (os.cpu_count() or 1)
    assert (
        ImageLoader.from_settings(
            settings.with_overrides(decode_workers=1), PREPROCESS, 224
        ).workers
        == 1
    )
