"""See what a CNN learns: filters, feature maps, the convolution itself, saliency and Grad-CAM.

Every figure function takes plain arrays or a trained model of any of the three frameworks
(the NumPy `CNN` of cnn_from_scratch.py, a `torch.nn.Module`, a `keras.Model`), addresses layers
by name or index, works on 1-channel MNIST images, returns a matplotlib Figure and, given
`save_path`, writes a PNG. The story, top to bottom: one small adapter per framework that answers
the same five questions (layers, weights, activations, logits, gradients) in one layout (NCHW);
then one function per figure; then `main()`.

Run it:
    python visualize_features.py --quick                       # under a minute: 4,000 images, 1 epoch
    python visualize_features.py                               # NumPy SimpleCNN, 2 epochs on MNIST, writes plots/
    python visualize_features.py --framework pytorch|keras     # the same figures for the other frameworks
    python visualize_features.py --save simple_cnn.npz                   # also keep the trained model
    python visualize_features.py --model-path simple_cnn.npz             # figures of a saved model, no training
In a REPL:
    >>> import numpy as np, visualize_features as vis
    >>> from cnn_from_scratch import make_simple_cnn
    >>> model = make_simple_cnn(rng=np.random.default_rng(0))
    >>> vis.layer_names(model)          # ['conv1', 'relu1', 'pool1', 'conv2', ...]
    >>> figure = vis.plot_filters(model, save_path="filters.png")

Layer names: every layer gets a name made of its kind and a running count, the same in every
framework for the same architecture: conv1, relu1, pool1, conv2, relu2, pool2, flatten1, dense1,
relu3, dense2 for the SimpleCNN. A framework's own names (torch "features.0", Keras "conv2d") and
integer indices into that list work too. Keras is channels-last (NHWC): its adapter converts at
that boundary only, so everything this module returns is NCHW like NumPy and PyTorch.
"""
import argparse
import importlib
import os
import sys
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnn_from_scratch import CNN, conv2d_forward, pool2d_forward

KINDS = {  # class name -> kind, for the three frameworks' layer classes
    "ConvolutionLayer": "conv", "Conv2d": "conv", "Conv2D": "conv",
    "PoolingLayer": "pool", "MaxPool2d": "pool", "AvgPool2d": "pool", "MaxPooling2D": "pool",
    "AveragePooling2D": "pool",
    "ReLULayer": "relu", "ReLU": "relu", "LeakyReLULayer": "leaky_relu", "LeakyReLU": "leaky_relu",
    "ELULayer": "elu", "ELU": "elu", "TanhLayer": "tanh", "Tanh": "tanh",
    "SigmoidLayer": "sigmoid", "Sigmoid": "sigmoid",
    "FullyConnectedLayer": "dense", "Linear": "dense", "Dense": "dense",
    "FlattenLayer": "flatten", "Flatten": "flatten",
    "BatchNormLayer": "batchnorm", "BatchNorm2d": "batchnorm", "BatchNorm1d": "batchnorm",
    "BatchNormalization": "batchnorm", "DropoutLayer": "dropout", "Dropout": "dropout",
}
ACTIVATION_KINDS = ("relu", "leaky_relu", "elu", "tanh", "sigmoid")


# --- Adapters: one view of three frameworks ---
# Each adapter wraps one model and answers the same questions in the same layout: its layers in
# forward order, a layer's weights (conv (F, C, HH, WW), dense (in_features, out_features)), a conv
# layer's bias, stride and padding, the outputs of chosen layers and the logits for images of
# shape (N, C, H, W), and the gradients of class scores. adapter_for(model) picks one, once; the
# functions below never ask which framework it is. A fourth framework means one more adapter here
# and a module with the shared interface (set_seed, build_model, fit, evaluate, count_parameters,
# save, load) for train_or_load.

def one_hot_scores(num_classes, classes):
    """d(sum of each image's class score) / d(logits): one one-hot row per image, of shape (N, num_classes)."""
    rows = np.zeros((len(classes), num_classes))
    rows[np.arange(len(classes)), classes] = 1
    return rows


class NumpyAdapter:
    """cnn_from_scratch.CNN: the layers' own forward and hand-written backward passes."""
    name, module_name = "numpy", "cnn_from_scratch"

    @staticmethod
    def owns(model):
        return isinstance(model, CNN)

    def __init__(self, model):
        self.model = model

    def layers(self):
        return list(self.model.layers)

    def native_names(self):
        return {}  # NumPy layers have no names of their own

    def weight(self, layer):
        return layer.params["W"]  # already conv (F, C, HH, WW), dense (in_features, out_features)

    def conv_geometry(self, layer):
        """(bias of shape (F,), (stride_h, stride_w), padding): padding (pad_h, pad_w), "same" or "valid"."""
        return layer.params["b"], layer.stride, layer.padding

    def _forward(self, x, stop=None):
        """Outputs of layers[:stop] for x of shape (N, C, H, W), in evaluation mode."""
        self.model.eval()
        outputs = []
        for layer in self.model.layers[:stop]:
            x = layer.forward(x)
            outputs.append(x)
        return outputs

    def activations(self, x, positions):
        outputs = self._forward(x, max(positions) + 1)
        return [outputs[p] for p in positions]

    def logits(self, x):
        return self.model.predict_logits(x)

    def gradients(self, x, classes, position):
        # Forward layer by layer, then the CNN's own backward layer by layer, keeping every dout.
        outputs = self._forward(x)
        first, dout = self.model.layers[0], one_hot_scores(outputs[-1].shape[1], classes).astype(outputs[-1].dtype)
        douts = [None] * len(outputs)
        saved, first.needs_input_grad = first.needs_input_grad, True  # training skips d(loss)/d(images)
        try:
            for index in reversed(range(len(outputs))):
                douts[index] = dout  # gradient with respect to the output of layer `index`
                dout = self.model.layers[index].backward(dout)
        finally:
            first.needs_input_grad = saved
        return dict(input_grad=dout, activation=outputs[position], activation_grad=douts[position],
                    logits=outputs[-1])

    def save(self, path):
        importlib.import_module(self.module_name).save(self.model, path)


