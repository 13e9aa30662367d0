"""Draw a digit in the browser and watch the network think: a local web page for any saved model.

The page (explorer/index.html, explorer.js, explorer.css) has a drawing canvas; this server
turns each drawing into the 28x28 input the network expects with MNIST's own preprocessing,
runs the model, and answers with the ten class probabilities, every conv/activation/pool layer's
feature maps, the first layer's filters and Grad-CAM for every class; a click on a conv layer's
map asks how that one map is made from the layer below. The MNIST preprocessing of a drawing lives
in drawings.py, the Grad-CAM computation in explain.py and each framework's adapter in
frameworks.py, so that NumPy, PyTorch and Keras models all work. The story, top to bottom: loading
a model of any framework, the analysis of one image, the JSON API with its checks, the HTTP
server, then `main()`.

Run it:
    python explorer.py                                 # the shipped NumPy SimpleCNN, http://127.0.0.1:8000/
    python explorer.py --model my_cnn.npz              # a model saved by CNN.save (NumPy)
    python explorer.py --model checkpoints/simple.pt   # saved by cnn_pytorch.save; --model x.keras for Keras
    python explorer.py --port 8080 --host 0.0.0.0      # other port; a non-loopback host prints a warning
    python explorer.py --quick                         # one prediction through the HTTP API, then exit
In a REPL:
    >>> import drawings, explorer
    >>> model, framework, parameters = explorer.load_model_file(explorer.DEFAULT_MODEL_PATH)
    >>> session = explorer.Explorer(model, framework, parameters)
    >>> image, steps = drawings.preprocess_drawing(drawing)   # drawing of shape (112, 112) in [0, 1]
    >>> session.analyze(image)["predicted"]

The JSON API (all answers are JSON; errors are {"error": message} with a 4xx status; HEAD is
answered as GET, without the body):
    GET  /api/model                 the model: layers and output shapes, first-layer filters
    GET  /api/test-image[?index=i]  a real MNIST test image (random without index) and its label
    POST /api/predict               {"drawing": 112 rows of 112 numbers in [0, 1]} (preprocessed here)
                                    or {"image": 28 rows of 28 numbers in [0, 1]} (used as it is),
                                    optional "classes": [class indices] for Grad-CAM (default: all),
                                    optional "dtype": "int8" for the maps and Grad-CAM as 8-bit levels
                                    (encode_levels: what the page asks for, a quarter of the bytes)
    POST /api/feature-map           {"image": 28 rows of 28, "layer": a conv layer, "channel": k}: how
                                    map k is made: the maps below, filter k's slices, their correlations,
                                    sum, bias, result and the model's own map (asked only for the
                                    clicked map, so that /api/predict stays as fast as it was)
Arrays of more than one dimension travel as {"shape": [...], "dtype": "float32", "data": base64 of
the little-endian float32 bytes}: about a third of the size of nested lists of floats, and far
quicker to encode (`python benchmarks/explorer_latency.py` times the whole request); or as
{"dtype": "int8", "scale", ...}, 8-bit levels (encode_levels), a quarter of that again.

The client never names a file: the model is chosen when the server starts, and the server only
ever serves the three files of explorer/.
"""
import argparse
import base64
import contextlib
import http.client
import ipaddress
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np

import explain  # Grad-CAM
import frameworks  # loads a model of any framework and answers what the page asks of it, in NCHW
from drawings import BOX_SIZE, CENTER, DRAWING_SIZE, IMAGE_SIZE, preprocess_drawing  # MNIST's preprocessing

ROOT = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MODEL_PATH = os.path.join(ROOT, "models", "simple_cnn.npz")
STATIC_DIR = os.path.join(ROOT, "explorer")
STATIC_FILES = {  # URL path -> (file in explorer/, content type); nothing else is ever served
    "/": ("index.html", "text/html; charset=utf-8"),
    "/explorer.js": ("explorer.js", "text/javascript; charset=utf-8"),
    "/explorer.css": ("explorer.css", "text/css; charset=utf-8"),
}
# The page may load only its own files and talk only to this server.
CONTENT_SECURITY_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                           "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

