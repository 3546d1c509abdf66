"""The Space in a real browser: ``wkd-space --launch`` serves tiny local models on 127.0.0.1 and
headless Chromium (Selenium) uploads a real photo, reads back the three images and the latency
text, then uploads a text file and reads the page's message. Skips (one line) without a browser."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not (CHROMIUM and DRIVER):
    pytest.skip("no chromium + chromedriver here (Debian: apt-get install chromium "
                "chromium-driver; `make test` tries): the wkd-space browser test is skipped",
                allow_module_level=True)
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytest.importorskip("gradio")
from selenium.common.exceptions import WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from wkd_hf.pipeline import ImageTranslationPipeline  # noqa: E402
from wkd_hf.space.models import open_upload  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MAX_SIDE = 400  # chelsea is 451 x 300: resized to 400 x 266, with a note


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def models(tmp_path_factory, pix2pix_teacher, photo_pairs) -> tuple[Path, Path]:
    """The tiny pix2pix teacher (two steps of train_teacher.py, 32 px) and a student distilled
    from it for one step by distill.py: real output folders with their cards."""
    from conftest import run_script

    student = tmp_path_factory.mktemp("space_student") / "student"
    run_script("distill", [
        "--teacher_model_name_or_path", str(pix2pix_teacher), "--train_data_dir",
        str(photo_pairs), "--direction", "BtoA", "--output_dir", str(student), "--student_ngf",
        "4", "--discriminator_ndf", "4", "--wkd_levels", "3", "--resolution", "32",
        "--train_batch_size", "2", "--max_train_steps", "1", "--validation_split", "2",
        "--num_validation_images", "2", "--validation_steps", "0", "--checkpointing_steps", "0",
        "--report_to", "none", "--seed", "0"])
    return student, pix2pix_teacher


@pytest.fixture
def served(tmp_path, models):
    """``python -m wkd_hf.space ... --launch`` (= ``wkd-space``) on a free port; its URL."""
    import skimage.data

    student, teacher = models
    photo = tmp_path / "chelsea.jpg"
    Image.fromarray(skimage.data.chelsea()).save(photo, quality=95)
    port = _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
        str(ROOT), os.environ.get("PYTHONPATH")])), "HF_HUB_OFFLINE": "1"}
    log = open(tmp_path / "server.log", "w")
    server = subprocess.Popen(
        [sys.executable, "-m", "wkd_hf.space", "--model", str(student), "--teacher", str(teacher),
         "--output_dir", str(tmp_path / "space"), "--examples", str(photo), "--max_side",
         str(MAX_SIDE), "--launch", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("wkd-space --launch did not serve:\n"
                                + (tmp_path / "server.log").read_text())
                time.sleep(0.3)
        yield url, photo, student, teacher
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--window-size=1400,1000"):
        options.add_argument(flag)
    try:
        driver = webdriver.Chrome(service=webdriver.ChromeService(DRIVER), options=options)
    except WebDriverException as err:
        pytest.skip(f"chromium does not start here ({str(err).splitlines()[0]}): the wkd-space "
                    "browser test is skipped")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _natural_size(driver, elem_id):
    return driver.execute_script(
        f"const im = document.querySelector('#{elem_id} img');"
        "return im && im.complete && im.naturalWidth ? [im.naturalWidth, im.naturalHeight] : null")


def test_page_translates_an_upload_and_explains_a_text_file(served, browser, tmp_path):
    url, photo, student, teacher = served
    wait = WebDriverWait(browser, 45)
    browser.get(url)
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#upload input[type=file]"))
    upload.send_keys(str(photo))
    wait.until(lambda d: "ms on this Space" in d.find_element(By.ID, "student_stats").text)
    wait.until(lambda d: all(_natural_size(d, i) for i in ("input_image", "teacher_image",
                                                             "student_image")))
    resized, _ = open_upload(photo, MAX_SIDE)
    assert resized.size == (400, 266)
    for elem_id in ("input_image", "teacher_image", "student_image"):
        assert _natural_size(browser, elem_id) == [400, 266], elem_id
    # the pixels the page shows are the pipeline's, on the resized upload (and the two differ)
    expected = {}
    for elem_id, folder in (("student_image", student), ("teacher_image", teacher)):
        src = browser.find_element(By.CSS_SELECTOR, f"#{elem_id} img").get_attribute("src")
        with urllib.request.urlopen(src, timeout=10) as response:
            shown = np.asarray(Image.open(response).convert("RGB"))
        expected[elem_id] = np.asarray(
            ImageTranslationPipeline.from_pretrained(folder)(resized).images[0])
        assert np.array_equal(shown, expected[elem_id]), elem_id
    assert not np.array_equal(expected["student_image"], expected["teacher_image"])
    for elem_id in ("student_stats", "teacher_stats"):
        text = browser.find_element(By.ID, elem_id).text
        latency = float(text.split(" ms on this Space")[0].rsplit(" ", 1)[-1])
        assert latency > 0 and "M params" in text and "GMACs at 32x32" in text, text
    sizes = {role: ImageTranslationPipeline.from_pretrained(folder).generator.num_parameters()
             for role, folder in (("student", student), ("teacher", teacher))}
    for role, params in sizes.items():
        text = browser.find_element(By.ID, f"{role}_stats").text
        assert f"{params / 1e6:.3f} M params" in text, (text, params)
    message = browser.find_element(By.ID, "message").text
    assert "was resized to 400x266" in message
    psnr = next(line for line in (student / "README.md").read_text().splitlines()
                if line.startswith("| validation psnr |")).split("|")[2].strip()
    card = browser.find_element(By.ID, "card").text
    assert "Validation metrics" in card and psnr in card, (psnr, card)
    browser.save_screenshot(str(tmp_path / "space.png"))
    if os.environ.get("WKD_HF_SPACE_SCREENSHOT"):  # how docs/images/space.png is made
        shutil.copy(tmp_path / "space.png", os.environ["WKD_HF_SPACE_SCREENSHOT"])
    assert Image.open(tmp_path / "space.png").size[0] > 0

    text_file = tmp_path / "notes.txt"
    text_file.write_text("this is not a picture")
    browser.find_element(By.CSS_SELECTOR, "#upload button[aria-label=Clear]").click()
    upload = wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#upload input[type=file]"))
    upload.send_keys(str(text_file))
    wait.until(lambda d: "is not an image" in d.find_element(By.ID, "message").text)
    assert "notes.txt is not an image PIL can read" in browser.find_element(By.ID, "message").text
    assert _natural_size(browser, "student_image") is None
    assert "Traceback" not in browser.page_source and "Error" not in browser.page_source

    # an example: one click translates it
    browser.find_element(By.XPATH, "//*[normalize-space(text())='example_0.png']").click()
    wait.until(lambda d: _natural_size(d, "student_image") == [400, 266])
    assert "was resized to 400x266" in browser.find_element(By.ID, "message").text