class TorchAdapter:
    """torch.nn.Module: forward hooks on the leaf modules, autograd for the gradients."""
    name, module_name = "pytorch", "cnn_pytorch"

    @staticmethod
    def owns(model):
        torch = sys.modules.get("torch")  # a torch model cannot exist unless torch was imported
        return torch is not None and isinstance(model, torch.nn.Module)

    def __init__(self, model):
        self.model = model
        self.device = next(model.parameters()).device

    def layers(self):
        """The leaf modules in registration order (forward order for the models of cnn_pytorch.py)."""
        return [module for module in self.model.modules() if not any(True for _ in module.children())]

    def native_names(self):
        return {id(module): name for name, module in self.model.named_modules()}

    def weight(self, layer):
        weight = layer.weight.detach().cpu().numpy()
        return weight.T if weight.ndim == 2 else weight  # nn.Linear stores (out, in); conv is (F, C, HH, WW)

    def conv_geometry(self, layer):
        bias = np.zeros(layer.out_channels, np.float32) if layer.bias is None else layer.bias.detach().cpu().numpy()
        return bias, tuple(layer.stride), layer.padding  # padding: (pad_h, pad_w), or "same" / "valid"

    def _run(self, x, positions):
        """(outputs of the layers at positions, logits) as tensors; the caller chooses no_grad or not."""
        import torch
        captured, handles = {}, []
        layers = self.layers()
        for p in positions:
            handles.append(layers[p].register_forward_hook(
                lambda module, inputs, output, p=p: captured.__setitem__(p, output)))
        self.model.eval()
        try:
            logits = self.model(x if torch.is_tensor(x) else torch.as_tensor(x, device=self.device))
        finally:
            for handle in handles:
                handle.remove()
        return [captured[p] for p in positions], logits

    def activations(self, x, positions):
        import torch
        with torch.no_grad():
            outputs, _ = self._run(x, positions)
        return [output.cpu().numpy() for output in outputs]

    def logits(self, x):
        import torch
        with torch.no_grad():
            return self._run(x, [])[1].cpu().numpy()

    def gradients(self, x, classes, position):
        import torch
        inputs = torch.as_tensor(x, device=self.device).clone().requires_grad_(True)
        (activation,), logits = self._run(inputs, [position])
        activation.retain_grad()  # an intermediate tensor: autograd frees its gradient unless asked
        logits.backward(torch.as_tensor(one_hot_scores(logits.shape[1], classes), dtype=logits.dtype,
                                        device=self.device))  # d(sum of scores) / d(logits)
        return dict(input_grad=inputs.grad.cpu().numpy(), activation=activation.detach().cpu().numpy(),
                    activation_grad=activation.grad.cpu().numpy(), logits=logits.detach().cpu().numpy())

    def save(self, path):
        """cnn_pytorch.save, with the name of the model's class so that load can rebuild it."""
        import cnn_pytorch
        model_name = next((name for name, builder in cnn_pytorch.MODELS.items() if builder is type(self.model)), None)
        cnn_pytorch.save(self.model, path, model_name=model_name)


def to_channels_first(array):
    """A Keras activation back to NCHW: (N, H, W, C) -> (N, C, H, W); 2-D arrays are left alone."""
    array = np.asarray(array)
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2)) if array.ndim == 4 else array


class KerasAdapter:
    """keras.Model (TensorFlow backend): images go in channels-last through cnn_keras.to_channels_last
    and every 4-D result comes back NCHW; GradientTape for the gradients."""
    name, module_name = "keras", "cnn_keras"

    @staticmethod
    def owns(model):
        keras = sys.modules.get("keras")
        return keras is not None and isinstance(model, keras.Model)

    def __init__(self, model):
        self.model = model

    def layers(self):
        return list(self.model.layers)

    def native_names(self):
        return {id(layer): layer.name for layer in self.model.layers}

    def weight(self, layer):
        kernel = np.asarray(layer.kernel)
        return kernel.transpose(3, 2, 0, 1) if kernel.ndim == 4 else kernel  # conv (HH, WW, C, F) -> (F, C, HH, WW)

    def conv_geometry(self, layer):
        bias = np.asarray(layer.bias) if layer.use_bias else np.zeros(layer.filters, np.float32)
        return bias, tuple(layer.strides), layer.padding  # padding: "same" or "valid"

    def _run(self, inputs, positions):
        """(outputs of the layers at positions, logits) for inputs of shape (N, H, W, C), as tensors."""
        import keras
        import tensorflow as tf
        inputs, layers = tf.convert_to_tensor(inputs), self.layers()
        if isinstance(self.model, keras.Sequential):
            # Call the layers one by one. A Sequential model loaded from a .keras file is rebuilt once
            # per layer added, so a layer's `.output` belongs to an older graph than `model.outputs`,
            # and the gradient of the logits with respect to it would be None.
            outputs, out = [], inputs
            for layer in layers:
                out = layer(out, training=False)
                outputs.append(out)
            return [outputs[p] for p in positions], out
        probe = keras.Model(self.model.inputs[0], [layers[p].output for p in positions] + [self.model.outputs[0]])
        results = probe(inputs, training=False)  # one graph, so skip connections are followed
        results = list(results) if isinstance(results, (list, tuple)) else [results]
        return results[:-1], results[-1]

    def activations(self, x, positions):
        import cnn_keras
        outputs, _ = self._run(cnn_keras.to_channels_last(x), positions)
        return [to_channels_first(output) for output in outputs]

    def logits(self, x):
        import cnn_keras
        return np.asarray(self._run(cnn_keras.to_channels_last(x), [])[1])

    def gradients(self, x, classes, position):
        import cnn_keras
        import tensorflow as tf
        inputs = tf.constant(cnn_keras.to_channels_last(x))  # (N, C, H, W) -> (N, H, W, C)
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            (activation,), logits = self._run(inputs, [position])
            score = tf.reduce_sum(tf.gather(logits, classes, axis=1, batch_dims=1))  # each image's own class
        input_grad, activation_grad = tape.gradient(score, [inputs, activation])
        if activation_grad is None:
            raise RuntimeError(f"the logits of this {type(self.model).__name__} do not depend on layer {position}")
        return dict(input_grad=to_channels_first(input_grad), activation=to_channels_first(activation),
                    activation_grad=to_channels_first(activation_grad), logits=np.asarray(logits))

    def save(self, path):
        importlib.import_module(self.module_name).save(self.model, path)


ADAPTERS = (NumpyAdapter, TorchAdapter, KerasAdapter)
FRAMEWORKS = tuple(adapter.name for adapter in ADAPTERS)  # ("numpy", "pytorch", "keras")


def adapter_for(model):
    """The adapter of the model's framework. Torch and Keras are only looked up if already imported."""
    for adapter in ADAPTERS:
        if adapter.owns(model):
            return adapter(model)
    raise TypeError(f"model must be a cnn_from_scratch.CNN, a torch.nn.Module or a keras.Model, "
                    f"got {type(model).__name__}")


def framework_of(model):
    """'numpy', 'pytorch' or 'keras'."""
    return adapter_for(model).name


def framework_module(framework):
    """The module with the shared interface for a framework name: cnn_from_scratch, cnn_pytorch or cnn_keras."""
    modules = {adapter.name: adapter.module_name for adapter in ADAPTERS}
    if framework not in modules:
        raise ValueError(f"framework must be one of {list(modules)}, got {framework!r}")
    return importlib.import_module(modules[framework])


# --- Layers by name, and the questions every figure asks ---

def model_layers(model):
    """The model's layers in forward order as (name, kind, layer): [('conv1', 'conv', ...), ...]."""
    named, counts = [], {}
    for layer in adapter_for(model).layers():
        kind = KINDS.get(type(layer).__name__, type(layer).__name__.lower())
        if kind == "activation":  # keras.layers.Activation("relu") and friends
            kind = layer.get_config()["activation"]
        counts[kind] = counts.get(kind, 0) + 1
        named.append((f"{kind}{counts[kind]}", kind, layer))
    return named