MAX_BODY_BYTES = 1 << 20  # 1 MiB: a 112x112 drawing with 3 decimals is about 100 KB
MAX_MAPS_PER_LAYER = 64  # wider layers show their first 64 channels
TEST_IMAGES = 10000      # the size of MNIST's test set
MAP_KINDS = ("conv", "pool", "relu", "leaky_relu", "elu", "tanh", "sigmoid")


# --- Loading a model of any framework ---

def load_model_file(path):
    """Load a model saved by this project, the framework told by the file's extension (.npz, .pt,
    .keras; frameworks.load_any). PyTorch and TensorFlow are imported only for their own files, so
    the default NumPy model starts in about a second.
    Returns: (model, framework name, number of parameters)
    """
    model = frameworks.load_any(path)
    return model, frameworks.framework_of(model), int(frameworks.count_parameters(model))


# --- One image through the model ---

def encode_array(array):
    """An array as JSON: {"shape", "dtype": "float32", "data": base64 of its little-endian float32 bytes}."""
    array = np.ascontiguousarray(array, dtype="<f4")
    return {"shape": list(array.shape), "dtype": "float32", "data": base64.b64encode(array.tobytes()).decode("ascii")}


def decode_array(encoded):
    """The inverse of encode_array: a float32 array of the encoded shape."""
    return np.frombuffer(base64.b64decode(encoded["data"]), dtype="<f4").reshape(encoded["shape"])


def padding_before(padding, stride, kernel, in_size, out_size):
    """Zeros added before the first row (or column) of a convolution's input, from its padding: a
    number, "valid" (none) or "same" (TensorFlow's rule: the total needed, the odd one after)."""
    if padding == "valid":
        return 0
    if padding == "same":
        return max((out_size - 1) * stride + kernel - in_size, 0) // 2
    return int(padding)


def correlate_channels(inputs, kernels, stride, before, out_shape):
    """Each input channel correlated with its own slice of one filter, kept apart (not yet summed).

    Inputs: inputs of shape (C, H, W), kernels of shape (C, HH, WW), stride (sh, sw), before: the
    zeros (top, left) added before the input, out_shape (H_out, W_out) of the layer's output
    Returns: correlations of shape (C, H_out, W_out), float64:
      correlations[c, i, j] = sum over u, v of padded[c, i * sh + u, j * sw + v] * kernels[c, u, v]
    Note: a cross-correlation, as every framework's "convolution" layer computes (the kernel is not flipped).
    """
    C, H, W = inputs.shape
    _, HH, WW = kernels.shape
    (sh, sw), (top, left), (H_out, W_out) = stride, before, out_shape
    rows, columns = (H_out - 1) * sh + HH, (W_out - 1) * sw + WW  # the padded input the windows cover
    padded = np.zeros((C, max(rows, top + H), max(columns, left + W)))
    padded[:, top:top + H, left:left + W] = inputs
    correlations = np.zeros((C, H_out, W_out))
    for u in range(HH):
        for v in range(WW):  # every window's pixel (u, v), for all windows at once
            window = padded[:, u:u + (H_out - 1) * sh + 1:sh, v:v + (W_out - 1) * sw + 1:sw]  # (C, H_out, W_out)
            correlations += kernels[:, u, v, None, None] * window
    return correlations


def softmax(logits):
    """Probabilities of shape (num_classes,) from logits of shape (num_classes,), in float64."""
    shifted = np.asarray(logits, dtype=np.float64) - np.max(logits)  # subtract the max: exp never overflows
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum()


