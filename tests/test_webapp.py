"""`texnet serve`: the JSON API under bad input, and the page driven end to end in headless Chromium.

The browser tests need Debian's chromium and chromium-driver (the README's set-up installs them);
where none can be installed they are skipped, with the reason printed. Set TEXNET_SCREENSHOTS to a
folder to keep screenshots of the page (the README's come from here).
"""

import io
import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from PIL import Image

from conftest import SHARED_DATA, TEXTURES

PHOTO = SHARED_DATA / "content-test" / "coffee.jpg"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """The app on a free port of 127.0.0.1, in this process; yields its base URL and data folder."""
    import uvicorn

    from texnet.webapp import create_app

    data = tmp_path_factory.mktemp("serve")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    instance = uvicorn.Server(uvicorn.Config(create_app(data), host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not instance.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", data
    instance.should_exit = True
    thread.join(10)


def http(method: str, url: str, **kwargs):
    import urllib.request

    request = urllib.request.Request(url, method=method, **kwargs)
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def multipart(fields: dict, files: dict) -> tuple[bytes, str]:
    boundary = "texnet-test-boundary"
    parts = [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
             for name, value in fields.items()]
    parts += [f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
              f'Content-Type: application/octet-stream\r\n\r\n'.encode() + data + b"\r\n"
              for name, (filename, data) in files.items()]
    return b"".join(parts) + f"--{boundary}--\r\n".encode(), f"multipart/form-data; boundary={boundary}"


def oversized_upload(base: str) -> tuple[int, bytes]:
    """A 21 MB upload: the server answers from the Content-Length alone and closes, so the
    client's sending may break off; the answer is read all the same."""
    import http.client

    body, content_type = multipart({"model": "builtin/starry-night"}, {"photo": ("big.png", b"\0" * 21_000_000)})
    host, port = base.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=60)
    try:
        connection.request("POST", "/api/stylize", body=body, headers={"Content-Type": content_type})
    except (BrokenPipeError, ConnectionResetError):
        pass
    response = connection.getresponse()
    return response.status, response.read()


def post_files(url: str, fields: dict, files: dict):
    body, content_type = multipart(fields, files)
    return http("POST", url, data=body, headers={"Content-Type": content_type})


def test_bad_uploads_and_paths_get_clear_errors_and_write_nothing_outside(server):
    import json

    base, data = server
    status, body = post_files(f"{base}/api/stylize", {"model": "builtin/starry-night"},
                              {"photo": ("../../escape.png", b"not an image at all")})
    assert status == 400 and "not a readable image" in json.loads(body)["error"]
    status, body = oversized_upload(base)
    assert status == 413 and "larger than 20 MB" in json.loads(body)["error"]
    status, _ = http("GET", f"{base}/results/..%2F..%2Fetc%2Fpasswd")
    assert status == 404
    status, body = http("POST", f"{base}/api/sample", data=b'{"model": "builtin/brick", "width": "99999"}',
                        headers={"Content-Type": "application/json"})
    assert status == 400 and "between 16 and 2048" in json.loads(body)["error"]
    status, body = http("POST", f"{base}/api/sample", data=b'{"model": "../../x"}',
                        headers={"Content-Type": "application/json"})
    assert status == 400 and "no model" in json.loads(body)["error"]
    assert not (data.parent / "escape.png").exists() and not Path("escape.png").exists()
    written = {path.relative_to(data).parts[0] for path in data.rglob("*")}
    assert written <= {"results", "examples", "models"}


@pytest.mark.real_weights
def test_stylizing_with_refine_steps_fits_the_net_to_the_photo_first(server):
    import json

    base, data = server
    buffer = io.BytesIO()
    Image.open(PHOTO).resize((96, 64)).save(buffer, format="PNG")
    results = {}
    for steps in ("0", "2"):
        status, body = post_files(f"{base}/api/stylize", {"model": "builtin/night-cafe", "refine": steps},
                                  {"photo": ("p.png", buffer.getvalue())})
        assert status == 200, body
        after = json.loads(body)["after"]
        results[steps] = Image.open(data / "results" / after.rsplit("/", 1)[-1])
        assert results[steps].size == (96, 64)
    assert results["0"].tobytes() != results["2"].tobytes()
    status, body = post_files(f"{base}/api/stylize", {"model": "builtin/night-cafe", "refine": "51"},
                              {"photo": ("p.png", buffer.getvalue())})
    assert status == 400 and "refine" in json.loads(body)["error"]


def test_two_tabs_at_once_and_a_second_job_while_one_runs(server):
    import json
    from concurrent.futures import ThreadPoolExecutor

    base, _ = server
    request = json.dumps({"model": "builtin/pebbles", "width": "64", "height": "64"}).encode()
    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: http("POST", f"{base}/api/sample", data=request,
                                               headers={"Content-Type": "application/json"}), range(4)))
    assert [status for status, _ in answers] == [200] * 4
    example = (TEXTURES / "pebbles.png").read_bytes()
    first, body = post_files(f"{base}/api/train", {"iterations": "400", "size": "64", "name": "slow"},
                             {"example": ("p.png", example)})
    assert first == 202
    job = json.loads(body)["id"]
    second, body = post_files(f"{base}/api/train", {"iterations": "5", "size": "64"}, {"example": ("p.png", example)})
    assert second == 409 and "is running" in json.loads(body)["error"]
    http("POST", f"{base}/api/jobs/{job}/cancel")
    deadline = time.time() + 120
    while json.loads(http("GET", f"{base}/api/jobs/{job}")[1])["state"] == "running" and time.time() < deadline:
        time.sleep(0.2)
    assert json.loads(http("GET", f"{base}/api/jobs/{job}")[1])["state"] == "cancelled"
    models = json.loads(http("GET", f"{base}/api/models")[1])["models"]
    assert not any(model["id"].startswith("trained/slow") for model in models)  # nothing half-trained listed


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not (CHROMIUM and CHROMEDRIVER):
        reason = "no chromium and chromedriver on this machine (the README's set-up installs them)"
        print(f"\ntexnet: browser tests skipped: {reason}")
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1000", f"--user-data-dir={tmp_path_factory.mktemp('profile')}"):
        options.add_argument(flag)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads
    yield driver
    driver.quit()


