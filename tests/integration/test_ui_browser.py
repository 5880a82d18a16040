"""The app in a real browser: served on a free port, driven by headless Chromium.

`streamlit run` over the generated sample: a search typed into the page, the
results grid, a screenshot under the test's tmp folder whose thumbnails must
be the sample's own pictures (each generated item has a known colour). Then
the two commands that start the app: `vitrine ui` (its flags reach the app)
and `vitrine demo` (the shipped sample, ingested once, then served), and what
`vitrine demo` says when the default model cannot be loaded.
"""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from ingest.runner import ingest_collection
from services.settings import Settings
from services.store import point_id
from services.thumbnails import thumbnail_path
from services.wiring import Services
from tests.support.sample_data import COLOURS, sample_items

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
BACKGROUND = (245, 240, 230)  # the generated images' paper colour
STARTUP_SECONDS = 120
QUERY_BOX = "input[aria-label='Describe what you are looking for']"

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason=f"needs Debian chromium and chromium-driver ({CHROMIUM}, {CHROMEDRIVER}); "
    "`make browser-deps` installs them where apt-get is allowed",
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def environment(**variables: str) -> dict[str, str]:
    """This environment without VITRINE_* settings, plus `variables`, offline."""
    clean = {key: value for key, value in os.environ.items() if not key.startswith("VITRINE_")}
    pythonpath = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    return {**clean, "HF_HUB_OFFLINE": "1", "PYTHONPATH": pythonpath, **variables}


@contextmanager
def served(command: list[str], env: dict[str, str], folder: Path, port: int) -> Iterator[str]:
    """Run `command` (a Streamlit server on `port`) until the block ends; yields its URL."""
    log = folder / f"server-{port}.log"
    with log.open("wb") as output:
        server = subprocess.Popen(
            command, cwd=folder, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while not healthy(url):
            if server.poll() is not None:
                pytest.fail(f"the server exited with {server.returncode}:\n{log.read_text()}")
            if time.monotonic() > deadline:
                pytest.fail(f"no answer within {STARTUP_SECONDS} s:\n{log.read_text()}")
            time.sleep(0.3)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
            return bool(answer.status == 200)
    except OSError:
        return False


@pytest.fixture
def data_dir(tmp_path: Path, tiny_model_dir: Path, sample_manifest: Path) -> Path:
    """A data folder with the generated sample ingested into `sample` by the tiny model."""
    settings = Settings(
        data_dir=tmp_path / "data",
        model=f"local-dir:{tiny_model_dir}",
        device="cpu",
        batch_size=8,
        decode_workers=1,
        _env_file=None,
    )
    services = Services(settings)
    try:
        assert ingest_collection(services, "sample", sample_manifest).embedded == 24
    finally:
        services.close()
    missing = [
        item.id
        for item in sample_items()
        if not thumbnail_path(settings.data_dir, "sample", point_id("sample", item.id)).is_file()
    ]
    assert not missing, f"ingest wrote no thumbnail (services.thumbnails) for {missing}"
    return settings.data_dir


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1200",
        "--force-device-scale-factor=1",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(tmp_path / "chromium-profile", ignore_errors=True)


def loaded_thumbnails(driver: webdriver.Chrome) -> list[WebElement]:
    """Result-card images that finished loading."""
    images = driver.find_elements(By.CSS_SELECTOR, "[data-testid='stImage'] img")
    return [
        image
        for image in images
        if driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth", image)
    ]


def search(browser: webdriver.Chrome, url: str, text: str, shot: Path) -> Image.Image:
    """Type `text` into the app at `url`, wait for a grid of thumbnails, take a screenshot."""
    browser.get(url)
    wait = WebDriverWait(browser, STARTUP_SECONDS)
    box = wait.until(lambda driver: driver.find_element(By.CSS_SELECTOR, QUERY_BOX))
    box.send_keys(text, Keys.ENTER)
    wait.until(lambda driver: len(loaded_thumbnails(driver)) >= 8)
    wait.until(lambda driver: "q=" in driver.current_url)
    time.sleep(1)  # let the last images paint
    assert browser.save_screenshot(str(shot))
    return Image.open(shot).convert("RGB")


def visible_thumbnails(
    browser: webdriver.Chrome, screenshot: Image.Image
) -> list[tuple[str, np.ndarray]]:
    """(record id, pixels) of each result thumbnail inside the screenshot."""
    images = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stImage'] img")
    ids = [
        element.text.strip()
        for element in browser.find_elements(
            By.CSS_SELECTOR, "[data-testid='stCaptionContainer'] code"
        )
    ]
    found = []
    for image, record_id in zip(images, ids, strict=False):
        rect = image.rect
        if rect["y"] + rect["height"] > screenshot.height or rect["width"] < 32:
            continue  # below the fold
        box = (rect["x"], rect["y"], rect["x"] + rect["width"], rect["y"] + rect["height"])
        region = screenshot.crop(tuple(int(value) for value in box))
        found.append((record_id, np.asarray(region, dtype=np.int16).reshape(-1, 3)))
    return found


@needs_chromium
@pytest.mark.browser
def test_a_typed_search_renders_a_grid_of_the_sample_thumbnails(
    data_dir: Path, tiny_model_dir: Path, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "ui" / "app.py"),
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.fileWatcherType",
        "none",
        "--browser.gatherUsageStats",
        "false",
    ]
    env = environment(
        VITRINE_DATA_DIR=str(data_dir),
        VITRINE_MODEL=f"local-dir:{tiny_model_dir}",
        VITRINE_DEVICE="cpu",
    )
    with served(command, env, tmp_path, port) as url:
        screenshot = search(
            browser, f"{url}/?collection=sample", "a red circle", tmp_path / "search.png"
        )
        assert "q=a+red+circle" in browser.current_url
        thumbnails = visible_thumbnails(browser, screenshot)
    colours = {item.id: COLOURS[index % len(COLOURS)] for index, item in enumerate(sample_items())}
    assert len(thumbnails) >= 4, f"only {len(thumbnails)} thumbnails visible in search.png"
    for record_id, pixels in thumbnails:
        painted = np.mean(np.abs(pixels - BACKGROUND).max(axis=1) > 12)
        own = np.mean(np.abs(pixels - colours[record_id]).max(axis=1) <= 40)
        assert painted > 0.05, f"{record_id}: thumbnail looks blank"
        assert own > 0.03, f"{record_id}: thumbnail lacks its colour {colours[record_id]}"