class Explorer:
    """A loaded model and what the page asks of it; one lock serializes every use of the model.

    The NumPy layers keep their forward caches on the layer objects (for backward), PyTorch hooks
    are registered on shared modules, so two requests must never run the model at the same time.
    """

    def __init__(self, model, framework, parameters, name="model", seed=None):
        self.model, self.framework, self.parameters, self.name = model, framework, parameters, name
        self.lock = threading.Lock()
        self.rng = np.random.default_rng(seed)  # for random test images, used under self.lock
        self._test_set, self._test_set_lock = None, threading.Lock()
        named = frameworks.model_layers(model)
        zeros = np.zeros((1, 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
        with self.lock:
            outputs = frameworks.get_activations(model, zeros)
            logits = frameworks.predict_logits(model, zeros)
        self.num_classes = int(logits.shape[1])
        self.layers = [{"name": layer_name, "kind": kind, "shape": list(outputs[layer_name].shape[1:])}
                       for layer_name, kind, _ in named]
        self.map_layers = [layer["name"] for layer in self.layers
                           if layer["kind"] in MAP_KINDS and len(layer["shape"]) == 3]
        self.gradcam_layer = frameworks.default_gradcam_layer(model)
        self.filters = frameworks.first_conv_filters(model)  # (F, C, HH, WW)
        adapter = frameworks.adapter_for(model)  # each conv layer's weights (F, C, HH, WW), and (bias, stride, padding)
        self.conv_parts = {name: (adapter.weight(layer), adapter.conv_geometry(layer))
                           for name, kind, layer in named if kind == "conv"}

    def model_info(self):
        """What the page draws once: the model's name, layers, and first-layer filters."""
        first_conv = next(layer["name"] for layer in self.layers if layer["kind"] == "conv")
        return {"name": self.name, "framework": self.framework, "parameters": self.parameters,
                "num_classes": self.num_classes, "image_size": IMAGE_SIZE, "drawing_size": DRAWING_SIZE,
                "box_size": BOX_SIZE, "max_maps_per_layer": MAX_MAPS_PER_LAYER,
                "layers": self.layers, "map_layers": self.map_layers,
                "gradcam_layer": self.gradcam_layer,
                "filters": {"layer": first_conv, "limit": float(np.abs(self.filters).max()),
                            "weights": encode_array(self.filters)}}

    def analyze(self, image, classes=None, dtype="float32"):
        """Everything the page shows for one 28x28 image.

        Inputs: image of shape (28, 28) in [0, 1]; classes: the classes to explain with Grad-CAM
        (default: every class, so the page can switch between them without asking again); dtype:
        "float32" (encode_array) or "int8" (encode_levels: a quarter of the bytes, for the page)
        Returns: dict with "probabilities" and "logits" (lists of num_classes floats), "predicted",
        "confidence", "layers" (each map layer's output of shape (K, h, w), at most 64 channels,
        with "limit" = its largest absolute value) and "gradcam" maps of shape (len(classes), 28, 28).
        """
        if dtype not in ("float32", "int8"):
            raise ValueError(f'dtype must be "float32" or "int8", got {dtype!r}')
        classes = list(range(self.num_classes)) if classes is None else list(classes)
        x = image.astype(np.float32)[None, None]  # (28, 28) -> (1, 1, 28, 28)
        batch = np.repeat(x, len(classes), axis=0)  # (len(classes), 1, 28, 28): one copy per class
        with self.lock:
            activations = frameworks.get_activations(self.model, x, self.map_layers)
            gradients = frameworks.class_score_gradients(self.model, batch, np.array(classes), self.gradcam_layer)
        cam = explain.grad_cam(gradients["activation"], gradients["activation_grad"], (IMAGE_SIZE, IMAGE_SIZE))
        logits = gradients["logits"][0]  # every row is the same image
        probabilities = softmax(logits)
        layers = []
        for name in self.map_layers:
            maps = activations[name][0]  # (K, h, w)
            layers.append({"name": name, "kind": next(layer["kind"] for layer in self.layers if layer["name"] == name),
                           "channels": int(maps.shape[0]), "limit": float(np.abs(maps).max()),
                           "maps": encode_maps(maps[:MAX_MAPS_PER_LAYER], np.abs(maps).max(), dtype)})
        return {"predicted": int(np.argmax(probabilities)), "confidence": float(probabilities.max()),
                "probabilities": probabilities.tolist(), "logits": logits.astype(np.float64).tolist(),
                "layers": layers,
                "gradcam": {"layer": self.gradcam_layer, "classes": classes, "maps": encode_maps(cam, cam.max(), dtype)}}

    def explain_map(self, image, layer, channel):
        """How one map of a conv layer is made from the layer below, for the page's click on a map.

        Inputs: image of shape (28, 28) in [0, 1]; layer: the name of a conv layer; channel: one of its maps
        Returns: dict with "below" (the name of the layer below, or None: the input is the digit),
        "inputs" of shape (C, H, W) (the maps below), "kernels" of shape (C, HH, WW) (filter
        `channel`, one slice per input channel), "correlations" of shape (C, H_out, W_out) (each input
        correlated with its slice), their "sum" and the "bias", "result" = sum + bias and "output"
        (the map as the model computed it), of shape (H_out, W_out); "stride" and "padding" (the zeros
        before the first row and column).
        Raises ValueError when the result is not the layer's own map: its input is not the output of
        the layer listed before it (a skip connection), or its filters are grouped or dilated.
        """
        position = next(index for index, item in enumerate(self.layers) if item["name"] == layer)
        below = self.layers[position - 1]["name"] if position > 0 else None
        x = image.astype(np.float32)[None, None]  # (28, 28) -> (1, 1, 28, 28)
        with self.lock:
            activations = frameworks.get_activations(self.model, x, [layer] + ([below] if below else []))
        inputs = (activations[below] if below else x)[0]  # (C, H, W)
        output = activations[layer][0, channel]  # (H_out, W_out), the map the grid shows
        weights, (bias, stride, padding) = self.conv_parts[layer]
        kernels = weights[channel]  # (F, C, HH, WW) -> (C, HH, WW)
        if kernels.shape[0] != inputs.shape[0]:
            raise ValueError(f"{layer}'s filters have {kernels.shape[0]} channels but the layer below, "
                             f"{below or 'the input'}, has {inputs.shape[0]} maps: its input comes from elsewhere "
                             f"(a skip connection), or its filters are grouped")
        paddings = (padding, padding) if isinstance(padding, str) else padding
        before = tuple(padding_before(*arguments) for arguments in
                       zip(paddings, stride, kernels.shape[1:], inputs.shape[1:], output.shape))
        correlations = correlate_channels(inputs, kernels, stride, before, output.shape)  # (C, H_out, W_out)
        total = correlations.sum(axis=0)  # (H_out, W_out)
        result = total + float(bias[channel])
        if not np.allclose(result, output, rtol=0, atol=1e-4 * max(1.0, float(np.abs(output).max()))):
            raise ValueError(f"{layer}'s map {channel} is not the sum of its input maps correlated with its filter "
                             f"(largest difference {np.abs(result - output).max():.3g}): its input is not the "
                             f"output of {below or 'the image'} (a skip connection), or its filter is dilated")
        return {"below": below, "inputs": inputs, "kernels": kernels, "correlations": correlations,
                "sum": total, "bias": float(bias[channel]), "result": result, "output": output,
                "stride": [int(step) for step in stride], "padding": list(before)}

    def test_set(self):
        """MNIST's test images (10000, 28, 28) and labels (10000,), loaded once on first use (about a second)."""
        with self._test_set_lock:
            if self._test_set is None:
                from data import load_mnist
                data = load_mnist()
                self._test_set = (data.x_test[:, 0], data.y_test)  # (10000, 1, 28, 28) -> (10000, 28, 28)
            return self._test_set

    def test_image(self, index=None):
        """(index, label, image of shape (28, 28)) of one MNIST test image; a random one without index."""
        images, labels = self.test_set()
        if index is None:
            with self.lock:
                index = int(self.rng.integers(len(images)))
        return index, int(labels[index]), images[index]


# --- The JSON API: every request checked, every error a clear 4xx ---

class ApiError(Exception):
    """A request the API refuses: answered with `status` and {"error": message}."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status, self.message = status, message


def _reject_constant(name):
    raise ApiError(400, f"values must be finite numbers, got {name}")


def parse_json(body):
    """Decode a request body that must be a JSON object; NaN and Infinity are refused."""
    try:
        value = json.loads(body.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ApiError(400, f"the body is not valid JSON ({error})") from None
    except RecursionError:
        raise ApiError(400, "the body is not a drawing: its JSON is nested too deeply") from None
    if not isinstance(value, dict):
        raise ApiError(400, f"the body must be a JSON object, got {type(value).__name__}")
    return value


def describe_grid(value):
    """'3 rows of lengths [28, 28, 5]' or the type, for error messages."""
    if not isinstance(value, list):
        return f"a JSON {type(value).__name__}"
    lengths = sorted({len(row) if isinstance(row, list) else -1 for row in value})
    kinds = ", ".join("not a list" if length < 0 else str(length) for length in lengths[:4])
    return f"{len(value)} rows of length {kinds}" if value else "an empty list"


def parse_grid(value, field, size):
    """A JSON list of `size` rows of `size` numbers in [0, 1] -> array of shape (size, size), float32."""
    if (not isinstance(value, list) or len(value) != size
            or not all(isinstance(row, list) and len(row) == size for row in value)):
        raise ApiError(400, f'"{field}" must be a list of {size} rows of {size} numbers each (a {size}x{size} '
                            f"image), got {describe_grid(value)}")
    grid = np.array(value)
    if grid.dtype.kind not in "iuf":  # strings, booleans, null and huge integers are not pixel values
        raise ApiError(400, f'"{field}" must hold only numbers, got values of type {grid.dtype}')
    grid = grid.astype(np.float64)
    if not np.isfinite(grid).all():
        raise ApiError(400, f'"{field}" must hold finite numbers, got {np.count_nonzero(~np.isfinite(grid))} '
                            f"that are not (NaN or infinite)")
    if grid.min() < 0 or grid.max() > 1:
        raise ApiError(400, f'"{field}" values must be in [0, 1] (0 = background, 1 = ink), got values from '
                            f"{grid.min():g} to {grid.max():g}")
    return grid.astype(np.float32)


def parse_classes(value, num_classes):
    """The optional Grad-CAM classes: a non-empty list of distinct ints in [0, num_classes)."""
    if value is None:
        return None
    if not isinstance(value, list) or not value:
        raise ApiError(400, f'"classes" must be a non-empty list of class indices, got {value!r}')
    for item in value:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item < num_classes:
            raise ApiError(400, f'unknown class index {item!r} in "classes": expected integers from 0 '
                                f"to {num_classes - 1}")
    if len(set(value)) != len(value):
        raise ApiError(400, f'"classes" lists a class twice: {value!r}')
    return value


def encode_levels(array, limit):
    """An array as 8-bit levels of its scale: {"shape", "dtype": "int8", "scale", "data": base64 of the
    levels}, value = level * scale with scale = limit / 127, within scale / 2 of the value (limit: the
    largest absolute value). A quarter of encode_array's bytes, and twice the levels the page's
    colours can show; the page asks for it with "dtype": "int8"."""
    scale = float(limit) / 127 if limit > 0 else 0.0
    levels = np.zeros(np.shape(array), dtype=np.int8) if scale == 0 else np.clip(
        np.round(np.asarray(array, dtype=np.float64) / scale), -127, 127).astype(np.int8)
    return {"shape": list(levels.shape), "dtype": "int8", "scale": scale,
            "data": base64.b64encode(levels.tobytes()).decode("ascii")}


def decode_levels(encoded):
    """The inverse of encode_levels, to within half a level: a float32 array of the encoded shape."""
    levels = np.frombuffer(base64.b64decode(encoded["data"]), dtype=np.int8).reshape(encoded["shape"])
    return (levels * np.float32(encoded["scale"])).astype(np.float32)


def encode_maps(array, limit, dtype):
    """Feature maps or Grad-CAM as the request asked: encode_array ("float32") or encode_levels ("int8")."""
    return encode_levels(array, limit) if dtype == "int8" else encode_array(array)


def parse_predict_request(body, num_classes):
    """Check a /api/predict body; returns (image of shape (28, 28), preprocessing steps or None, classes,
    dtype of the maps and Grad-CAM: "float32" or "int8")."""
    request = parse_json(body)
    unknown = sorted(set(request) - {"drawing", "image", "classes", "dtype"})
    if unknown:
        raise ApiError(400, f'unknown field(s) {unknown}; expected "drawing" or "image", and optionally "classes" '
                            f'and "dtype"')
    if ("drawing" in request) == ("image" in request):
        raise ApiError(400, f'send exactly one of "drawing" ({DRAWING_SIZE}x{DRAWING_SIZE}, preprocessed like MNIST) '
                            f'or "image" ({IMAGE_SIZE}x{IMAGE_SIZE}, used as it is)')
    classes = parse_classes(request.get("classes"), num_classes)
    dtype = request.get("dtype", "float32")
    if dtype not in ("float32", "int8"):
        raise ApiError(400, f'"dtype" must be "float32" (the default) or "int8", got {dtype!r}')
    if "image" in request:
        return parse_grid(request["image"], "image", IMAGE_SIZE), None, classes, dtype
    drawing = parse_grid(request["drawing"], "drawing", DRAWING_SIZE)
    try:
        image, steps = preprocess_drawing(drawing)
    except ValueError as error:  # an empty drawing
        raise ApiError(400, str(error)) from None
    return image, steps, classes, dtype


def answer_predict(explorer, body):
    """The answer to POST /api/predict: the analysis, the input as the network saw it, and the preprocessing."""
    start = time.perf_counter()
    image, steps, classes, dtype = parse_predict_request(body, explorer.num_classes)
    response = explorer.analyze(image, classes, dtype)
    response["input"] = encode_array(image)
    response["preprocessing"] = None if steps is None else {
        "drawing_size": DRAWING_SIZE, "box_size": BOX_SIZE, "box": steps["box"],
        "scaled": encode_array(steps["scaled"]), "offset": steps["offset"],
        "center_of_mass": steps["center_of_mass"], "target_center": CENTER}
    response["milliseconds"] = round(1000 * (time.perf_counter() - start), 2)
    return response


def parse_feature_map_request(body, explorer):
    """Check a /api/feature-map body; returns (image of shape (28, 28), conv layer name, channel)."""
    request = parse_json(body)
    fields = {"image", "layer", "channel"}
    if set(request) != fields:
        raise ApiError(400, f"expected the fields {sorted(fields)}, got {sorted(request)}")
    layer, channel = request["layer"], request["channel"]
    if layer not in explorer.conv_parts:
        raise ApiError(400, f'"layer" must name a conv layer, one of {sorted(explorer.conv_parts)}, got {layer!r}')
    channels = next(item["shape"][0] for item in explorer.layers if item["name"] == layer)
    if isinstance(channel, bool) or not isinstance(channel, int) or not 0 <= channel < channels:
        raise ApiError(400, f'"channel" must be an integer from 0 to {channels - 1} ({layer} has {channels} maps), '
                            f"got {channel!r}")
    return parse_grid(request["image"], "image", IMAGE_SIZE), layer, channel


def answer_feature_map(explorer, body):
    """The answer to POST /api/feature-map: how one conv map is made (Explorer.explain_map), arrays encoded."""
    image, layer, channel = parse_feature_map_request(body, explorer)
    try:
        parts = explorer.explain_map(image, layer, channel)
    except ValueError as error:  # a layer this view cannot rebuild from the layer below
        raise ApiError(422, str(error)) from None
    arrays = ("inputs", "kernels", "correlations", "sum", "result", "output")
    return {"layer": layer, "channel": channel, **{key: encode_array(value) if key in arrays else value
                                                   for key, value in parts.items()}}


def answer_test_image(explorer, query):
    """The answer to GET /api/test-image[?index=i]."""
    values = parse_qs(query, keep_blank_values=True)
    unknown = sorted(set(values) - {"index"})
    if unknown:
        raise ApiError(400, f"unknown query parameter(s) {unknown}; expected only index")
    index = None
    if "index" in values:
        text = values["index"][-1]
        if not text.isdigit() or not 0 <= int(text) < TEST_IMAGES:
            raise ApiError(400, f"index must be an integer from 0 to {TEST_IMAGES - 1}, got {text!r}")
        index = int(text)
    index, label, image = explorer.test_image(index)
    return {"index": index, "label": label, "image": encode_array(image)}


# --- The HTTP server ---

POST_ANSWERS = {"/api/predict": answer_predict, "/api/feature-map": answer_feature_map}


class ExplorerHandler(BaseHTTPRequestHandler):
    """Serves the three files of explorer/ and the JSON API; anything else is a JSON 404 or 405.
    HEAD is answered as GET, with the same status and headers and no body."""

    protocol_version = "HTTP/1.1"  # keep-alive: a drawing session reuses one connection
    server_version = "CNNExplorer/1.0"

    def do_GET(self):
        url = urlsplit(self.path)
        if url.path in STATIC_FILES:
            content, content_type = self.server.static[url.path]
            self._send(200, content, content_type)
        elif url.path == "/api/model":
            self._send_json(200, self.server.model_info)
        elif url.path == "/api/test-image":
            self._answer(lambda: answer_test_image(self.server.explorer, url.query))
        elif url.path in POST_ANSWERS:
            self._send_json(405, {"error": f"use POST for {url.path}"}, allow="POST")
        else:
            self._send_json(404, {"error": f"unknown path {url.path!r}; the API is /api/model, /api/test-image, "
                                           f"/api/predict and /api/feature-map"})

    def do_HEAD(self):
        """What GET would answer, headers only (_send writes no body for HEAD)."""
        self.do_GET()

    def do_POST(self):
        path = urlsplit(self.path).path
        if path not in POST_ANSWERS:
            self._discard_body()
            known = path in STATIC_FILES or path in ("/api/model", "/api/test-image")
            self._send_json(405 if known else 404, {"error": f"POST is only for {' and '.join(POST_ANSWERS)}, "
                                                             f"not {path!r}"}, allow="GET, HEAD" if known else None)
            return
        self._answer(lambda: POST_ANSWERS[path](self.server.explorer, self._read_body()))

    def _method_not_allowed(self):
        self._discard_body()
        self._send_json(405, {"error": f"method {self.command} is not supported; use GET or HEAD, or POST for "
                                       f"{' and '.join(POST_ANSWERS)}"}, allow="GET, HEAD, POST")

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed

    # --- Helpers ---

    def _answer(self, make_response):
        """Send make_response()'s dict as JSON; an ApiError becomes its 4xx, anything else a 500."""
        try:
            response = make_response()
        except ApiError as error:
            self._send_json(error.status, {"error": error.message})
        except Exception as error:  # a bug: say so, keep serving
            self.log_error("internal error: %s: %s", type(error).__name__, error)
            self._send_json(500, {"error": f"internal error: {type(error).__name__}: {error}"})
        else:
            self._send_json(200, response)

    def _read_body(self):
        """The request body, at most MAX_BODY_BYTES; the length must be given up front."""
        length = self.headers.get("Content-Length")
        if length is None:
            self.close_connection = True  # a chunked body would be left unread on the connection
            raise ApiError(411, "a Content-Length header is required")
        if not length.isdigit():
            self.close_connection = True
            raise ApiError(400, f"Content-Length must be a non-negative integer, got {length!r}")
        if int(length) > MAX_BODY_BYTES:
            self.close_connection = True  # the body stays unread, so this connection cannot be reused
            raise ApiError(413, f"the body is {int(length):,} bytes, more than the limit of {MAX_BODY_BYTES:,} bytes")
        return self.rfile.read(int(length))

    def _discard_body(self):
        """Read and drop a small body so that the connection stays usable; close it for a large one."""
        length = self.headers.get("Content-Length", "0")
        if length.isdigit() and int(length) <= MAX_BODY_BYTES:
            self.rfile.read(int(length))
        else:
            self.close_connection = True

    def _send_json(self, status, value, allow=None):
        self._send(status, json.dumps(value, allow_nan=False).encode("utf-8"), "application/json", allow)

    def _send(self, status, content, content_type, allow=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(content)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        if allow:
            self.send_header("Allow", allow)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":  # a HEAD answer has GET's headers, Content-Length included, and no body
            self.wfile.write(content)

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)


class ExplorerServer(ThreadingHTTPServer):
    """A threading HTTP server that holds the Explorer and the page's files, read once at start."""

    daemon_threads = True
    # The listen backlog: socketserver's default of 5 makes the kernel drop (and later reset) the
    # connections of a burst of clients, such as 20 opened at once; each accepted one gets a thread.
    request_queue_size = 64

    def __init__(self, address, explorer, verbose=False):
        self.explorer, self.verbose = explorer, verbose
        self.model_info = explorer.model_info()
        self.static = {}
        for url_path, (file_name, content_type) in STATIC_FILES.items():
            with open(os.path.join(STATIC_DIR, file_name), "rb") as f:
                self.static[url_path] = (f.read(), content_type)
        super().__init__(address, ExplorerHandler)

    @property
    def url(self):
        host, port = self.server_address[:2]
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/"


def start_server(explorer, host="127.0.0.1", port=0, verbose=False):
    """Start an ExplorerServer in a background thread (port 0: any free port); returns the server.
    Stop it with server.shutdown(); server.server_close()."""
    server = ExplorerServer((host, port), explorer, verbose)
    threading.Thread(target=server.serve_forever, name="explorer-server", daemon=True).start()
    return server


def one_blas_thread():
    """A context in which NumPy's BLAS (OpenBLAS) uses one thread, restored on exit.

    The explorer's matrices are small (a batch of 10 images), so a second BLAS thread saves
    nothing, and on a busy machine each multithreaded product waits for a core, many times longer
    than the product itself. threadpoolctl is in requirements.txt; without it BLAS keeps its default.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def host_warning(host):
    """A warning for a host that is not a loopback address (other machines could reach the page), else None."""
    if host == "localhost":
        return None
    try:
        if ipaddress.ip_address(host).is_loopback:
            return None
    except ValueError:
        pass
    return (f"WARNING: --host {host} is not a loopback address: anyone who can reach this machine on the "
            f"network can use the explorer. Use 127.0.0.1 unless you mean that.")


# --- Script ---

def quick_check(explorer):
    """Start a server on a free port, send one MNIST test image through the HTTP API as the page
    would, print what came back, and stop."""
    server = start_server(explorer)
    connection = http.client.HTTPConnection(*server.server_address[:2], timeout=30)
    try:
        connection.request("GET", "/api/test-image?index=0")
        test_image = json.loads(connection.getresponse().read())
        image = decode_array(test_image["image"])
        start = time.perf_counter()
        connection.request("POST", "/api/predict", json.dumps({"image": image.tolist()}),
                           {"Content-Type": "application/json"})
        response = connection.getresponse()
        answer = json.loads(response.read())
        milliseconds = 1000 * (time.perf_counter() - start)
    finally:
        connection.close()
        server.shutdown()
        server.server_close()
    if response.status != 200:
        raise SystemExit(f"quick check failed: HTTP {response.status}: {answer}")
    print(f"test image 0 (label {test_image['label']}): predicted {answer['predicted']} with probability "
          f"{answer['confidence']:.3f}; {len(answer['layers'])} layers of maps, Grad-CAM of "
          f"{answer['gradcam']['maps']['shape'][0]} classes from {answer['gradcam']['layer']}; {milliseconds:.1f} ms")


def main():
    parser = argparse.ArgumentParser(description="A local web page: draw a digit and watch a CNN's layers respond.")
    parser.add_argument("--model", default=DEFAULT_MODEL_PATH,
                        help="a saved model: .npz (NumPy), .pt/.pth (PyTorch checkpoint) or .keras "
                             "(default: the shipped NumPy SimpleCNN, models/simple_cnn.npz)")
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 picks a free one)")
    parser.add_argument("--seed", type=int, default=None, help="seed of the random test images")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument("--quick", action="store_true", help="answer one prediction through the HTTP API and exit")
    args = parser.parse_args()

    start = time.perf_counter()
    try:
        model, framework, parameters = load_model_file(args.model)
    except (FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    explorer = Explorer(model, framework, parameters, name=os.path.basename(args.model), seed=args.seed)
    print(f"model {explorer.name} ({framework}, {parameters:,} parameters); maps of {', '.join(explorer.map_layers)}; "
          f"Grad-CAM from {explorer.gradcam_layer}; loaded in {time.perf_counter() - start:.1f} s", flush=True)
    with one_blas_thread():
        if args.quick:
            quick_check(explorer)
            return
        warning = host_warning(args.host)
        if warning:
            print(warning, flush=True)
        try:
            server = ExplorerServer((args.host, args.port), explorer, args.verbose)
        except OSError as error:
            parser.error(f"cannot listen on {args.host}:{args.port}: {error}")
        print(f"CNN explorer at {server.url}  (Ctrl+C to stop)", flush=True)
        # Load MNIST's test set in the background, so that the first "random test image" is instant.
        threading.Thread(target=explorer.test_set, daemon=True).start()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            print("stopped")
        finally:
            server.server_close()


if __name__ == "__main__":
    main()
