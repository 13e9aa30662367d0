"""The explorer page in a real browser: headless Chromium, driven by Playwright for Python.

The test starts explorer.py's server with the shipped model, opens the page, draws digits with
real mouse moves (and a finger, on a phone-sized page), and checks what a learner would see: the
ten probability bars, every layer's feature-map grid, the Grad-CAM image, the drawn digit as
the prediction, and how a clicked conv map is made (its sum checked against the model's map); and
the awkward cases: drawing before the model has loaded, names from the server shown as text, the
colour legend's labels under the bar, two fingers on the pad, a server that stopped. Then every
learner: the pad and the answer in view together in windows from 320 px wide, portrait and
landscape; a keyboard-only path; axe-core's scan (axe-playwright-python, which ships axe-core: no
download) with no violation; the live region that says each prediction; outlines of at least 3:1.
Every request the page makes goes through a route that lets only this server's address through and
records (and blocks) anything else; the test fails if there was any.

Needs Debian's Chromium (`apt-get install chromium`, /usr/bin/chromium or $CHROMIUM),
`pip install playwright==1.65.2 axe-playwright-python==0.1.8` (in requirements.txt); `playwright
install` is not needed. The screenshots go to pytest's tmp folder, or to $EXPLORER_SCREENSHOT (the
page with a drawn 7), $EXPLORER_MAP_SCREENSHOT (how a conv2 map is made) and
$EXPLORER_SCREENSHOT_DIR (explorer_<width>x<height>.png for each window size) when set:
    EXPLORER_SCREENSHOT=plots/explorer.png EXPLORER_MAP_SCREENSHOT=plots/explorer_map.png \
        EXPLORER_SCREENSHOT_DIR=plots python -m pytest tests/test_explorer_browser.py
"""
import json
import os
import shutil

import numpy as np
import pytest

import explorer
import frameworks

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


def open_page(browser, base, outside, console_errors, wait=True, **context_options):
    """Open the explorer in a new browser context whose requests outside `base` are blocked and recorded;
    wait=False returns before the page has its model."""

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
    page.goto(base, wait_until="domcontentloaded" if not wait else "load")
    if wait:
        page.wait_for_selector("body[data-ready='true']", state="attached", timeout=10_000)
    return page


def draw(page, strokes):
    """Draw strokes on the pad with the mouse; each stroke is a list of (x, y) in [0, 1] of the pad."""
    page.locator("#pad").scroll_into_view_if_needed()
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
    assert page.locator(".bar[aria-pressed='true']").get_attribute("data-class") == "7"
    assert page.locator(".bar[aria-pressed='true']").count() == 1
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
    # The live region says the prediction once the pen is up.
    assert page.text_content("#status") == f"Prediction 7, {page.text_content('#confidence')}."
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
    assert page.is_visible("#test-image-note") and not page.is_visible("#preprocess-note")
    assert "already preprocessed" in page.text_content("#test-image-note")
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
    from playwright.sync_api import Error as PlaywrightError  # installed: browser_page needs it

    with pytest.raises(PlaywrightError, match="ERR_"):  # the route aborts it: a network error, not a page
        other.goto("http://example.invalid/")
    other.close()
    assert outside == ["http://example.invalid/"]
    outside.clear()


# --- How one feature map is made ---

def click_map(page, layer, channel):
    """Click the centre of map `channel` in the grid of `layer`; returns the /api/feature-map answer."""
    columns, tile = 8, 42 + 2  # COLUMNS and TILE + its grid line, as in explorer.js
    position = {"x": (channel % columns) * tile + tile / 2, "y": (channel // columns) * tile + tile / 2}
    with page.expect_response("**/api/feature-map") as response:
        page.click(f".map-block[data-layer='{layer}'] .map-grid", position=position)  # lands on the map's button
    page.wait_for_selector(f"#map-detail[data-ready='true'][data-layer='{layer}'][data-channel='{channel}']",
                           timeout=10_000)
    return response.value


def test_clicking_a_conv2_map_shows_how_it_is_made(browser_page, server, tmp_path):
    page, outside, console_errors = browser_page
    page.click("#clear")
    draw(page, [[(0.3, 0.25), (0.7, 0.25), (0.7, 0.5), (0.3, 0.5), (0.3, 0.25)], [(0.7, 0.5), (0.7, 0.85)]])  # a 9
    wait_for_prediction(page)
    response = click_map(page, "conv2", 9)
    answer = response.json()
    # The page: one card per map of pool1 (input, filter slice, correlation), then sum + bias = result.
    assert page.text_content("#detail-title") == "How map 9 of conv2 is made"
    assert page.locator("#detail-channels .detail-card").count() == 16
    assert page.locator("#detail-channels .detail-card canvas").count() == 3 * 16
    assert page.locator("#detail-sum canvas").count() == 2
    assert float(page.text_content("#detail-sum .bias").split()[-1]) == pytest.approx(answer["bias"], rel=1e-3)
    for index in (1, 16):
        for column in (1, 2, 3):
            card = f"#detail-channels .detail-card:nth-child({index})"
            assert canvas_is_painted(page, f"{card} canvas:nth-of-type({column})")
    # What the API sent: the correlations summed, plus the bias, are the result and the model's own map ...
    assert answer["below"] == "pool1" and answer["stride"] == [1, 1] and answer["padding"] == [1, 1]
    inputs, kernels, correlations, total, result, output = (
        explorer.decode_array(answer[key]) for key in ("inputs", "kernels", "correlations", "sum", "result", "output"))
    assert inputs.shape == (16, 14, 14) and kernels.shape == (16, 3, 3) and correlations.shape == (16, 14, 14)
    image = np.array(json.loads(response.request.post_data)["image"], dtype=np.float32)[None, None]
    conv2 = frameworks.get_activations(server.explorer.model, image, ["conv2"])["conv2"][0, 9]  # (14, 14)
    limit = float(page.get_attribute("#map-detail", "data-limit"))
    tolerance = 1e-5 * max(1.0, limit)  # float32 rounding of 16 x 9 products and their sums
    np.testing.assert_allclose(correlations.sum(axis=0, dtype=np.float64), total, atol=tolerance)
    np.testing.assert_allclose(total + answer["bias"], result, atol=tolerance)
    np.testing.assert_allclose(result, conv2, atol=tolerance)
    np.testing.assert_array_equal(output, conv2)
    # ... and the page's own sum equals the model's map, to float32 precision.
    assert float(page.get_attribute("#map-detail", "data-max-difference")) <= tolerance
    screenshot = os.environ.get("EXPLORER_MAP_SCREENSHOT") or str(tmp_path / "explorer_map.png")
    page.locator("#map-detail").screenshot(path=screenshot)
    assert os.path.getsize(screenshot) > 10_000
    # A conv1 map is made from the digit itself; a new drawing updates the open view; Close hides it.
    answer = click_map(page, "conv1", 3).json()
    assert answer["below"] is None and page.locator("#detail-channels .detail-card").count() == 1
    assert page.text_content("#detail-channels figcaption") == "the digit"
    assert float(page.get_attribute("#map-detail", "data-max-difference")) <= tolerance
    with page.expect_response("**/api/feature-map"):
        draw(page, [[(0.5, 0.85), (0.5, 0.95)]])
    page.click("#detail-close")
    assert not page.is_visible("#map-detail")
    assert outside == [] and console_errors == []


@pytest.mark.parametrize("legend, labels", [("#legend", ".legend .legend-labels"),
                                            ("#gradcam-legend", ".heat-legend .legend-labels")])
def test_legend_labels_line_up_with_the_bar(browser_page, legend, labels):
    page, _, _ = browser_page
    bar = page.locator(legend).bounding_box()
    low, zero, high = (page.locator(f"{labels} span").nth(index).bounding_box() for index in range(3))
    assert abs(low["x"] - bar["x"]) <= 1 and abs(high["x"] + high["width"] - bar["x"] - bar["width"]) <= 1
    if legend == "#legend":  # the maps' legend has a "0" in the middle
        assert abs(zero["x"] + zero["width"] / 2 - (bar["x"] + bar["width"] / 2)) <= 1
    assert low["y"] >= bar["y"] + bar["height"] - 1  # under the bar


def test_drawing_before_the_model_has_answered(browser_page, server):
    """A learner who draws while GET /api/model is still on its way gets no error, and the prediction
    once the model arrives."""
    page, outside, console_errors = browser_page
    held = []
    early = open_page(page.context.browser, server.url, outside, console_errors,
                      viewport={"width": 1300, "height": 900})
    early.route("**/api/model", lambda route: held.append(route))  # the answer is held back until released below
    early.reload(wait_until="domcontentloaded")  # the page again, from the start, its model not yet answered
    early.wait_for_function("() => document.readyState === 'complete'")
    assert early.get_attribute("body", "data-ready") is None and len(held) == 1
    draw(early, [[(0.5, 0.15), (0.5, 0.85)]])
    assert early.text_content("#predicted") == "–"
    held[0].continue_()
    wait_for_prediction(early)
    assert early.text_content("#predicted") == "1"
    early.context.close()
    assert outside == [] and console_errors == []


def test_names_from_the_server_are_text_not_html(browser_page, server):
    """A layer name that looks like HTML is shown as text: the page builds no markup from server strings."""
    page, outside, console_errors = browser_page
    other = open_page(page.context.browser, server.url, outside, console_errors, wait=False)
    name = '<img id="injected" src="/x">'

    def rename_first_layer(route):
        info = route.fetch().json()
        info["layers"][0]["name"] = info["map_layers"][0] = name
        route.fulfill(json=info)

    other.route("**/api/model", rename_first_layer)
    other.reload()
    other.wait_for_selector("body[data-ready='true']", state="attached", timeout=10_000)
    assert other.locator("#injected").count() == 0
    assert other.locator(".map-title strong").first.text_content() == name
    other.context.close()
    assert outside == [] and console_errors == []


# --- Every learner: small windows, fingers, the keyboard, screen readers ---

WINDOWS = [(375, 812), (812, 375), (768, 1024), (1280, 800), (320, 568)]  # phone upright and sideways, tablet, laptop


def in_view(page, selector):
    """True when the element's whole box lies inside the window (the page not scrolled)."""
    box = page.locator(selector).bounding_box()
    size = page.viewport_size
    return (box is not None and box["x"] >= 0 and box["y"] >= 0
            and box["x"] + box["width"] <= size["width"] and box["y"] + box["height"] <= size["height"])


@pytest.mark.parametrize("width, height", WINDOWS, ids=[f"{w}x{h}" for w, h in WINDOWS])
def test_the_answer_stays_in_view_beside_the_pad(browser_page, server, width, height):
    """After drawing, the pad, the predicted digit, its confidence and the runners-up are all in the
    window; nothing sticks out sideways; with a finger every control is at least 44 px high."""
    page, outside, console_errors = browser_page
    touch = width < 1000  # phones and tablets: a finger
    window = open_page(page.context.browser, server.url, outside, console_errors,
                       viewport={"width": width, "height": height}, has_touch=touch, is_mobile=touch)
    box = window.locator("#pad").bounding_box()
    strokes = [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]]  # a 7
    for stroke in strokes:
        window.mouse.move(box["x"] + stroke[0][0] * box["width"], box["y"] + stroke[0][1] * box["height"])
        window.mouse.down()
        for x, y in stroke[1:]:
            window.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=8)
        window.mouse.up()
    wait_for_prediction(window)
    assert window.text_content("#predicted") == "7"
    assert window.evaluate("() => window.scrollY") == 0
    for selector in ("#pad", "#predicted", "#confidence", "#runners-up"):
        assert in_view(window, selector), f"{selector} is out of the {width}x{height} window"
    assert window.evaluate("() => document.documentElement.scrollWidth") <= width  # no sideways scrolling
    panel = window.locator("#draw-panel").bounding_box()
    assert box["x"] >= panel["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"]  # the pad fits its panel
    if touch:
        heights = window.eval_on_selector_all(".buttons button, .bar", "nodes => nodes.map(n => n.offsetHeight)")
        assert min(heights) >= 44, heights
    directory = os.environ.get("EXPLORER_SCREENSHOT_DIR")
    if directory and (width, height) != (320, 568):  # the four sizes the README shows
        window.screenshot(path=os.path.join(directory, f"explorer_{width}x{height}.png"))
    window.context.close()
    assert outside == [] and console_errors == []