@needs_chromium
@pytest.mark.browser
def test_vitrine_ui_serves_the_store_named_by_its_flags(
    data_dir: Path, tiny_model_dir: Path, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    port = free_port()
    command = [sys.executable, "-m", "vitrine", "--data-dir", str(data_dir)]
    command += ["ui", "--port", str(port), "--host", "127.0.0.1"]
    env = environment(VITRINE_MODEL=f"local-dir:{tiny_model_dir}", VITRINE_DEVICE="cpu")
    with served(command, env, tmp_path, port) as url:
        search(browser, url, "a blue square", tmp_path / "ui.png")
        body = browser.find_element(By.TAG_NAME, "body").text
    assert "24 matching items" in body


@needs_chromium
@pytest.mark.browser
def test_vitrine_demo_ingests_the_shipped_sample_once_and_serves_it(
    tiny_model_dir: Path, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    port = free_port()
    data = tmp_path / "data"

    def demo(port: int) -> list[str]:
        flags = ["--port", str(port), "--host", "127.0.0.1"]
        return [sys.executable, "-m", "vitrine", "--data-dir", str(data), "demo", *flags]

    env = environment(VITRINE_MODEL=f"local-dir:{tiny_model_dir}", VITRINE_DEVICE="cpu")
    with served(demo(port), env, tmp_path, port) as url:
        screenshot = search(browser, url, "a printer's device", tmp_path / "demo.png")
        thumbnails = visible_thumbnails(browser, screenshot)
        body = browser.find_element(By.TAG_NAME, "body").text
    assert "250 matching items" in body
    assert len(thumbnails) >= 4
    for record_id, pixels in thumbnails:
        ink = np.mean(pixels.mean(axis=1) < 100)  # woodcuts and vase photographs are dark
        assert ink > 0.03, f"{record_id}: the thumbnail is a placeholder, not the picture"
    assert "250 items embedded, 0 failed" in (tmp_path / f"server-{port}.log").read_text()

    again = free_port()  # a second demo finds the collection and only serves it
    with served(demo(again), env, tmp_path, again):
        pass
    assert "is there already" in (tmp_path / f"server-{again}.log").read_text()


def test_vitrine_demo_without_the_default_model_says_how_to_use_a_local_one(
    tmp_path: Path,
) -> None:
    env = environment(HF_HOME=str(tmp_path / "empty-hf-cache"))
    env.pop("HF_HUB_CACHE", None)
    result = subprocess.run(
        [sys.executable, "-m", "vitrine", "--data-dir", str(tmp_path / "data"), "demo"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Could not load the model ViT-B-32" in result.stderr
    assert "VITRINE_MODEL=local-dir:" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr
