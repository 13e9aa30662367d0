"""Tests for explorer.py: the JSON API, MNIST's preprocessing, bad requests, and many clients at once.

One server with the shipped model (models/simple_cnn.npz) is shared by the module; requests go
through real HTTP on 127.0.0.1. The browser itself is tested in test_explorer_browser.py.
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time

import cv2
import numpy as np
import pytest

import cnn_from_scratch as scratch
import drawings
import explorer
import visualize_features as vis

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MAP_LAYERS = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]


@pytest.fixture(scope="module")
def session():
    model, framework, parameters = explorer.load_model_file(explorer.DEFAULT_MODEL_PATH)
    return explorer.Explorer(model, framework, parameters, name="simple_cnn.npz", seed=0)


@pytest.fixture(scope="module")
def server(session):
    server = explorer.start_server(session)
    with explorer.one_blas_thread():  # as `python explorer.py` runs (see one_blas_thread)
        yield server
    server.shutdown()
    server.server_close()


def call(server, method, path, body=None, headers=None, connection=None):
    """One request; returns (status, decoded JSON). body: a dict (sent as JSON) or bytes."""
    own = connection is None
    connection = connection or http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    if isinstance(body, dict):
        body = json.dumps(body)
    connection.request(method, path, body, headers or {})
    response = connection.getresponse()
    content = response.read()
    if own:
        connection.close()
    assert response.getheader("Content-Type") == "application/json", content[:200]
    return response.status, json.loads(content)


def drawing_of(image, size=drawings.DRAWING_SIZE, height=60, top=10, left=20):
    """An MNIST digit as a learner might draw it: its ink enlarged to `height` pixels, placed at
    (top, left) of an empty (size, size) drawing; image of shape (28, 28)."""
    rows, columns = np.flatnonzero(image.max(axis=1)), np.flatnonzero(image.max(axis=0))
    ink = image[rows[0]:rows[-1] + 1, columns[0]:columns[-1] + 1]
    width = max(1, round(ink.shape[1] * height / ink.shape[0]))
    enlarged = np.clip(cv2.resize(ink, (width, height), interpolation=cv2.INTER_LINEAR), 0, 1)  # (height, width)
    drawing = np.zeros((size, size), dtype=np.float32)
    drawing[top:top + height, left:left + width] = enlarged
    return drawing


def mass_center(image):
    return np.array(drawings.center_of_mass(image))


def ink_box(image):
    top, left, height, width = drawings.ink_bounding_box(image)
    return height, width


# --- The JSON API ---

def test_model_info(server):
    status, info = call(server, "GET", "/api/model")
    assert status == 200
    assert info["framework"] == "numpy" and info["parameters"] == 206_922 and info["num_classes"] == 10
    assert [layer["name"] for layer in info["layers"]] == MAP_LAYERS + ["flatten1", "dense1", "relu3", "dense2"]
    assert info["layers"][0]["shape"] == [16, 28, 28] and info["layers"][5]["shape"] == [32, 7, 7]
    assert info["map_layers"] == MAP_LAYERS and info["gradcam_layer"] == "relu2"
    assert info["drawing_size"] == 112 and info["image_size"] == 28 and info["box_size"] == 20
    filters = explorer.decode_array(info["filters"]["weights"])
    assert filters.shape == (16, 1, 3, 3) and info["filters"]["layer"] == "conv1"
    assert info["filters"]["limit"] == pytest.approx(np.abs(filters).max())


def test_predict_answer_shapes(server, mnist):
    drawing = drawing_of(mnist.x_test[0, 0])
    status, answer = call(server, "POST", "/api/predict", {"drawing": np.round(drawing, 3).tolist()})
    assert status == 200
    assert len(answer["probabilities"]) == 10 and sum(answer["probabilities"]) == pytest.approx(1)
    assert answer["predicted"] == int(np.argmax(answer["probabilities"])) == mnist.y_test[0]
    assert answer["confidence"] == max(answer["probabilities"])
    assert explorer.decode_array(answer["input"]).shape == (28, 28)
    shapes = {layer["name"]: explorer.decode_array(layer["maps"]).shape for layer in answer["layers"]}
    assert shapes == {"conv1": (16, 28, 28), "relu1": (16, 28, 28), "pool1": (16, 14, 14),
                      "conv2": (32, 14, 14), "relu2": (32, 14, 14), "pool2": (32, 7, 7)}
    for layer in answer["layers"]:
        assert layer["limit"] == pytest.approx(np.abs(explorer.decode_array(layer["maps"])).max())
    assert answer["gradcam"]["layer"] == "relu2" and answer["gradcam"]["classes"] == list(range(10))
    cams = explorer.decode_array(answer["gradcam"]["maps"])
    assert cams.shape == (10, 28, 28) and cams.min() >= 0 and cams[answer["predicted"]].max() > 0
    steps = answer["preprocessing"]
    assert steps["drawing_size"] == 112 and max(explorer.decode_array(steps["scaled"]).shape) == 20
    assert steps["box"][:2] == [10, 20] and steps["box"][2] == 60  # top, left, height of the ink


def test_gradcam_of_chosen_classes(server, mnist):
    image = mnist.x_test[1, 0].tolist()
    status, everything = call(server, "POST", "/api/predict", {"image": image})
    status_chosen, chosen = call(server, "POST", "/api/predict", {"image": image, "classes": [3, 8]})
    assert status == status_chosen == 200 and chosen["gradcam"]["classes"] == [3, 8]
    all_maps, chosen_maps = (explorer.decode_array(a["gradcam"]["maps"]) for a in (everything, chosen))
    np.testing.assert_allclose(chosen_maps, all_maps[[3, 8]], atol=1e-5)


def test_real_test_images_match_the_model_called_directly(server, session, mnist):
    """A test image through the API: the same prediction, probabilities, maps and Grad-CAM as the model itself."""
    model = session.model
    for index in (0, 1, 2, 3, 4, 8):
        status, test_image = call(server, "GET", f"/api/test-image?index={index}")
        assert status == 200 and test_image["label"] == mnist.y_test[index]
        image = explorer.decode_array(test_image["image"])
        np.testing.assert_array_equal(image, mnist.x_test[index, 0])
        status, answer = call(server, "POST", "/api/predict", {"image": image.tolist()})
        assert status == 200 and answer["preprocessing"] is None
        x = mnist.x_test[index:index + 1]  # (1, 1, 28, 28)
        logits = model.predict_logits(x)[0]
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        assert answer["predicted"] == int(np.argmax(logits))
        np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-6)
        np.testing.assert_array_equal(explorer.decode_array(answer["input"]), mnist.x_test[index, 0])
        activations = vis.get_activations(model, x, MAP_LAYERS)
        for layer in answer["layers"]:
            np.testing.assert_allclose(explorer.decode_array(layer["maps"]), activations[layer["name"]][0], atol=1e-5)
        gradients = vis.class_score_gradients(model, x, answer["predicted"], "relu2")
        cam = vis.grad_cam(gradients["activation"], gradients["activation_grad"], (28, 28))[0]
        np.testing.assert_allclose(explorer.decode_array(answer["gradcam"]["maps"])[answer["predicted"]], cam,
                                   rtol=1e-4, atol=1e-5)


def feature_map_of(server, image, layer, channel):
    status, answer = call(server, "POST", "/api/feature-map", {"image": image.tolist(), "layer": layer,
                                                                "channel": channel})
    assert status == 200, answer
    return answer, {key: explorer.decode_array(answer[key]) for key in
                    ("inputs", "kernels", "correlations", "sum", "result")}


def test_feature_map_is_made_of_the_maps_below_correlated_with_the_filter(server, session, mnist):
    """POST /api/feature-map for conv2's map 4: the 16 maps of pool1, each correlated with its 3x3 slice
    of filter 4 (as cnn_from_scratch's loop convolution computes it), summed, plus the bias: conv2's map."""
    image = mnist.x_test[7, 0]
    answer, arrays = feature_map_of(server, image, "conv2", 4)
    grid = {layer["name"]: explorer.decode_array(layer["maps"]) for layer in session.analyze(image, [0])["layers"]}
    assert answer["below"] == "pool1" and answer["stride"] == [1, 1] and answer["padding"] == [1, 1]
    np.testing.assert_array_equal(arrays["inputs"], grid["pool1"])
    np.testing.assert_array_equal(arrays["kernels"], vis.weight_arrays(session.model)["conv2"][4])
    assert answer["bias"] == pytest.approx(float(session.model.layers[3].params["b"][4]))
    for c in range(16):
        expected, _ = scratch.conv2d_forward_naive(arrays["inputs"][c][None, None].astype(np.float64),
                                                   arrays["kernels"][c][None, None].astype(np.float64),
                                                   np.zeros(1), stride=1, padding=1)  # (1, 1, 14, 14)
        np.testing.assert_allclose(arrays["correlations"][c], expected[0, 0], atol=1e-6)
    np.testing.assert_allclose(arrays["correlations"].sum(axis=0), arrays["sum"], atol=1e-5)
    np.testing.assert_allclose(arrays["sum"] + answer["bias"], arrays["result"], atol=1e-5)
    np.testing.assert_allclose(arrays["result"], grid["conv2"][4], atol=1e-5 * np.abs(grid["conv2"]).max())
    # The first conv layer is made from the digit itself.
    answer, arrays = feature_map_of(server, image, "conv1", 15)
    assert answer["below"] is None and arrays["inputs"].shape == (1, 28, 28)
    np.testing.assert_array_equal(arrays["inputs"][0], image)
    np.testing.assert_allclose(arrays["result"], grid["conv1"][15], atol=1e-6)


def test_correlate_channels_with_stride_and_same_padding():
    """Strided "same" padding, with TensorFlow's odd zero after the input: the loop convolution of the
    input padded by hand gives the same sum."""
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 8, 7)), rng.standard_normal((3, 3, 3))
    before = (explorer.padding_before("same", 2, 3, 8, 4), explorer.padding_before("same", 2, 3, 7, 4))
    assert before == (0, 1)  # rows: 3 * 2 + 3 - 8 = 1 zero, after; columns: 2 zeros, one each side
    padded = np.pad(x, ((0, 0), (0, 1), (1, 1)))[None]  # (1, 3, 9, 9)
    expected, _ = scratch.conv2d_forward_naive(padded, w[None], np.zeros(1), stride=2, padding=0)  # (1, 1, 4, 4)
    correlations = explorer.correlate_channels(x, w, (2, 2), before, (4, 4))
    assert correlations.shape == (3, 4, 4)
    np.testing.assert_allclose(correlations.sum(axis=0), expected[0, 0], atol=1e-12)
    assert explorer.padding_before("valid", 2, 3, 8, 3) == 0 and explorer.padding_before((2, 1)[0], 1, 5, 8, 8) == 2


def test_head_is_answered_as_get_without_a_body(server):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    for path, status in (("/", 200), ("/explorer.js", 200), ("/api/model", 200), ("/api/nothing", 404),
                         ("/api/predict", 405)):
        connection.request("GET", path)
        get = connection.getresponse()
        get_body = get.read()
        connection.request("HEAD", path)  # the same connection: a HEAD answer must leave it in step
        head = connection.getresponse()
        assert head.read() == b"" and head.status == get.status == status
        for header in ("Content-Type", "Content-Length", "Content-Security-Policy", "Allow"):
            assert head.getheader(header) == get.getheader(header), (path, header)
        assert int(head.getheader("Content-Length")) == len(get_body)
    good_status, good = call(server, "POST", "/api/predict", {"image": GOOD_IMAGE}, connection=connection)
    assert good_status == 200 and len(good["probabilities"]) == 10
    connection.close()


def test_random_test_images(server):
    indices = set()
    for _ in range(5):
        status, answer = call(server, "GET", "/api/test-image")
        assert status == 200 and 0 <= answer["label"] <= 9
        image = explorer.decode_array(answer["image"])
        assert image.shape == (28, 28) and 0 <= image.min() and image.max() <= 1
        indices.add(answer["index"])
    assert len(indices) > 1


def test_page_and_its_files_are_served_with_a_strict_policy(server):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    for path, kind in (("/", "text/html"), ("/explorer.js", "text/javascript"), ("/explorer.css", "text/css")):
        connection.request("GET", path)
        response = connection.getresponse()
        content = response.read().decode("utf-8")
        assert response.status == 200 and response.getheader("Content-Type").startswith(kind)
        assert "default-src 'none'" in response.getheader("Content-Security-Policy")
        assert "connect-src 'self'" in response.getheader("Content-Security-Policy")
        # Nothing from another host: no absolute URLs at all (fonts, CDNs, analytics).
        assert "http://" not in content and "https://" not in content and "//cdn" not in content
    connection.close()


# --- MNIST's preprocessing on hand-made drawings ---

def check_like_mnist(image, steps):
    """The properties every MNIST digit has: ink within a 20x20 box, longer side 20, centre of mass at (14, 14)."""
    assert image.shape == (28, 28) and image.dtype == np.float32
    assert max(ink_box(image)) == 20 and max(steps["scaled"].shape) == 20
    assert np.abs(mass_center(image) - drawings.CENTER).max() <= 0.5  # moved by whole pixels
    assert 0 <= image.min() and image.max() <= 1


def test_preprocessing_off_centre_digit(mnist):
    original = mnist.x_test[0, 0]
    image, steps = drawings.preprocess_drawing(drawing_of(original, height=40, top=70, left=2))  # bottom-left corner
    check_like_mnist(image, steps)
    assert steps["box"][:3] == (70, 2, 40)
    assert np.corrcoef(image.ravel(), original.ravel())[0, 1] > 0.9  # back where MNIST had it


def test_preprocessing_too_large_digit(mnist):
    original = mnist.x_test[3, 0]
    drawing = drawing_of(original, height=112, top=0, left=5)  # touches the top and bottom edges
    image, steps = drawings.preprocess_drawing(drawing)
    check_like_mnist(image, steps)
    assert np.corrcoef(image.ravel(), original.ravel())[0, 1] > 0.9


def test_preprocessing_tiny_digit_is_enlarged(mnist):
    original = mnist.x_test[2, 0]
    image, steps = drawings.preprocess_drawing(drawing_of(original, height=10, top=5, left=90))
    check_like_mnist(image, steps)
    assert np.corrcoef(image.ravel(), original.ravel())[0, 1] > 0.8


def test_preprocessing_thin_vertical_stroke():
    drawing = np.zeros((112, 112), dtype=np.float32)
    drawing[20:100, 90] = 1.0  # a one-pixel line, 80 pixels long, far right
    image, steps = drawings.preprocess_drawing(drawing)
    check_like_mnist(image, steps)
    assert steps["scaled"].shape == (20, 1) and ink_box(image) == (20, 1)
    assert np.flatnonzero(image.max(axis=0)).tolist() == [14]  # the centre column
    np.testing.assert_allclose(image[image > 0], 1.0)  # averaging along the line keeps it full


def test_preprocessing_thin_diagonal_stroke_keeps_aspect_ratio():
    drawing = np.zeros((112, 112), dtype=np.float32)
    rows = np.arange(10, 90)
    drawing[rows, (rows - 10) // 2 + 5] = 1.0  # 80 tall, 40 wide, one pixel thick
    image, steps = drawings.preprocess_drawing(drawing)
    check_like_mnist(image, steps)
    assert steps["scaled"].shape == (20, 10)  # 80 x 40 scaled by 20 / 80
    assert 0 < image.max() < 1  # anti-aliased: the thin line becomes grey, as in MNIST


def test_preprocessing_rectangle_scales_exactly():
    drawing = np.zeros((112, 112), dtype=np.float32)
    drawing[0:40, 0:80] = 1.0  # 40 tall, 80 wide, in the corner
    image, steps = drawings.preprocess_drawing(drawing)
    check_like_mnist(image, steps)
    assert ink_box(image) == (10, 20) and image.sum() == pytest.approx(200)
    # The 10x20 patch's centre of mass is (4.5, 9.5): moved by round(14 - 4.5) = 10 (halves round to even)
    # and round(14 - 9.5) = 4 pixels, it lands at (14.5, 13.5), within half a pixel of (14, 14).
    assert steps["offset"] == (10, 4) and steps["center_of_mass"] == (14.5, 13.5)


def test_preprocessed_drawings_are_recognized(session, mnist):
    """Real digits redrawn at other sizes and places are classified as the model classifies MNIST itself."""
    rng = np.random.default_rng(0)
    agree = 0
    for index in range(20):
        height = int(rng.integers(30, 100))
        drawing = drawing_of(mnist.x_test[index, 0], height=height, top=int(rng.integers(0, 112 - height)),
                             left=int(rng.integers(0, 40)))
        image, _ = drawings.preprocess_drawing(drawing)
        agree += session.analyze(image, classes=[0])["predicted"] == mnist.y_test[index]
    assert agree >= 19


def test_empty_drawing_is_refused():
    with pytest.raises(ValueError, match="empty"):
        drawings.preprocess_drawing(np.zeros((112, 112), dtype=np.float32))


# --- Bad requests: a clear 4xx, and the server keeps serving ---

GOOD_IMAGE = np.zeros((28, 28)).tolist()
GOOD_IMAGE[14][10:18] = [1.0] * 8


def grid(size, value=0.5):
    return [[value] * size for _ in range(size)]


BAD_REQUESTS = [  # (method, path, body, status, a part of the message)
    ("POST", "/api/predict", b'{"drawing": [[0.1, 0.2]', 400, "not valid JSON"),
    ("POST", "/api/predict", b"", 400, "not valid JSON"),
    ("POST", "/api/predict", b"\xff\xfe\x00", 400, "not valid JSON"),
    ("POST", "/api/predict", b"[1, 2, 3]", 400, "must be a JSON object"),
    ("POST", "/api/predict", b"[" * 100_000 + b"]" * 100_000, 400, "nested too deeply"),
    ("POST", "/api/predict", {}, 400, "exactly one of"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "drawing": grid(112)}, 400, "exactly one of"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "model": "/etc/passwd"}, 400, "unknown field"),
    ("POST", "/api/predict", {"drawing": grid(28)}, 400, "112 rows of 112"),
    ("POST", "/api/predict", {"image": grid(112)}, 400, "28 rows of 28"),
    ("POST", "/api/predict", {"image": grid(28)[:-1]}, 400, "28 rows of 28"),
    ("POST", "/api/predict", {"image": [row[:-1] for row in grid(28)]}, 400, "rows of length 27"),
    ("POST", "/api/predict", {"image": grid(28)[:27] + [[0.5] * 27]}, 400, "28 rows of 28"),
    ("POST", "/api/predict", {"image": "a picture"}, 400, "28 rows of 28"),
    ("POST", "/api/predict", {"image": [["0.5"] * 28] * 28}, 400, "only numbers"),
    ("POST", "/api/predict", {"image": [[True] * 28] * 28}, 400, "only numbers"),
    ("POST", "/api/predict", {"image": [[None] * 28] * 28}, 400, "only numbers"),
    ("POST", "/api/predict", b'{"image": [' + b",".join([b"[" + b",".join([b"NaN"] * 28) + b"]"] * 28) + b"]}",
     400, "finite numbers"),
    ("POST", "/api/predict", b'{"image": [' + b",".join([b"[" + b",".join([b"-Infinity"] * 28) + b"]"] * 28) + b"]}",
     400, "finite numbers"),
    ("POST", "/api/predict", b'{"image": [' + b",".join([b"[" + b",".join([b"1e999"] * 28) + b"]"] * 28) + b"]}",
     400, "finite numbers"),
    ("POST", "/api/predict", {"image": grid(28, 1.5)}, 400, "in [0, 1]"),
    ("POST", "/api/predict", {"image": grid(28, -0.1)}, 400, "in [0, 1]"),
    ("POST", "/api/predict", {"drawing": grid(112, 0.0)}, 400, "empty"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": [10]}, 400, "unknown class index 10"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": [-1]}, 400, "unknown class index -1"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": ["3"]}, 400, "unknown class index '3'"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": [2.0]}, 400, "unknown class index 2.0"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": [True]}, 400, "unknown class index True"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": 3}, 400, "list of class indices"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": []}, 400, "list of class indices"),
    ("POST", "/api/predict", {"image": GOOD_IMAGE, "classes": [1, 1]}, 400, "twice"),
    ("GET", "/api/test-image?index=10000", None, 400, "from 0 to 9999"),
    ("GET", "/api/test-image?index=-1", None, 400, "from 0 to 9999"),
    ("GET", "/api/test-image?index=seven", None, 400, "from 0 to 9999"),
    ("GET", "/api/test-image?path=data/mnist.npz", None, 400, "unknown query parameter"),
    ("GET", "/api/nothing", None, 404, "unknown path"),
    ("GET", "/explorer.py", None, 404, "unknown path"),
    ("GET", "/models/simple_cnn.npz", None, 404, "unknown path"),
    ("GET", "/../../etc/passwd", None, 404, "unknown path"),
    ("GET", "/%2e%2e/explorer.py", None, 404, "unknown path"),
    ("GET", "/api/predict", None, 405, "use POST"),
    ("POST", "/api/model", {}, 405, "only for /api/predict"),
    ("POST", "/index.html", {}, 404, "only for /api/predict"),
    ("PUT", "/api/predict", {"image": GOOD_IMAGE}, 405, "not supported"),
    ("GET", "/api/feature-map", None, 405, "use POST"),
    ("POST", "/api/feature-map", {"image": GOOD_IMAGE, "layer": "conv2"}, 400, "expected the fields"),
    ("POST", "/api/feature-map", {"image": GOOD_IMAGE, "layer": "relu1", "channel": 0}, 400, "must name a conv layer"),
    ("POST", "/api/feature-map", {"image": GOOD_IMAGE, "layer": "conv2", "channel": 32}, 400, "from 0 to 31"),
    ("POST", "/api/feature-map", {"image": GOOD_IMAGE, "layer": "conv2", "channel": True}, 400, "from 0 to 31"),
    ("POST", "/api/feature-map", {"image": grid(112), "layer": "conv2", "channel": 0}, 400, "28 rows of 28"),
    ("DELETE", "/", None, 405, "not supported"),
]


@pytest.mark.parametrize("method, path, body, status, message", BAD_REQUESTS,
                         ids=[f"{case[0]} {case[1][:30]} {case[4]}" for case in BAD_REQUESTS])
def test_bad_request_then_a_good_one(server, method, path, body, status, message):
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    answer_status, answer = call(server, method, path, body, connection=connection)
    assert answer_status == status and message in answer["error"], answer
    # The same connection (the body was read) and a new one both still get answers.
    for reuse in (connection, None):
        good_status, good = call(server, "POST", "/api/predict", {"image": GOOD_IMAGE}, connection=reuse)
        assert good_status == 200 and len(good["probabilities"]) == 10
    connection.close()


def raw_request(server, head, body=b""):
    """Send bytes as they are (for headers http.client will not send); returns (status, JSON)."""
    with socket.create_connection(server.server_address[:2], timeout=30) as connection:
        connection.sendall(head + body)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, json.loads(response.read())


@pytest.mark.parametrize("head, status, message", [
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413, "more than the limit"),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999\r\n\r\n", 413, "more than the limit"),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "Content-Length"),
    (b"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n", 400, "non-negative integer"),
])
def test_body_size_limits_then_a_good_request(server, head, status, message):
    answer_status, answer = raw_request(server, head)
    assert answer_status == status and message in answer["error"]
    good_status, _ = call(server, "POST", "/api/predict", {"image": GOOD_IMAGE})
    assert good_status == 200


def test_body_at_the_limit_is_read_and_one_byte_more_is_refused(server):
    body = json.dumps({"image": GOOD_IMAGE}).encode()
    body += b" " * (explorer.MAX_BODY_BYTES - len(body))  # valid JSON, exactly at the limit
    status, answer = call(server, "POST", "/api/predict", body)
    assert status == 200 and len(answer["probabilities"]) == 10
    head = f"POST /api/predict HTTP/1.1\r\nHost: x\r\nContent-Length: {explorer.MAX_BODY_BYTES + 1}\r\n\r\n"
    status, answer = raw_request(server, head.encode())  # refused from its length alone, before it is sent
    assert status == 413 and "1,048,577 bytes" in answer["error"]
    assert call(server, "POST", "/api/predict", {"image": GOOD_IMAGE})[0] == 200


# --- Many clients at once ---

def test_twenty_clients_at_once_get_their_own_answers(server, session, mnist):
    """20 threads for 2 seconds, each sending its own images: every answer must be that image's.
    Without the model lock, interleaved forward and backward passes mix the layers' caches."""
    indices = list(range(20))
    expected = {}
    for index in indices:
        answer = session.analyze(mnist.x_test[index, 0])
        expected[index] = (np.array(answer["probabilities"]), explorer.decode_array(answer["gradcam"]["maps"]),
                           explorer.decode_array(answer["layers"][4]["maps"]))
    bodies = {index: json.dumps({"image": mnist.x_test[index, 0].tolist()}) for index in indices}
    counts, failures = [0] * len(indices), []
    stop = time.perf_counter() + 2.0

    def client(slot):
        connection = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
        try:
            while time.perf_counter() < stop or counts[slot] == 0:
                index = indices[(slot + counts[slot]) % len(indices)]  # each thread cycles through the images
                status, answer = call(server, "POST", "/api/predict", bodies[index], connection=connection)
                probabilities, cams, relu2 = expected[index]
                if (status != 200 or not np.allclose(answer["probabilities"], probabilities, atol=1e-6)
                        or not np.allclose(explorer.decode_array(answer["gradcam"]["maps"]), cams, atol=1e-5)
                        or not np.allclose(explorer.decode_array(answer["layers"][4]["maps"]), relu2, atol=1e-5)):
                    failures.append((slot, index, status))
                counts[slot] += 1
        except Exception as error:  # noqa: BLE001 (reported below)
            failures.append((slot, repr(error)))
        finally:
            connection.close()

    threads = [threading.Thread(target=client, args=(slot,)) for slot in range(len(indices))]
    switch_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads every 10 us instead of 5 ms: unguarded interleavings show up
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(switch_interval)
    assert failures == [], failures[:5]
    assert all(count >= 1 for count in counts) and sum(counts) >= 20
    print(f"{sum(counts)} answers to 20 clients, all correct")


# --- Models of every framework, the command line ---

def test_pytorch_and_keras_models_give_the_numpy_answers(tmp_path, session, mnist):
    """The shipped weights copied into PyTorch and Keras, saved, loaded by --model's loader: same answers."""
    import cnn_keras
    import cnn_pytorch
    torch_path = tmp_path / "simple.pt"
    torch_model = cnn_pytorch.numpy_to_torch(session.model, cnn_pytorch.SimpleCNN())
    cnn_pytorch.save(torch_model, torch_path, model_name="simple")
    keras_path = tmp_path / "simple.keras"
    cnn_keras.save(cnn_keras.numpy_to_keras(session.model, cnn_keras.make_simple_cnn()), keras_path)
    image = mnist.x_test[7, 0]
    reference = session.analyze(image)
    for path, framework in ((torch_path, "pytorch"), (keras_path, "keras")):
        model, loaded_framework, parameters = explorer.load_model_file(path)
        assert loaded_framework == framework and parameters == 206_922
        other = explorer.Explorer(model, loaded_framework, parameters)
        assert other.map_layers == MAP_LAYERS and other.gradcam_layer == "relu2"
        answer = other.analyze(image)
        assert answer["predicted"] == reference["predicted"]
        np.testing.assert_allclose(answer["probabilities"], reference["probabilities"], atol=1e-5)
        for mine, theirs in zip(answer["layers"], reference["layers"]):
            np.testing.assert_allclose(explorer.decode_array(mine["maps"]), explorer.decode_array(theirs["maps"]),
                                       atol=1e-4)
        np.testing.assert_allclose(explorer.decode_array(answer["gradcam"]["maps"]),
                                   explorer.decode_array(reference["gradcam"]["maps"]), atol=1e-3)
        for layer in ("conv1", "conv2"):  # each framework's bias, stride and padding, through its adapter
            mine, theirs = other.explain_map(image, layer, 3), session.explain_map(image, layer, 3)
            assert mine["bias"] == pytest.approx(theirs["bias"], abs=1e-6) and mine["padding"] == theirs["padding"]
            np.testing.assert_allclose(mine["result"], theirs["result"], atol=1e-4)


def test_a_conv_fed_by_a_skip_connection_is_refused_with_a_reason(mnist):
    """In a residual network some convs do not read the layer listed before them: their maps cannot be
    rebuilt from it, and the API says why (422) instead of showing a wrong sum."""
    import cnn_pytorch
    session = explorer.Explorer(cnn_pytorch.build_model("residual").eval(), "pytorch", 0)
    reasons = {}
    for layer in session.conv_parts:
        try:
            session.explain_map(mnist.x_test[0, 0], layer, 0)
        except ValueError as error:
            reasons[layer] = str(error)
    assert reasons and all("skip connection" in reason for reason in reasons.values())
    assert len(reasons) < len(session.conv_parts)  # the convs inside a block do read the layer before them
    server = explorer.start_server(session)
    try:
        status, answer = call(server, "POST", "/api/feature-map", {"image": GOOD_IMAGE, "layer": min(reasons),
                                                                    "channel": 0})
    finally:
        server.shutdown()
        server.server_close()
    assert status == 422 and "skip connection" in answer["error"]


def test_model_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file"):
        explorer.load_model_file(tmp_path / "missing.npz")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ValueError, match="unknown model file type '.txt'"):
        explorer.load_model_file(tmp_path / "notes.txt")
    (tmp_path / "broken.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="not a readable CNN file"):
        explorer.load_model_file(tmp_path / "broken.npz")


def test_host_warning():
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert explorer.host_warning(host) is None
    for host in ("0.0.0.0", "192.168.1.20", "::", "example.org"):
        assert "not a loopback address" in explorer.host_warning(host)


def test_default_start_is_fast_and_imports_no_framework():
    """`python explorer.py --quick` with the shipped model: one prediction through HTTP, without
    ever importing torch or TensorFlow (checked inside the same process)."""
    script = ("import runpy, sys; sys.argv = ['explorer.py', '--quick']; "
              "runpy.run_path('explorer.py', run_name='__main__'); "
              "heavy = [name for name in ('torch', 'tensorflow', 'keras') if name in sys.modules]; "
              "print('heavy modules:', heavy)")
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "test image 0 (label 7): predicted 7" in result.stdout
    assert "heavy modules: []" in result.stdout


def test_server_starts_and_serves_the_page():
    """`python explorer.py --port 0` prints its address and serves the page (time printed, not asserted)."""
    start = time.perf_counter()
    process = subprocess.Popen([sys.executable, "explorer.py", "--port", "0"], cwd=ROOT,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watchdog = threading.Timer(120, process.kill)  # a server that never prints its address ends the read below
    watchdog.start()
    try:
        address = None
        for line in process.stdout:
            if "CNN explorer at http://127.0.0.1:" in line:
                address = line.split("http://")[1].split("/")[0]
                break
        assert address is not None, "explorer.py did not print its address"
        host, port = address.split(":")
        connection = http.client.HTTPConnection(host, int(port), timeout=30)
        connection.request("GET", "/")
        page = connection.getresponse().read().decode()
        connection.request("POST", "/api/predict", json.dumps({"image": GOOD_IMAGE}))
        response = connection.getresponse()
        assert response.status == 200 and json.loads(response.read())["predicted"] in range(10)
        connection.close()
        assert '<canvas id="pad"' in page
        print(f"page usable {time.perf_counter() - start:.2f} s after start")
    finally:
        watchdog.cancel()
        process.terminate()
        process.wait(timeout=30)
