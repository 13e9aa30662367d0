"""The explorer page in a real browser: headless Chromium, driven by Playwright for Python.

The test starts explorer.py's server with the shipped model, opens the page, draws digits with
real mouse moves (and a finger, on a phone-sized page), and checks what a learner would see: the
ten probability bars, every layer's feature-map grid, the Grad-CAM image, and the drawn digit as
the prediction. Every request the
page makes goes through a route that lets only this server's address through and records (and
blocks) anything else; the test fails if there was any.

Needs Debian's Chromium (`apt-get install chromium`, /usr/bin/chromium or $CHROMIUM) and
`pip install playwright==1.65.2` (in requirements.txt); `playwright install` is not needed.
The screenshot goes to pytest's tmp folder, or to $EXPLORER_SCREENSHOT when set:
    EXPLORER_SCREENSHOT=plots/explorer.png python -m pytest tests/test_explorer_browser.py
"""
import os
import shutil

import pytest

import explorer

CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def require_browser():
    """Playwright's sync API, or a skip that says exactly what is missing and how to install it."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed: run `pip install playwright==1.65.2` "
                    "(it is in requirements.txt). This browser test cannot run without it.")
    if not os.path.isfile(CHROMIUM) or not os.access(CHROMIUM, os.X_OK):
        pytest.skip(f"Chromium not found at {CHROMIUM}: install Debian's package with "
                    f"`apt-get update && apt-get install -y chromium` (as .ci/run does), or set $CHROMIUM "
                    f"to a Chromium binary. This browser test cannot run without it.")
    return sync_playwright


@pytest.fixture(scope="module")
def server():
    model, framework, parameters = explorer.load_model_file(explorer.DEFAULT_MODEL_PATH)
    server = explorer.start_server(explorer.Explorer(model, framework, parameters, name="simple_cnn.npz", seed=0))
    with explorer.one_blas_thread():  # as `python explorer.py` runs (see one_blas_thread)
        yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_page(server):
    """A page of the explorer, with every request outside the server blocked and recorded."""
    sync_playwright = require_browser()
    outside, console_errors = [], []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = open_page(browser, server.url, outside, console_errors, viewport={"width": 1300, "height": 900})
        yield page, outside, console_errors
        page.context.close()
        browser.close()


def open_page(browser, base, outside, console_errors, **context_options):
    """Open the explorer in a new browser context whose requests outside `base` are blocked and recorded."""

    def only_local(route):
        if route.request.url.startswith(base):
            route.continue_()
        else:
            outside.append(route.request.url)
            route.abort()

    context = browser.new_context(device_scale_factor=1, **context_options)
    context.route("**/*", only_local)
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and console_errors.append(message.text))
    page.on("pageerror", lambda error: console_errors.append(str(error)))
    page.goto(base)
    page.wait_for_selector("body[data-ready='true']", state="attached", timeout=10_000)
    return page


def draw(page, strokes):
    """Draw strokes on the pad with the mouse; each stroke is a list of (x, y) in [0, 1] of the pad."""
    box = page.locator("#pad").bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=8)
        page.mouse.up()


def wait_for_prediction(page):
    """Wait until the page shows the answer to its latest drawing: at least one prediction since
    Clear, and no request pending or scheduled (body[data-busy] is "false")."""
    page.wait_for_selector("body[data-busy='false'][data-predictions]:not([data-predictions='0'])",
                           state="attached", timeout=10_000)


def canvas_is_painted(page, selector):
    """True when the canvas has at least one pixel that is not fully transparent."""
    return page.eval_on_selector(selector, """canvas => {
        const data = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
        return false; }""")


def test_page_loads_model_and_filters(browser_page):
    page, outside, console_errors = browser_page
    assert "simple_cnn.npz" in page.text_content("#model-info")
    assert page.locator("#filters canvas").count() == 16  # conv1: 16 filters of 3x3
    assert page.locator(".map-block").count() == 6  # conv1, relu1, pool1, conv2, relu2, pool2
    assert page.locator("#bars .bar").count() == 10
    assert outside == [] and console_errors == []


def test_drawn_one_is_recognized_and_every_panel_appears(browser_page, tmp_path):
    page, outside, console_errors = browser_page
    page.click("#clear")
    draw(page, [[(0.5, 0.15), (0.5, 0.85)]])  # a vertical stroke: a 1
    wait_for_prediction(page)
    assert page.text_content("#predicted") == "1"
    values = [float(text.rstrip("%")) for text in page.locator("#bars .value").all_text_contents()]
    assert len(values) == 10 and abs(sum(values) - 100) < 1.0 and max(values) == values[1]
    assert page.locator(".bar.predicted").get_attribute("data-class") == "1"
    blocks = page.locator(".map-block.drawn")
    assert blocks.count() == 6
    for index in range(6):
        assert canvas_is_painted(page, f".map-block:nth-child({index + 1}) canvas")
    for selector in ("#gradcam", "#step-box", "#step-scaled", "#step-input"):
        assert canvas_is_painted(page, selector), selector
    assert page.get_attribute("#gradcam", "data-shown-class") == "1"
    assert "the prediction" in page.text_content("#gradcam-caption")
    # Clicking another class shows its Grad-CAM instead.
    page.click(".bar[data-class='7']")
    assert page.get_attribute("#gradcam", "data-shown-class") == "7"
    assert page.locator(".bar.selected").get_attribute("data-class") == "7"
    page.click(".bar[data-class='1']")
    page.screenshot(path=str(tmp_path / "explorer_one.png"), full_page=True)
    assert outside == [], f"the page asked hosts other than the local server: {outside}"
    assert console_errors == []


def test_drawn_seven_and_screenshot(browser_page, tmp_path):
    page, outside, console_errors = browser_page
    page.click("#clear")
    draw(page, [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]])  # a top bar, then a diagonal down: a 7
    wait_for_prediction(page)
    assert page.text_content("#predicted") == "7"
    screenshot = os.environ.get("EXPLORER_SCREENSHOT") or str(tmp_path / "explorer.png")
    page.screenshot(path=screenshot, full_page=True)
    assert os.path.getsize(screenshot) > 10_000
    assert outside == [] and console_errors == []


def test_random_test_image_shows_its_label(browser_page):
    page, outside, console_errors = browser_page
    page.click("#clear")
    page.click("#random")
    wait_for_prediction(page)
    source = page.text_content("#source")
    assert "MNIST test image #" in source and "true label" in source
    assert page.text_content("#predicted") in "0123456789"
    assert "already preprocessed" in page.text_content("#preprocess-note")
    page.click("#clear")
    assert page.text_content("#predicted") == "–"
    assert outside == [] and console_errors == []


def test_a_finger_draws_too(browser_page, server):
    """Touch input on a phone-sized screen: a vertical swipe is a 1, and the page does not scroll."""
    page, outside, console_errors = browser_page
    phone = open_page(page.context.browser, server.url, outside, console_errors,
                      viewport={"width": 400, "height": 800}, has_touch=True, is_mobile=True)
    box = phone.locator("#pad").bounding_box()
    x, top, height = box["x"] + box["width"] / 2, box["y"], box["height"]
    touch = phone.context.new_cdp_session(phone)  # Playwright has no touch move; Chromium's protocol does
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": top + 0.15 * height}]})
    for fraction in (0.3, 0.45, 0.6, 0.75, 0.85):
        point = {"x": x, "y": top + fraction * height}
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for_prediction(phone)
    assert phone.text_content("#predicted") == "1"
    assert phone.evaluate("() => window.scrollY") == 0
    phone.context.close()
    assert outside == [] and console_errors == []


def test_requests_to_other_hosts_are_caught(browser_page):
    """The guard itself works: a navigation to another host is blocked and recorded."""
    page, outside, _ = browser_page
    other = page.context.new_page()
    with pytest.raises(Exception):
        other.goto("http://example.invalid/")
    other.close()
    assert outside == ["http://example.invalid/"]
    outside.clear()