def focused(page):
    """A short description of the focused element: its id, or its class and data attributes."""
    return page.evaluate("""() => { const node = document.activeElement;
        return node.id || `${node.className}:${node.dataset.class ?? ''}:${node.dataset.channel ?? ''}`; }""")


def tab_to(page, wanted, limit=40):
    """Press Tab until focused(page) starts with `wanted`; returns the number of presses."""
    for presses in range(1, limit + 1):
        page.keyboard.press("Tab")
        if focused(page).startswith(wanted):
            return presses
    raise AssertionError(f"Tab never reached {wanted!r} in {limit} presses (ended on {focused(page)!r})")


def test_keyboard_only_path(browser_page, server):
    """With the keyboard alone: load a test image, read the prediction, choose another digit's
    Grad-CAM, open how a conv1 map is made, close it with Escape and with Close; focus comes back."""
    page, outside, console_errors = browser_page
    keyboard = open_page(page.context.browser, server.url, outside, console_errors,
                         viewport={"width": 1280, "height": 800})
    assert tab_to(keyboard, "random") <= 2  # Clear, then Random test image: the pad takes no focus
    keyboard.keyboard.press("Enter")
    wait_for_prediction(keyboard)
    predicted = keyboard.text_content("#predicted")
    status = keyboard.text_content("#status")
    assert status.startswith(f"Prediction {predicted}, ") and "true label" in status
    # The bars are buttons: the shown one is pressed; Enter on another shows its Grad-CAM.
    other = "3" if predicted != "3" else "8"
    tab_to(keyboard, f"bar:{other}")
    assert keyboard.evaluate("() => document.activeElement.tagName") == "BUTTON"
    keyboard.keyboard.press("Enter")
    assert keyboard.get_attribute(f".bar[data-class='{other}']", "aria-pressed") == "true"
    assert keyboard.get_attribute(f".bar[data-class='{predicted}']", "aria-pressed") == "false"
    assert keyboard.get_attribute("#gradcam", "data-shown-class") == other
    # The maps of conv1: one Tab stop, the arrow keys move, Enter opens the view of how one is made.
    tab_to(keyboard, "tile:")
    assert keyboard.get_attribute(".tile:focus", "data-channel") == "0"
    for key in ("ArrowRight", "ArrowRight", "ArrowDown", "ArrowLeft"):
        keyboard.keyboard.press(key)
    assert focused(keyboard) == "tile::9"  # 0 -> 1 -> 2 -> 10 -> 9, with 8 maps a row
    keyboard.keyboard.press("Enter")
    keyboard.wait_for_selector("#map-detail[data-ready='true'][data-layer='conv1'][data-channel='9']", timeout=10_000)
    assert focused(keyboard) == "detail-title"
    keyboard.keyboard.press("Escape")
    assert not keyboard.is_visible("#map-detail")
    assert focused(keyboard) == "tile::9" and keyboard.get_attribute(".tile:focus", "tabindex") == "0"
    # Again, and closed with the Close button: the focus returns to the same map.
    keyboard.keyboard.press("Enter")
    keyboard.wait_for_selector("#map-detail[data-ready='true']", timeout=10_000)
    keyboard.keyboard.press("Tab")
    assert focused(keyboard) == "detail-close"
    keyboard.keyboard.press("Enter")
    assert not keyboard.is_visible("#map-detail") and focused(keyboard) == "tile::9"
    # Nothing was drawn: the pad shows the test image only.
    assert "MNIST test image #" in keyboard.text_content("#source")
    keyboard.context.close()
    assert outside == [] and console_errors == []