def layer_names(model):
    """Names of the model's layers, as used by every function here: ['conv1', 'relu1', ...]."""
    return [name for name, _, _ in model_layers(model)]


def resolve_layer(model, layer):
    """Position of a layer in model_layers(model), from an index, our name, or the framework's own name."""
    named = model_layers(model)
    if isinstance(layer, (int, np.integer)):
        if not -len(named) <= layer < len(named):
            raise ValueError(f"layer index {layer} out of range for a model with {len(named)} layers")
        return int(layer) % len(named)
    native = adapter_for(model).native_names()
    for position, (name, _, item) in enumerate(named):
        if layer in (name, native.get(id(item))):
            return position
    raise ValueError(f"unknown layer {layer!r}; expected an index or one of {[name for name, _, _ in named]}")


def check_batch(x, name="x"):
    """Raise a clear error unless x is a floating NumPy array of shape (N, C, H, W)."""
    if not isinstance(x, np.ndarray) or x.ndim != 4 or not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must be a float NumPy array of shape (N, C, H, W) (NCHW for every framework), "
                         f"got {type(x).__name__} {getattr(x, 'shape', '')} {getattr(x, 'dtype', '')}")


def weight_arrays(model):
    """{layer name: weight array} for every conv and dense layer: conv (F, C, HH, WW), dense (in, out).

    Note: Keras flattens in (H, W, C) order, so the rows of its first dense kernel are a permutation
    of the NumPy/PyTorch ones (see cnn_keras.py); conv weights agree exactly.
    """
    adapter = adapter_for(model)
    return {name: adapter.weight(layer) for name, kind, layer in model_layers(model) if kind in ("conv", "dense")}


def first_conv_filters(model):
    """Weights of the first convolution layer as an array of shape (F, C, HH, WW)."""
    convolutions = [weights for weights in weight_arrays(model).values() if weights.ndim == 4]
    if not convolutions:
        raise ValueError("the model has no convolution layer")
    return convolutions[0].copy()


def get_activations(model, x, layers=None):
    """Outputs of the chosen layers for a batch, in evaluation mode.

    Inputs: x of shape (N, C, H, W); layers: names or indices (default: all)
    Returns: dict {name: array}, 4-D outputs of shape (N, K, H_out, W_out), in forward order.
    Note: Keras flattens in (H, W, C) order, so its flatten/dense outputs are permuted versions of
    the NumPy/PyTorch ones; conv, pool and activation outputs agree exactly after the NHWC -> NCHW transpose.
    """
    check_batch(x)
    named = model_layers(model)
    positions = list(range(len(named))) if layers is None else sorted(resolve_layer(model, layer) for layer in layers)
    outputs = adapter_for(model).activations(x, positions)
    return {named[p][0]: output for p, output in zip(positions, outputs)}


def predict_logits(model, x, batch_size=1000):
    """Logits of shape (N, num_classes) for x of shape (N, C, H, W), in evaluation mode."""
    check_batch(x)
    adapter = adapter_for(model)
    return np.concatenate([adapter.logits(x[start:start + batch_size]) for start in range(0, len(x), batch_size)])


def class_score_gradients(model, x, classes, layer):
    """Gradients of each image's class score (its logit, before softmax) for saliency and Grad-CAM.

    Inputs: x of shape (N, C, H, W); classes of shape (N,) (the class whose score to explain);
    layer: name or index of a layer with 4-D output
    Returns: dict with "input_grad" of shape (N, C, H, W), "activation" and "activation_grad" of shape
    (N, K, h, w) (the layer's output and d score / d output), "logits" of shape (N, num_classes).
    Each image's score depends only on that image (evaluation mode), so one backward pass of the
    summed scores gives every image's own gradients.
    """
    check_batch(x)
    classes = np.array(np.broadcast_to(np.asarray(classes, dtype=np.int64), (len(x),)))  # a writable (N,) copy
    position = resolve_layer(model, layer)
    result = adapter_for(model).gradients(x, classes, position)
    if result["activation"].ndim != 4:
        raise ValueError(f"layer {model_layers(model)[position][0]!r} has output shape {result['activation'].shape}; "
                         f"Grad-CAM needs a convolutional (N, K, h, w) output")
    return result


def default_gradcam_layer(model):
    """The rectified feature maps of the last convolution (Selvaraju et al. 2017): the activation
    right after the last conv layer (past any BatchNorm or Dropout), else that conv layer itself."""
    named = model_layers(model)
    conv_positions = [position for position, (_, kind, _) in enumerate(named) if kind == "conv"]
    if not conv_positions:
        raise ValueError("Grad-CAM needs a model with a convolution layer")
    for name, kind, _ in named[conv_positions[-1] + 1:]:
        if kind in ACTIVATION_KINDS:
            return name
        if kind not in ("batchnorm", "dropout"):
            break
    return named[conv_positions[-1]][0]


# --- Computations behind the figures ---

def saliency_map(input_grad):
    """Simonyan et al. (2014): |d score / d pixel|, the largest over channels. (N, C, H, W) -> (N, H, W)."""
    return np.abs(input_grad).max(axis=1)


def grad_cam(activation, activation_grad, size):
    """Grad-CAM (Selvaraju et al. 2017): weight each feature map by its mean gradient, sum, rectify.

    Inputs: activation and activation_grad of shape (N, K, h, w); size = (H, W) of the input
    Returns: cam of shape (N, H, W), non-negative, upsampled bilinearly (cv2.resize) to the input size.
    cam = ReLU(sum over k of alpha_k * A_k), with alpha_k = mean over (i, j) of d score / d A_k[i, j].
    """
    import cv2
    alpha = activation_grad.mean(axis=(2, 3))  # (N, K)
    cam = np.maximum((alpha[:, :, None, None] * activation).sum(axis=1), 0)  # (N, h, w)
    return np.stack([cv2.resize(c.astype(np.float32), (size[1], size[0]), interpolation=cv2.INTER_LINEAR)
                     for c in cam])  # (N, H, W); cv2 takes (width, height)


def digit_mask(images, threshold=0.1):
    """The digit's pixels: brighter than threshold, grown by one pixel (3x3 dilation). (N, C, H, W) -> (N, H, W) bool."""
    import cv2
    bright = (images.max(axis=1) > threshold).astype(np.uint8)  # (N, H, W)
    return np.stack([cv2.dilate(mask, np.ones((3, 3), np.uint8)) for mask in bright]).astype(bool)


def mass_on_digit(cam, images):
    """Fraction of each map's total on the digit's pixels, and the digit's share of the image area
    (what a uniform map would score). cam of shape (N, H, W), images (N, C, H, W) -> two arrays (N,)."""
    mask = digit_mask(images)
    return (cam * mask).sum(axis=(1, 2)) / np.maximum(cam.sum(axis=(1, 2)), 1e-12), mask.mean(axis=(1, 2))


