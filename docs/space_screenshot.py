"""Remake docs/images/space.png: a short denoising run on the demo's data (a small ResNet teacher,
a WKD student distilled from it), served by ``wkd-space --size_mode pad --launch`` and given the
held-out ``chelsea`` photo with the demo's noise, in headless Chromium (Debian's ``chromium`` +
``chromium-driver``, Selenium).

    python docs/space_screenshot.py --work space_shot --teacher_steps 800 --student_steps 500
"""

import argparse
import importlib.util
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import skimage.data
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def _load(name: str, path: Path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def train(work: Path, teacher_steps: int, student_steps: int) -> tuple[Path, Path]:
    """Teacher (ResNet ngf 16, 3 blocks) and WKD student (ngf 8) on 64 px demo crops."""
    _load("demo_data", ROOT / "examples" / "demo_data.py").build_demo_dataset(
        work / "data", resolution=64, crops_per_photo=16, test_resolution=128,
        test_crops_per_photo=2)
    common = ["--train_data_dir", str(work / "data"), "--resolution", "64", "--train_batch_size",
              "4", "--validation_split", "16", "--num_validation_images", "4",
              "--validation_steps", "0", "--checkpointing_steps", "0", "--report_to", "none",
              "--seed", "0"]
    teacher, student = work / "teacher", work / "student"
    if not (teacher / "args.json").is_file():
        script = _load("train_teacher", ROOT / "training_scripts" / "train_teacher.py")
        argv = [*common, "--ngf", "16", "--n_blocks", "3", "--ndf", "16", "--max_train_steps",
                str(teacher_steps), "--output_dir", str(teacher)]
        script.main(script.parse_args(argv), argv)
    if not (student / "args.json").is_file():
        script = _load("distill", ROOT / "training_scripts" / "distill.py")
        argv = [*common, "--teacher_model_name_or_path", str(teacher), "--student_ngf", "8",
                "--discriminator_ndf", "8", "--wkd_levels", "3", "--lambda_wkd", "10",
                "--max_train_steps", str(student_steps), "--output_dir", str(student)]
        script.main(script.parse_args(argv), argv)
    return teacher, student


def screenshot(teacher: Path, student: Path, work: Path, out: Path) -> None:
    from selenium import webdriver
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    demo_data = sys.modules["demo_data"]
    photo = work / "chelsea_noisy.png"
    demo_data.add_noise(Image.fromarray(skimage.data.chelsea()), 0.15,
                        np.random.default_rng(0)).save(photo)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "wkd_hf.space", "--model", str(student),
                               "--teacher", str(teacher), "--size_mode", "pad", "--launch",
                               "--port", str(port), "--title",
                               "Denoising: WKD student vs teacher (wkd-space)"])
    url = f"http://127.0.0.1:{port}/"
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1150"):
        options.add_argument(flag)
    try:
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                time.sleep(0.5)
        driver = webdriver.Chrome(service=webdriver.ChromeService(shutil.which("chromedriver")),
                                  options=options)
        try:
            driver.get(url)
            wait = WebDriverWait(driver, 60)
            wait.until(lambda d: d.find_element(By.CSS_SELECTOR, "#upload input[type=file]")
                       ).send_keys(str(photo))
            wait.until(lambda d: "ms on this Space" in d.find_element(By.ID, "student_stats").text)
            time.sleep(2)
            for role in ("teacher", "student"):
                print(driver.find_element(By.ID, f"{role}_stats").text)
            driver.save_screenshot(str(out))
        finally:
            driver.quit()
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="Data and runs (resumable).")
    parser.add_argument("--teacher_steps", type=int, default=800)
    parser.add_argument("--student_steps", type=int, default=500)
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "images" / "space.png")
    args = parser.parse_args()
    teacher, student = train(args.work, args.teacher_steps, args.student_steps)
    screenshot(teacher, student, args.work, args.output)


if __name__ == "__main__":
    main()