@pytest.mark.parametrize("width, height", [(1280, 800), (375, 812)], ids=["1280x800", "375x812"])
def test_axe_core_finds_no_violation(browser_page, server, width, height):
    """axe-core (from axe-playwright-python, no download) on the page with a prediction and the view of a
    conv2 map open: no violation of any impact."""
    from axe_playwright_python.sync_playwright import Axe
    page, outside, console_errors = browser_page
    scanned = open_page(page.context.browser, server.url, outside, console_errors,
                        viewport={"width": width, "height": height})
    assert Axe().run(scanned).violations_count == 0, Axe().run(scanned).generate_report()  # before any drawing
    draw(scanned, [[(0.5, 0.15), (0.5, 0.85)]])
    wait_for_prediction(scanned)
    scanned.locator(".map-block[data-layer='conv2'] .tile[data-channel='4']").click()
    scanned.wait_for_selector("#map-detail[data-ready='true']", timeout=10_000)
    results = Axe().run(scanned)
    assert results.violations_count == 0, results.generate_report()
    scanned.context.close()
    assert outside == [] and console_errors == []


def contrast(page, colour, background):
    """WCAG's contrast ratio of two CSS colours, computed in the page."""
    return page.evaluate("""([colour, background]) => {
        const rgb = (css) => { const probe = document.createElement("canvas").getContext("2d");
            probe.fillStyle = css; probe.fillRect(0, 0, 1, 1); return [...probe.getImageData(0, 0, 1, 1).data]; };
        const luminance = (css) => { const [r, g, b] = rgb(css).slice(0, 3).map((v) => {
            v /= 255; return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; });
            return 0.2126 * r + 0.7152 * g + 0.0722 * b; };
        const [a, b] = [luminance(colour), luminance(background)].sort((x, y) => y - x);
        return (a + 0.05) / (b + 0.05); }""", [colour, background])