def wait_for(driver, condition, seconds=120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, seconds, poll_frequency=0.2).until(lambda _: condition())


def element(driver, test_id, index=0):
    from selenium.webdriver.common.by import By

    found = driver.find_elements(By.CSS_SELECTOR, f"[data-testid='{test_id}']")
    return found[index] if len(found) > index else None


def loaded_size(driver, test_id, index=0):
    """(naturalWidth, naturalHeight) of an image once it has loaded, else None."""
    image = element(driver, test_id, index)
    if image is None:
        return None
    size = driver.execute_script("return arguments[0].complete && arguments[0].naturalWidth ? "
                                 "[arguments[0].naturalWidth, arguments[0].naturalHeight] : null", image)
    return tuple(size) if size else None


def screenshot(driver, name):
    folder = os.environ.get("TEXNET_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / f"{name}.png"))


def fill(driver, test_id, value):
    field = element(driver, test_id)
    field.clear()
    field.send_keys(str(value))


def set_number(driver, form_id, name, value):
    driver.execute_script(f"document.querySelector('#{form_id} [name={name}]').value = arguments[0]", str(value))


def test_sampling_in_the_browser_shows_images_of_the_size_asked_and_downloads(server, browser):
    base, _ = server
    browser.get(base)
    wait_for(browser, lambda: loaded_size(browser, "model-builtin/brick") is None or element(browser, "model-builtin/brick"))
    element(browser, "model-builtin/brick").click()
    set_number(browser, "sample-form", "width", 100)
    set_number(browser, "sample-form", "height", 80)
    set_number(browser, "sample-form", "count", 2)
    element(browser, "sample").click()
    wait_for(browser, lambda: loaded_size(browser, "sample-image", 1))
    assert loaded_size(browser, "sample-image", 0) == (100, 80) == loaded_size(browser, "sample-image", 1)
    wait_for(browser, lambda: loaded_size(browser, "tiled-image", 0))
    assert loaded_size(browser, "tiled-image", 0) == (300, 240)  # the 3x3 preview
    assert "ms" in element(browser, "sample-time").text
    screenshot(browser, "serve-textures")
    element(browser, "download-sample").click()
    wait_for(browser, lambda: [p for p in browser.downloads.iterdir() if p.suffix == ".png"], 30)
    downloaded = next(p for p in browser.downloads.iterdir() if p.suffix == ".png")
    with Image.open(downloaded) as image:
        assert image.size == (100, 80)


def test_stylizing_an_upload_shows_before_and_after_and_errors_are_shown(server, browser, tmp_path):
    base, _ = server
    browser.get(base)
    element(browser, "tab-stylize").click()
    wait_for(browser, lambda: element(browser, "model-builtin/starry-night"))
    element(browser, "model-builtin/starry-night").click()
    photo = tmp_path / "photo.jpg"
    Image.open(PHOTO).resize((300, 200)).save(photo)
    element(browser, "photo").send_keys(str(photo))
    element(browser, "stylize").click()
    wait_for(browser, lambda: loaded_size(browser, "after"))
    assert loaded_size(browser, "after") == loaded_size(browser, "before") == (300, 200)
    screenshot(browser, "serve-stylize")
    junk = tmp_path / "junk.jpg"
    junk.write_bytes(b"this is not a photo")
    element(browser, "photo").send_keys(str(junk))
    element(browser, "stylize").click()
    wait_for(browser, lambda: element(browser, "error").is_displayed())
    assert "not a readable image" in element(browser, "error").text


@pytest.mark.real_weights
def test_training_in_the_browser_shows_progress_lists_the_model_and_compares_with_gatys(server, browser, tmp_path):
    base, _ = server
    browser.get(base)
    element(browser, "tab-train").click()
    example = tmp_path / "weave.png"
    Image.open(TEXTURES / "burlap.png").save(example)
    element(browser, "example").send_keys(str(example))
    fill(browser, "model-name", "Weave test")
    fill(browser, "iterations", 8)
    fill(browser, "train-size", 64)
    element(browser, "train").click()
    wait_for(browser, lambda: "done" in element(browser, "train-status").text, 180)
    assert element(browser, "preview") is not None and loaded_size(browser, "preview")
    assert "8 of 8" in element(browser, "train-status").text or "model weave-test" in element(browser, "train-status").text
    element(browser, "tab-textures").click()
    wait_for(browser, lambda: element(browser, "model-trained/weave-test"))
    element(browser, "tab-train").click()
    fill(browser, "gatys-iterations", 3)
    element(browser, "gatys").click()
    wait_for(browser, lambda: loaded_size(browser, "compare-gatys") and loaded_size(browser, "compare-sample"), 180)
    assert loaded_size(browser, "compare-gatys") == (256, 256) == loaded_size(browser, "compare-sample")
    assert "s" in element(browser, "gatys-time").text and "ms" in element(browser, "sample-time-ff").text
    screenshot(browser, "serve-train")