def dead_unit_fraction(activation):
    """Fraction of units that are never active (output <= 0 everywhere) on a batch.

    A unit is a channel (a whole feature map) for output of shape (N, K, H, W), a neuron for (N, K).
    """
    if activation.ndim not in (2, 4):
        raise ValueError(f"expected an activation of shape (N, K) or (N, K, H, W), got {activation.shape}")
    ever_active = (activation > 0).any(axis=(0, 2, 3) if activation.ndim == 4 else 0)  # (K,)
    return float(1 - ever_active.mean())


def apply_kernel_opencv(image, kernel):
    """Correlate a 2-D image with a 2-D kernel using OpenCV, zero padding, same output size.

    cv2.filter2D computes correlation (no flip), like our layers; BORDER_CONSTANT pads with zeros,
    which equals conv2d_forward with padding = kernel_size // 2 for odd kernels.
    """
    import cv2
    dtype = np.result_type(image.dtype, np.float32)
    return cv2.filter2D(image.astype(dtype), -1, kernel.astype(dtype), borderType=cv2.BORDER_CONSTANT)


CLASSIC_KERNELS = {
    "Sobel x\n(vertical edges)": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], dtype=np.float64),
    "Sobel y\n(horizontal edges)": np.array([[-1, -2, -1], [0, 0, 0], [1, 2, 1]], dtype=np.float64),
    "Prewitt x": np.array([[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]], dtype=np.float64),
    "box blur": np.full((3, 3), 1 / 9),
    "Gaussian blur": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]], dtype=np.float64) / 16,
    "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]], dtype=np.float64),
    "Laplacian\n(ridges, spots)": np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64),
}


def synthetic_images(size=32, seed=0):
    """Four test patterns of shape (size, size) in [0, 1]: edges, texture, gradient, checkerboard."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size] / size  # each (size, size), values in [0, 1)
    edges = np.zeros((size, size))
    edges[size // 4:3 * size // 4, size // 4:3 * size // 4] = 1.0  # a bright square: 4 straight edges
    texture = 0.5 + 0.25 * np.sin(2 * np.pi * 5 * cols) * np.sin(2 * np.pi * 3 * rows) + 0.1 * rng.standard_normal((size, size))
    checkerboard = ((np.arange(size)[:, None] // 4 + np.arange(size)[None, :] // 4) % 2).astype(np.float64)
    return {"edges": edges, "texture": np.clip(texture, 0, 1), "gradient": (rows + cols) / 2,
            "checkerboard": checkerboard}


# --- Figures ---

def new_figure(width, height):
    """A Figure drawn by the Agg backend (no pyplot, no window), with constrained layout."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _finish(figure, save_path):
    if save_path is not None:
        os.makedirs(os.path.dirname(os.path.abspath(save_path)), exist_ok=True)
        figure.savefig(save_path, dpi=110)
    return figure


def _image_of(image):
    """One image of shape (C, H, W) or (1, C, H, W) -> (H, W) for display (channel mean if C > 1)."""
    image = np.asarray(image)
    image = image[0] if image.ndim == 4 else image
    return image.mean(axis=0) if image.ndim == 3 else image


def _as_batch(image):
    """One image of shape (C, H, W) or a batch of shape (N, C, H, W) -> the batch of its first image."""
    image = np.asarray(image)
    return (image[None] if image.ndim == 3 else image)[:1]  # (1, C, H, W)


def _colormap(name):
    """A registered matplotlib colormap by name (a copy, safe to modify)."""
    from matplotlib import colormaps
    return colormaps[name].copy()


def _show_map(ax, values, limit, negative):
    """Signed maps on a diverging colormap centred on zero; non-negative ones (after ReLU) on viridis."""
    return ax.imshow(values, cmap="RdBu_r" if negative else "viridis", vmin=-limit if negative else 0, vmax=limit)