def test_outlines_contrast_at_least_three_to_one(browser_page):
    """The borders that show a control (buttons) or a state (the chosen bar), and the focus ring,
    against the panel and the fill beside them: at least 3:1 (WCAG 1.4.11)."""
    page, _, _ = browser_page
    page.click("#clear")
    page.click("#random")
    wait_for_prediction(page)
    style = lambda selector, name: page.eval_on_selector(  # noqa: E731
        selector, f"node => getComputedStyle(node).{name}")
    panel = style("#draw-panel", "backgroundColor")
    assert contrast(page, style("#clear", "borderTopColor"), panel) >= 3
    assert contrast(page, style("#clear", "borderTopColor"), style("#clear", "backgroundColor")) >= 3
    chosen = ".bar[aria-pressed='true']"
    assert contrast(page, style(chosen, "borderTopColor"), panel) >= 3
    assert contrast(page, style(chosen, "borderTopColor"), style(chosen, "backgroundColor")) >= 3
    page.focus("#random")
    page.keyboard.press("Shift+Tab")  # a keyboard focus, so that :focus-visible applies
    assert contrast(page, style("#clear", "outlineColor"), panel) >= 3


def test_gradcam_has_one_scale_and_a_legend(browser_page):
    """Every class's Grad-CAM is drawn on one scale (0 to the largest value of all ten maps), which
    the legend and the caption give; an unlikely class shows its own, lower peak on it."""
    page, _, _ = browser_page
    page.click("#clear")
    draw(page, [[(0.5, 0.15), (0.5, 0.85)]])  # a 1
    wait_for_prediction(page)
    limits, peaks = set(), {}
    for k in range(10):
        page.click(f".bar[data-class='{k}']")
        limits.add(page.get_attribute("#gradcam", "data-limit"))
        peaks[k] = float(page.get_attribute("#gradcam", "data-peak"))
        assert "scale 0 to" in page.text_content("#gradcam-caption") or "no positive evidence" in \
            page.text_content("#gradcam-caption")
    assert len(limits) == 1
    limit = float(limits.pop())
    assert max(peaks.values()) == pytest.approx(limit) and all(peak <= limit for peak in peaks.values())
    assert float(page.text_content("#gradcam-max")) == pytest.approx(limit, rel=1e-2)
    assert canvas_is_painted(page, "#gradcam-legend")
    assert "Grad-CAM for" in page.get_attribute("#gradcam", "aria-label")


CAPTIONS = """() => [...document.querySelectorAll(
    "[aria-label], figcaption, .caption, #confidence, #runners-up, .map-range, #gradcam-max")]
    .map((node) => node.getAttribute("aria-label") ?? node.textContent)"""  # every name and caption, in order


def test_clear_resets_every_caption_and_name(browser_page):
    page, _, _ = browser_page
    page.click("#clear")
    initial = page.evaluate(CAPTIONS)
    draw(page, [[(0.3, 0.2), (0.6, 0.5), (0.3, 0.8)]])
    wait_for_prediction(page)
    assert page.text_content("#scaled-caption") != "scaled into 20×20"  # a drawing's captions have its numbers
    page.click("#clear")
    after = page.evaluate(CAPTIONS)
    assert after == initial
    assert page.text_content("#status") == "Pad cleared."