def plot_filters(source, save_path=None):
    """Figure 1: the first convolution layer's filters as a grid of F panels, one shared color scale.

    Inputs: a model (any framework) or filters of shape (F, C, HH, WW); for C > 1 each panel shows
    the mean over input channels. Blue is negative, red positive, white zero.
    Returns: the Figure; figure.filter_axes lists the F image panels.
    """
    filters = source if isinstance(source, np.ndarray) else first_conv_filters(source)
    if filters.ndim != 4:
        raise ValueError(f"filters must have shape (F, C, HH, WW), got {filters.shape}")
    F, C, HH, WW = filters.shape
    columns = int(np.ceil(np.sqrt(F)))
    rows = -(-F // columns)  # ceil(F / columns)
    figure = new_figure(1.3 * columns + 1.2, 1.3 * rows + 0.8)
    limit = np.abs(filters).max() or 1.0  # one symmetric scale centred on zero for every panel
    axes = figure.subplots(rows, columns, squeeze=False)
    figure.filter_axes = []
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index < F:
            image = ax.imshow(filters[index].mean(axis=0), cmap="RdBu_r", vmin=-limit, vmax=limit)
            ax.set_title(f"filter {index}", fontsize=9)
            figure.filter_axes.append(ax)
    figure.colorbar(image, ax=axes, shrink=0.8, label="weight")
    channels = "" if C == 1 else f", mean over {C} input channels"
    figure.suptitle(f"First convolution layer: {F} learned {HH}x{WW} filters{channels}")
    return _finish(figure, save_path)


def plot_feature_maps(source, image, layer=None, max_maps=32, save_path=None):
    """Figure 2: the feature maps of one input at one layer, with the input beside them.

    Each map is one channel of the layer's output: where that channel's filter responds. Maps are
    detectors of local patterns, not of parts of the digit: one map may fire on several strokes.

    Inputs: source: a model, or the maps themselves of shape (K, h, w); image of shape (C, H, W)
    or (1, C, H, W); layer: name or index (default: the first conv layer's activation)
    Returns: the Figure; figure.feature_maps holds the maps shown, of shape (min(K, max_maps), h, w).
    """
    batch = _as_batch(image)
    if isinstance(source, np.ndarray):
        maps, title = source, "feature maps"
    else:
        if layer is None:
            layer = next(name for name, kind, _ in model_layers(source) if kind in ACTIVATION_KINDS)
        name = model_layers(source)[resolve_layer(source, layer)][0]
        maps, title = get_activations(source, batch, [layer])[name][0], f"layer {name}"
        if maps.ndim != 3:
            raise ValueError(f"layer {name!r} has output shape {maps.shape}; feature maps need (K, h, w)")
    maps = maps[:max_maps]
    columns = min(8, len(maps))
    rows = -(-len(maps) // columns)  # ceil(K / columns)
    figure = new_figure(13, max(3.8, 1.3 * rows + 1.0))
    left, right = figure.subfigures(1, 2, width_ratios=[1, 3])
    ax = left.subplots()
    shown = ax.imshow(_image_of(batch), cmap="gray")
    ax.set_title(f"input {_image_of(batch).shape[0]}x{_image_of(batch).shape[1]}")
    ax.set_axis_off()
    left.colorbar(shown, ax=ax, location="bottom", shrink=0.8, label="pixel value")
    axes = right.subplots(rows, columns, squeeze=False)
    negative = maps.min() < 0
    limit = np.abs(maps).max() or 1.0
    for index, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if index < len(maps):
            shown = _show_map(ax, maps[index], limit, negative)
            ax.set_title(f"map {index}", fontsize=8)
    right.colorbar(shown, ax=axes, shrink=0.8, label="activation")
    scale = "white = 0, red positive, blue negative" if negative else "dark = 0, bright = strong response"
    right.suptitle(f"{title}: {len(maps)} maps of {maps.shape[1]}x{maps.shape[2]}, one per channel, on one shared "
                   f"scale ({scale}).\nEach map shows where one learned filter responds in this image. A filter "
                   f"detects a local pattern (an edge or stroke\nat some angle) wherever it occurs, so one map can "
                   f"light up on several parts of the digit, and one part in several maps.", fontsize=10)
    figure.feature_maps = maps
    return _finish(figure, save_path)


def plot_activation_progression(model, image, max_channels=8, save_path=None):
    """Figure 3: one input through every conv, pool and activation stage (first max_channels channels),
    in blocks that each start at a conv layer.

    Within a block (conv1 -> relu1 -> pool1) a column follows one channel: ReLU and pooling act on
    each channel alone. The next conv layer's channel k is a new filter summed over all the channels
    before it, unrelated to channel k of the block above, so each block numbers its own columns.
    Early maps still look like the digit; after each pool they are smaller and more abstract. Each
    row has its own color scale and colorbar.
    Returns: the Figure; figure.stages is {name: maps shown, of shape (channels, h, w)};
    figure.blocks lists the stage names of each block.
    """
    batch = _as_batch(image)
    kinds = {name: kind for name, kind, _ in model_layers(model) if kind in ("conv", "pool", *ACTIVATION_KINDS)}
    activations = {name: maps for name, maps in get_activations(model, batch, list(kinds)).items() if maps.ndim == 4}
    stages = {name: maps[0, :max_channels] for name, maps in activations.items()}  # each (channels, h, w)
    blocks = []
    for name in stages:
        if kinds[name] == "conv" or not blocks:
            blocks.append([])
        blocks[-1].append(name)
    block_heights = [1.4 * len(block) + 0.55 for block in blocks]
    figure = new_figure(1.35 * max_channels + 2.0, 1.5 + sum(block_heights) + 0.6)
    parts = figure.subfigures(len(blocks) + 1, 1, height_ratios=[1.5] + block_heights)
    axes = parts[0].subplots(1, max_channels)
    for ax in axes:
        ax.set_axis_off()
    shown = axes[0].imshow(_image_of(batch), cmap="gray", vmin=0)
    axes[0].set_axis_on()
    axes[0].set_frame_on(False)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    axes[0].set_ylabel(f"input\n{_image_of(batch).shape[0]}x{_image_of(batch).shape[1]}", fontsize=9)
    parts[0].colorbar(shown, ax=axes, shrink=0.9)
    for part, block in zip(parts[1:], blocks):
        part.set_facecolor("0.95")
        rows = part.subplots(len(block), max_channels, squeeze=False)
        for row, name in zip(rows, block):
            maps = stages[name]
            negative, limit = maps.min() < 0, np.abs(maps).max() or 1.0
            for channel, ax in enumerate(row):
                ax.set_xticks([])
                ax.set_yticks([])
                if channel < len(maps):
                    shown = _show_map(ax, maps[channel], limit, negative)
                else:
                    ax.set_axis_off()
            for ax in row:
                ax.set_frame_on(False)
            row[0].set_ylabel(f"{name}\n{maps.shape[1]}x{maps.shape[2]}", fontsize=9)
            part.colorbar(shown, ax=row, shrink=0.9)
        for channel, ax in enumerate(rows[0]):
            ax.set_title(f"{block[0]} ch {channel}", fontsize=8)
        total = activations[block[0]].shape[1]
        part.suptitle(f"{' -> '.join(block)}: channels 0-{len(stages[block[0]]) - 1} of {total}; "
                      f"a column follows one channel down this block", fontsize=10)
    figure.suptitle("Activation progression: one image through every conv / activation / pool stage. Only the "
                    f"first {max_channels} channels of each layer are shown.\nA conv layer's channel k mixes all "
                    "channels of the block above: it is not a continuation of that block's channel k.")
    figure.stages, figure.blocks = stages, blocks
    return _finish(figure, save_path)


def windows_overlap(first, second, kernel_shape):
    """Whether the input windows under output cells first = (i, j) and second overlap (stride 1)."""
    HH, WW = kernel_shape
    return abs(first[0] - second[0]) < HH and abs(first[1] - second[1]) < WW


def non_overlapping_positions(output, kernel_shape):
    """Up to three output cells to explain, whose input windows do not overlap: the top-left cell (the
    first step of the slide), then the largest and the smallest output among the cells left.
    output of shape (H_out, W_out) -> list of (i, j)."""
    chosen = [(0, 0)]
    for order in (np.argsort(-output, axis=None), np.argsort(output, axis=None)):  # largest first, smallest first
        for i, j in zip(*np.unravel_index(order, output.shape)):
            if not any(windows_overlap((int(i), int(j)), position, kernel_shape) for position in chosen):
                chosen.append((int(i), int(j)))
                break
    return chosen


def plot_convolution_steps(image, kernel, bias=0.0, positions=None, save_path=None):
    """Figure 4: the convolution operation step by step (stride 1, no padding).

    Inputs: image of shape (H, W) (small: about 6x6 to 10x10 keeps the numbers readable);
    kernel of shape (HH, WW); positions: output cells (i, j) to explain (default: the top-left
    cell, the largest and the smallest output whose input windows do not overlap, see
    non_overlapping_positions)
    Returns: the Figure; figure.conv_demo = {"output": conv2d_forward's map of shape (H_out, W_out),
    "steps": [{"position": (i, j), "window", "products", "total"}]}, where each total is the
    multiply-and-sum written out in the figure, computed here independently of conv2d_forward.
    """
    image, kernel = np.asarray(image, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    if image.ndim != 2 or kernel.ndim != 2:
        raise ValueError(f"image and kernel must be 2-D, got shapes {image.shape} and {kernel.shape}")
    HH, WW = kernel.shape
    out, _ = conv2d_forward(image[None, None], kernel[None, None], np.array([bias]), stride=1, padding=0)
    output = out[0, 0]  # (1, 1, H_out, W_out) -> (H_out, W_out), H_out = H - HH + 1
    positions = non_overlapping_positions(output, (HH, WW)) if positions is None else positions
    steps = []
    for i, j in positions:
        window = image[i:i + HH, j:j + WW]  # (HH, WW): the input under the kernel for output (i, j)
        products = window * kernel
        steps.append(dict(position=(i, j), window=window, products=products, total=float(products.sum() + bias)))
    colors = ["tab:orange", "tab:green", "tab:purple", "tab:red", "tab:brown"]
    text_height = 0.22 * (HH + 3) + 0.3  # inches: HH lines of products, the bias, the total, the check, a title
    figure = new_figure(15, 5.6 + text_height)
    top, bottom = figure.subfigures(2, 1, height_ratios=[5.6, text_height])
    ax_input, ax_kernel, ax_output = top.subplots(1, 3, width_ratios=[image.shape[1], WW + 1, output.shape[1]])
    panels = ((ax_input, image, "gray", "input x", "{:.2f}"), (ax_kernel, kernel, "RdBu_r", "kernel w", "{:g}"),
              (ax_output, output, "RdBu_r", "output = conv2d_forward(x, w)", "{:.2f}"))
    for ax, values, cmap, title, number_format in panels:
        limit = np.abs(values).max() or 1.0
        ax.imshow(values, cmap=cmap, vmin=-limit if cmap == "RdBu_r" else 0, vmax=limit)
        for (r, c), value in np.ndenumerate(values):
            dark = value < 0.5 * limit if cmap == "gray" else abs(value) > 0.6 * limit
            ax.text(c, r, number_format.format(value), ha="center", va="center", fontsize=9,
                    color="white" if dark else "black")
        ax.set_title(f"{title}  ({values.shape[0]}x{values.shape[1]})")
        ax.set_xticks(range(values.shape[1]))
        ax.set_yticks(range(values.shape[0]))
        ax.set_xlabel("column")
        ax.set_ylabel("row")
    for step, color in zip(steps, colors):
        i, j = step["position"]
        inset = 0.06  # frames drawn slightly inside their cells, so that neighbouring windows stay apart
        ax_input.add_patch(Rectangle((j - 0.5 + inset, i - 0.5 + inset), WW - 2 * inset, HH - 2 * inset, fill=False,
                                     edgecolor=color, linewidth=3))
        ax_output.add_patch(Rectangle((j - 0.5 + inset, i - 0.5 + inset), 1 - 2 * inset, 1 - 2 * inset, fill=False,
                                      edgecolor=color, linewidth=3))
    axes = np.atleast_1d(bottom.subplots(1, len(steps)))
    for ax, step, color in zip(axes, steps, colors):
        ax.set_axis_off()
        i, j = step["position"]
        terms = [[f"{x:.2f}*{w:g}" if w >= 0 else f"{x:.2f}*({w:g})" for x, w in zip(step["window"][r], kernel[r])]
                 for r in range(HH)]
        text = "\n+ ".join(" + ".join(row) for row in terms) + (f"\n+ bias {bias:g}" if bias else "")
        text += f"\n= {step['total']:.4f}\n(conv2d_forward: {output[i, j]:.4f})"
        ax.text(0.5, 1.0, text, family="monospace", fontsize=10.5, ha="center", va="top", transform=ax.transAxes)
        ax.set_title(f"output[{i}, {j}] = sum(window * kernel)", color=color, fontsize=11)
    figure.suptitle("Convolution step by step: slide the kernel, multiply element-wise, sum "
                    "(cross-correlation, no flip; stride 1, no padding)")
    figure.conv_demo = dict(output=output, steps=steps)
    return _finish(figure, save_path)


def plot_filter_responses(images=None, kernels=None, save_path=None):
    """Figure 5: classic hand-designed kernels applied with cv2.filter2D to synthetic test patterns.

    Inputs: images: {name: array (H, W)} (default: synthetic_images(), made up, not MNIST);
    kernels: {name: array} (default: CLASSIC_KERNELS). One column per kernel with one color scale:
    a signed kernel's responses on a diverging map centred on zero (red-blue), a kernel whose
    responses are never negative (the blurs) on a sequential one (viridis, dark = 0).
    Returns: the Figure; figure.responses is {(image name, kernel name): response of shape (H, W)};
    figure.colormaps is {kernel name: the colormap name of its column}.
    """
    images = synthetic_images() if images is None else images
    kernels = CLASSIC_KERNELS if kernels is None else kernels
    responses = {(image_name, kernel_name): apply_kernel_opencv(image, kernel)
                 for image_name, image in images.items() for kernel_name, kernel in kernels.items()}
    figure = new_figure(2.0 * (len(kernels) + 1), 2.0 * (len(images) + 1) + 1.2)
    axes = figure.subplots(len(images) + 1, len(kernels) + 1, squeeze=False)
    axes[0, 0].set_axis_off()
    axes[0, 0].text(0.5, 0.5, "kernel ->\n\ninput\n|\nv", ha="center", va="center", transform=axes[0, 0].transAxes)
    figure.colormaps = {}
    for column, (kernel_name, kernel) in enumerate(kernels.items(), start=1):
        column_responses = [responses[(image_name, kernel_name)] for image_name in images]
        negative = min(response.min() for response in column_responses) < 0 or kernel.min() < 0
        ax, limit = axes[0, column], np.abs(kernel).max() or 1.0
        _show_map(ax, kernel, limit, negative)
        for (r, c), value in np.ndenumerate(kernel):
            dark = abs(value) > 0.6 * limit if negative else value < 0.5 * limit  # viridis is dark at 0
            ax.text(c, r, f"{value:.2g}", ha="center", va="center", fontsize=8, color="white" if dark else "black")
        ax.set_title(kernel_name, fontsize=9)
        ax.set_axis_off()
        limit = max(np.abs(response).max() for response in column_responses) or 1.0
        for row, response in enumerate(column_responses, start=1):
            shown = _show_map(axes[row, column], response, limit, negative)
            axes[row, column].set_axis_off()
        figure.colorbar(shown, ax=axes[1:, column], location="bottom", shrink=0.9,
                        label="response" if negative else "response (>= 0)")
        figure.colormaps[kernel_name] = shown.get_cmap().name
    for row, (image_name, image) in enumerate(images.items(), start=1):
        axes[row, 0].imshow(image, cmap="gray", vmin=0, vmax=1)
        axes[row, 0].set_xticks([])
        axes[row, 0].set_yticks([])
        axes[row, 0].set_ylabel(image_name)
    figure.suptitle("Classic hand-designed kernels applied with cv2.filter2D (zero padding) to synthetic test "
                    "patterns (not MNIST): edges, blur, sharpen, ridges\nSigned responses on red-blue (white = 0); "
                    "responses that are never negative (the blurs) on viridis (dark = 0)")
    figure.responses = responses
    return _finish(figure, save_path)


def fan_in(weights):
    """Inputs per output unit: C * HH * WW for conv weights (F, C, HH, WW), in_features for dense (in, out)."""
    return int(np.prod(weights.shape[1:])) if weights.ndim == 4 else int(weights.shape[0])


def plot_statistics(model, x, save_path=None):
    """Figure 6: weight histograms per layer, activation histograms per activation layer, and the
    fraction of dead units (never active on the batch x of shape (N, C, H, W)) per activation layer.

    The weight row shows how big each layer's weights are after training, beside its fan-in:
    initialization scales weights by 1 / sqrt(fan-in) (He: std = sqrt(2 / fan-in)) so that every
    layer's output keeps about the size of its input, and training moves them only so far.
    Returns: the Figure; figure.dead_fractions is {activation layer name: fraction in [0, 1]}.
    """
    weights = weight_arrays(model)
    names = [name for name, kind, _ in model_layers(model) if kind in ACTIVATION_KINDS]
    activations = get_activations(model, x, names)
    dead = {name: dead_unit_fraction(values) for name, values in activations.items()}
    figure = new_figure(3.2 * max(len(weights), len(names)), 8.6)
    weight_row, activation_row, dead_row = figure.subfigures(3, 1, height_ratios=[1.15, 1, 0.55])
    for ax, (name, values) in zip(np.atleast_1d(weight_row.subplots(1, len(weights))), weights.items()):
        ax.hist(values.ravel(), bins=60, color="tab:blue")
        ax.set_title(f"{name} {values.shape}: fan-in {fan_in(values)}\nstd {values.std():.3f}, "
                     f"sqrt(2 / fan-in) = {np.sqrt(2 / fan_in(values)):.3f}", fontsize=9)
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
    weight_row.suptitle("Weights after training, every weight of each conv and dense layer: the more inputs a unit "
                        "sums (fan-in), the smaller its weights,\nas initialization made them "
                        "(std about sqrt(2 / fan-in)) so that each layer's output keeps the size of its input",
                        fontsize=10)
    for ax, (name, values) in zip(np.atleast_1d(activation_row.subplots(1, len(names))), activations.items()):
        positive = values[values > 0]
        ax.hist(positive.ravel(), bins=60, color="tab:green", log=True)
        ax.set_title(f"{name}: {np.mean(values <= 0):.0%} of values <= 0 (not shown)", fontsize=9)
        ax.set_xlabel("activation")
        ax.set_ylabel("count (log)")
    activation_row.suptitle(f"Activations (positive values) on {len(x)} images", fontsize=10)
    ax = dead_row.subplots()
    bars = ax.barh(list(dead), [100 * value for value in dead.values()], height=0.6, color="tab:red")
    ax.bar_label(bars, labels=[f"{value:.1%}" for value in dead.values()], padding=3)
    ax.set_xlim(0, 100)
    ax.invert_yaxis()  # the first layer on top
    ax.set_xlabel("dead units (%): a unit is a channel for conv maps, a neuron for dense layers")
    dead_row.suptitle(f"Dead units: never active on any of the {len(x)} images", fontsize=10)
    figure.dead_fractions = dead
    return _finish(figure, save_path)


def plot_saliency_gradcam(model, images, labels, layer=None, save_path=None):
    """Figure 7: for each image, the input, its saliency map and its Grad-CAM, with the digit's outline.

    Saliency is |d score / d pixel| (the largest over channels); Grad-CAM is the ReLU of the sum of
    the layer's maps weighted by their mean gradient, upsampled to the input. The score is the logit
    of `labels`. Both on magma (perceptually uniform: brightness grows with the value), each image
    scaled to its own maximum; the white contour is the digit (pixels brighter than 0.5).
    Inputs: images of shape (N, C, H, W); labels of shape (N,) (the class whose score is explained);
    layer: the Grad-CAM layer (default: default_gradcam_layer(model))
    Returns: the Figure; figure.saliency and figure.gradcam, each of shape (N, H, W).
    """
    layer = default_gradcam_layer(model) if layer is None else layer
    gradients = class_score_gradients(model, images, labels, layer)
    saliency = saliency_map(gradients["input_grad"])
    cam = grad_cam(gradients["activation"], gradients["activation_grad"], images.shape[2:])
    predicted = gradients["logits"].argmax(axis=1)
    figure = new_figure(1.75 * len(images) + 1.4, 6.6)
    axes = figure.subplots(3, len(images), squeeze=False)
    for column, image in enumerate(images):
        gray = _image_of(image)
        axes[0, column].imshow(gray, cmap="gray")
        axes[0, column].set_title(f"digit {labels[column]}\npredicted {predicted[column]}", fontsize=9)
        for row, values in ((1, saliency[column]), (2, cam[column])):
            shown = axes[row, column].imshow(values / (values.max() or 1), cmap="magma", vmin=0, vmax=1)
            axes[row, column].contour(gray, levels=[0.5], colors="white", linewidths=0.7)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    for row, text in enumerate(("input", "saliency\n|d score / d x|", f"Grad-CAM\n(layer {layer})")):
        axes[row, 0].set_ylabel(text, fontsize=9)
    figure.colorbar(shown, ax=axes[1:, :], shrink=0.8, label="fraction of the image's maximum")
    shown_labels = ", ".join(str(label) for label in labels)
    figure.suptitle(f"Where the model looks, for test images of the digits {shown_labels}: which pixels "
                    f"change the digit's score most (saliency)\nand which regions of layer {layer}'s maps "
                    f"raise it (Grad-CAM); score = the logit of the true digit, white line = the digit's outline")
    figure.saliency, figure.gradcam = saliency, cam
    return _finish(figure, save_path)


def plot_confusion_and_mistakes(y_true, logits, images, num_mistakes=8, save_path=None):
    """Figure 8: the confusion matrix (scikit-learn) with the errors on their own color scale, and the
    most confidently misclassified images (highest softmax probability on a wrong class).

    The diagonal (about 1,000 correct images per class on MNIST) is drawn gray with its count; only
    the off-diagonal cells, the errors, are colored, so that a cell of 3 errors does not look white
    next to 1,000. Every non-zero error count is written in its cell.
    Inputs: y_true of shape (N,); logits of shape (N, K) (from predict_logits); images of shape (N, C, H, W)
    Returns: the Figure; figure.confusion of shape (K, K), figure.mistakes: indices into the N images.
    """
    from sklearn.metrics import confusion_matrix
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)  # softmax, (N, K)
    predicted = probabilities.argmax(axis=1)
    K = logits.shape[1]
    confusion = confusion_matrix(y_true, predicted, labels=range(K))  # (K, K): row = true, column = predicted
    wrong = np.flatnonzero(predicted != y_true)
    mistakes = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:num_mistakes]
    figure = new_figure(14, 6.5)
    left, right = figure.subfigures(1, 2, width_ratios=[1.25, 1])
    ax = left.subplots()
    errors = np.ma.masked_array(confusion, mask=np.eye(K, dtype=bool))  # the diagonal is masked: not colored
    limit = max(int(errors.max() or 0), 1)
    colormap = _colormap("Reds").with_extremes(bad="0.85")  # masked cells (the diagonal) in light gray
    shown = ax.imshow(errors, cmap=colormap, vmin=0, vmax=limit)
    for (row, column), count in np.ndenumerate(confusion):
        if row == column:
            ax.text(column, row, f"{count}", ha="center", va="center", fontsize=8, color="0.25")
        elif count:
            ax.text(column, row, f"{count}", ha="center", va="center", fontsize=10, fontweight="bold",
                    color="white" if count > 0.6 * limit else "black")
    ax.set_xticks(range(K))
    ax.set_yticks(range(K))
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    left.colorbar(shown, ax=ax, shrink=0.8, label="misclassified images (off-diagonal cells)")
    ax.set_title(f"Confusion matrix: {len(y_true)} test images, accuracy {np.mean(predicted == y_true):.2%}\n"
                 f"gray diagonal: correctly classified (count written); colored: the {len(wrong)} errors, "
                 f"blank = 0", fontsize=10)
    columns = 4
    axes = right.subplots(max(1, -(-len(mistakes) // columns)), columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, index in zip(axes.flat, mistakes):
        ax.imshow(_image_of(images[index]), cmap="gray")
        ax.set_title(f"true {y_true[index]} -> {predicted[index]}\np = {probabilities[index, predicted[index]]:.3f}",
                     fontsize=9)
    right.suptitle(f"The {len(mistakes)} most confident mistakes ({len(wrong)} errors in all)\n"
                   f"p = the softmax probability given to the wrong class")
    figure.confusion, figure.mistakes = confusion, mistakes
    return _finish(figure, save_path)


# --- Training or loading a model for the script ---

def train_or_load(framework, data, epochs, seed, model_path=None):
    """A SimpleCNN of the chosen framework: loaded from model_path, or built and trained through the
    framework module's shared interface (set_seed, build_model, fit). The batch size, learning rate
    and schedule are that module's `fit` defaults, the ones its own main() trains with."""
    module = framework_module(framework)
    module.set_seed(seed)
    if model_path:
        return module.load(model_path)
    model = module.build_model("simple")
    if hasattr(module, "choose_device"):  # PyTorch: the device chosen once (cuda, then mps, then cpu)
        model = model.to(module.choose_device())
    module.fit(model, data.x_train, data.y_train, data.x_val, data.y_val, epochs=epochs, seed=seed)
    return model


def save_model(model, path):
    """Save with the framework module's `save`: .npz (NumPy), .pt (PyTorch checkpoint), .keras."""
    adapter_for(model).save(path)


def first_of_each_class(labels):
    """Index of the first example of each class 0, 1, ..., max(labels): labels of shape (N,) -> (K,)."""
    classes = range(int(labels.max()) + 1)
    missing = [label for label in classes if not np.any(labels == label)]
    if missing:
        raise ValueError(f"no example of class {missing} among the {len(labels)} labels")
    return np.array([np.flatnonzero(labels == label)[0] for label in classes])


def write_all_figures(model, data, out_dir, num_gradcam_images=1000, log=print):
    """Every figure for one trained model, and Grad-CAM's mass on the digit over the first
    num_gradcam_images test images (printed); returns the list of PNG paths written."""
    x_test, y_test = data.x_test, data.y_test
    image = x_test[:1]  # (1, 1, 28, 28): the first test image, a 7
    examples = first_of_each_class(y_test)  # the first test image of each digit 0..9
    layer = default_gradcam_layer(model)  # the last conv layer's activation: relu2 in the SimpleCNN
    crop = image[:, :, 4:25, 4:25]  # (1, 1, 21, 21): the digit without most of the empty border
    small, _ = pool2d_forward(crop, kernel_size=3, mode="avg")  # (1, 1, 21, 21) -> (1, 1, 7, 7): readable numbers
    figures = [
        ("features_01_filters.png", lambda path: plot_filters(model, save_path=path)),
        ("features_02_feature_maps.png", lambda path: plot_feature_maps(model, image, layer, save_path=path)),
        ("features_03_activation_progression.png", lambda path: plot_activation_progression(model, image, save_path=path)),
        ("features_04_convolution_steps.png",
         lambda path: plot_convolution_steps(small[0, 0], CLASSIC_KERNELS["Sobel x\n(vertical edges)"], save_path=path)),
        ("features_05_filter_responses.png", lambda path: plot_filter_responses(save_path=path)),
        ("features_06_statistics.png", lambda path: plot_statistics(model, x_test[:500], save_path=path)),
        ("features_07_saliency_gradcam.png",
         lambda path: plot_saliency_gradcam(model, x_test[examples], y_test[examples], save_path=path)),
        ("features_08_confusion_matrix.png",
         lambda path: plot_confusion_and_mistakes(y_test, predict_logits(model, x_test), x_test, save_path=path)),
    ]
    x_some, y_some = x_test[:num_gradcam_images], y_test[:num_gradcam_images]
    gradients = class_score_gradients(model, x_some, y_some, layer)
    mass, area = mass_on_digit(grad_cam(gradients["activation"], gradients["activation_grad"], x_some.shape[2:]),
                               x_some)
    log(f"Grad-CAM ({layer}) on {len(mass)} test images: {mass.mean():.1%} of its mass on the digit, which covers "
        f"{area.mean():.1%} of the image; more mass than area on {np.mean(mass > area):.1%} of the images")
    paths = []
    for file_name, draw in figures:
        start = time.perf_counter()
        path = os.path.join(out_dir, file_name)
        draw(path)
        paths.append(path)
        log(f"wrote {path} ({time.perf_counter() - start:.1f} s)")
    return paths


# --- Script ---

def main():
    parser = argparse.ArgumentParser(description="Train (or load) a SimpleCNN and write every visualization.")
    parser.add_argument("--framework", default="numpy", choices=FRAMEWORKS)
    parser.add_argument("--quick", action="store_true",
                        help="data.py's --quick slice (4,000 training, 1,000 validation, 2,000 test images), 1 epoch")
    parser.add_argument("--out", default="plots", help="folder for the PNG files (default: plots/)")
    parser.add_argument("--model-path", default=None,
                        help="load this model instead of training (.npz for numpy, .pt for pytorch, .keras for keras)")
    parser.add_argument("--save", default=None, metavar="PATH", help="save the trained model here (same formats)")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if args.epochs < 1:
        parser.error(f"--epochs must be >= 1, got {args.epochs}")

    from data import QUICK_TEST, QUICK_TRAIN, QUICK_VAL, load_mnist

    start = time.perf_counter()
    data = load_mnist(seed=args.seed)
    if args.quick:  # a smoke test: the figures are all there, the model is only roughly trained
        data, args.epochs = data.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST), 1
    print(f"framework {args.framework}: train {data.x_train.shape}, test {data.x_test.shape}")
    model = train_or_load(args.framework, data, args.epochs, args.seed, args.model_path)
    accuracy = np.mean(predict_logits(model, data.x_test).argmax(axis=1) == data.y_test)
    print(f"test accuracy {accuracy:.2%} on {len(data.x_test)} images "
          f"({'loaded' if args.model_path else f'trained {args.epochs} epoch(s)'}, {time.perf_counter() - start:.1f} s)")
    if args.save:
        save_model(model, args.save)
        print(f"saved {args.save}")
    paths = write_all_figures(model, data, args.out, num_gradcam_images=200 if args.quick else 1000)
    print(f"{len(paths)} figures in {args.out}/, total time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