def test_a_second_finger_does_not_draw(browser_page, server):
    """Two fingers on the pad: only the first draws (a vertical 1); the second finger's path stays black."""
    page, outside, console_errors = browser_page
    phone = open_page(page.context.browser, server.url, outside, console_errors,
                      viewport={"width": 400, "height": 800}, has_touch=True, is_mobile=True)
    box = phone.locator("#pad").bounding_box()
    at = lambda x, y, identifier: {"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"],  # noqa: E731
                                   "id": identifier}
    touch = phone.context.new_cdp_session(phone)
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [at(0.5, 0.15, 0)]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [at(0.5, 0.15, 0), at(0.1, 0.9, 1)]})
    for step, fraction in enumerate((0.3, 0.45, 0.6, 0.75, 0.85)):
        second = at(0.1 + 0.15 * (step + 1), 0.9, 1)  # a horizontal scribble along the bottom
        touch.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [at(0.5, fraction, 0), second]})
    touch.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    wait_for_prediction(phone)
    assert phone.text_content("#predicted") == "1"
    ink_at_bottom = phone.eval_on_selector("#pad", """pad => {
        const data = pad.getContext("2d").getImageData(0, Math.round(0.9 * pad.height), pad.width, 1).data;
        let ink = 0; for (let i = 0; i < data.length; i += 4) ink += data[i] > 0; return ink; }""")
    assert ink_at_bottom == 0
    phone.context.close()
    assert outside == [] and console_errors == []


def test_a_stopped_server_is_named_with_what_to_do(browser_page, server):
    """With the server gone (its requests fail), the page says to start `python explorer.py` again, in
    the note under the pad and in the live region."""
    page, outside, _ = browser_page
    errors = []  # the browser logs each failed request as a console error: expected here
    gone = open_page(page.context.browser, server.url, outside, errors, viewport={"width": 1280, "height": 800})
    gone.route("**/api/**", lambda route: route.abort("connectionrefused"))
    draw(gone, [[(0.5, 0.15), (0.5, 0.85)]])
    gone.wait_for_selector("#source.error", timeout=10_000)
    assert "python explorer.py" in gone.text_content("#source")
    assert "python explorer.py" in gone.text_content("#status")
    gone.context.close()
    assert outside == []


def test_answers_are_no_larger_than_the_page_needs(browser_page, server):
    """The page asks for its maps and Grad-CAM as 8-bit levels: each answer to a drawing is under 100 KB
    (in float32 it would be about 275 KB), and the levels are within half a level of the model's values."""
    page, _, _ = browser_page
    page.click("#clear")
    answers = []

    def record(response):
        if response.url.endswith("/api/predict"):
            answers.append(response)

    page.on("response", record)
    draw(page, [[(0.25, 0.2), (0.75, 0.2), (0.45, 0.85)]])
    wait_for_prediction(page)
    page.remove_listener("response", record)
    sizes = [len(response.body()) for response in answers]
    print(f"one drawn 7: {len(sizes)} requests to /api/predict, answers of {min(sizes):,} to {max(sizes):,} bytes")
    assert sizes and max(sizes) < 100_000
    assert json.loads(answers[-1].request.post_data)["dtype"] == "int8"
    answer = answers[-1].json()
    image = explorer.decode_array(answer["input"])[None, None]  # (28, 28) -> (1, 1, 28, 28)
    activations = frameworks.get_activations(server.explorer.model, image, server.explorer.map_layers)
    for layer in answer["layers"]:
        assert layer["maps"]["dtype"] == "int8"
        levels = explorer.decode_levels(layer["maps"])
        assert np.abs(levels - activations[layer["name"]][0]).max() <= layer["maps"]["scale"] / 2 + 1e-6


@pytest.mark.parametrize("dtype, status", [("int8", 200), ("float32", 200), ("float16", 400), (8, 400)])
def test_the_dtype_of_an_answer(server, dtype, status):
    """POST /api/predict's "dtype": "int8" (the page's) or "float32" (the default); anything else is a clear 400."""
    import http.client
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    image = np.zeros((28, 28))
    image[8:20, 13:15] = 1.0  # a 1
    connection.request("POST", "/api/predict", json.dumps({"image": image.tolist(), "dtype": dtype}),
                       {"Content-Type": "application/json"})
    response = connection.getresponse()
    answer = json.loads(response.read())
    connection.close()
    assert response.status == status, answer
    if status == 200:
        assert answer["layers"][0]["maps"]["dtype"] == dtype and answer["gradcam"]["maps"]["dtype"] == dtype
        assert answer["input"]["dtype"] == "float32"  # the page sends the input back: it stays exact
    else:
        assert '"dtype" must be "float32" (the default) or "int8"' in answer["error"]
