"""The one module that knows which frameworks exist: NumPy (cnn_from_scratch.py), PyTorch
(cnn_pytorch.py) and Keras (cnn_keras.py).

What it owns:
- the registry: `FRAMEWORKS` and `framework_module(name)`, which imports a framework module only
  when it is first asked for (so the NumPy path never imports PyTorch or TensorFlow), always in the
  one safe order (cnn_keras.py loads PyTorch's side before TensorFlow);
- one adapter per framework, which answers the questions the figures and the explorer ask of any
  model (its layers, a layer's weights, activations, logits, gradients of class scores) in one
  layout, NCHW; `adapter_for(model)` picks it, once;
- saving and loading any model by its file type: `.npz` (NumPy), `.pt` (PyTorch), `.keras` (Keras);
- the process-level quirk of running several frameworks in one process (`fix_malloc_thresholds`).

Each framework module has the same interface, with the same arguments, defaults, return values and
errors (tests/test_conformance.py holds it): set_seed, build_model, make_cnn, fit, evaluate,
count_parameters, save, load. Adding a framework means one module with these functions, one
adapter and one entry in ADAPTERS here, and passing tests/test_conformance.py.

In a REPL:
    >>> import frameworks
    >>> frameworks.FRAMEWORKS
    ('numpy', 'pytorch', 'keras')
    >>> module = frameworks.framework_module("numpy")            # cnn_from_scratch, nothing else imported
    >>> model = module.build_model("simple")
    >>> frameworks.framework_of(model), frameworks.count_parameters(model)
    ('numpy', 206922)
"""
import ctypes
import importlib
import os
import sys
import time

import numpy as np

from cnn_from_scratch import CNN

# --- Layer kinds: the three frameworks' layer classes under one name ---

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
# layer's bias, stride and padding (the explorer's "how one map is made"), the
# outputs of chosen layers and the logits for images of shape (N, C, H, W), and the gradients of
# class scores. adapter_for(model) picks one, once; the figures and the explorer never ask which
# framework it is.

def one_hot_scores(num_classes, classes):
    """d(sum of each image's class score) / d(logits): one one-hot row per image, of shape (N, num_classes)."""
    rows = np.zeros((len(classes), num_classes))
    rows[np.arange(len(classes)), classes] = 1
    return rows


class NumpyAdapter:
    """cnn_from_scratch.CNN: the layers' own forward and hand-written backward passes."""
    name, module_name, file_types = "numpy", "cnn_from_scratch", (".npz",)

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



    def copy_numpy_weights(self, numpy_model):
        """The weights of a NumPy CNN with the same layers, copied into this model."""
        self.model._assign(numpy_model.weights(), "the NumPy model")
        return self.model

    def to_device(self, device):
        return self.model  # NumPy runs on the CPU


class TorchAdapter:
    """torch.nn.Module: forward hooks on the leaf modules, autograd for the gradients."""
    name, module_name, file_types = "pytorch", "cnn_pytorch", (".pt", ".pth")

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


    def copy_numpy_weights(self, numpy_model):
        import cnn_pytorch
        return cnn_pytorch.numpy_to_torch(numpy_model, self.model)

    def to_device(self, device):
        return self.model.to(device)


def to_channels_first(array):
    """A Keras activation back to NCHW: (N, H, W, C) -> (N, C, H, W); 2-D arrays are left alone."""
    array = np.asarray(array)
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2)) if array.ndim == 4 else array


class KerasAdapter:
    """keras.Model (TensorFlow backend): images go in channels-last through cnn_keras.to_channels_last
    and every 4-D result comes back NCHW; GradientTape for the gradients."""
    name, module_name, file_types = "keras", "cnn_keras", (".keras",)

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



    def copy_numpy_weights(self, numpy_model):
        import cnn_keras
        return cnn_keras.numpy_to_keras(numpy_model, self.model)

    def to_device(self, device):
        return self.model  # TensorFlow places its work itself


ADAPTERS = (NumpyAdapter, TorchAdapter, KerasAdapter)
FRAMEWORKS = tuple(adapter.name for adapter in ADAPTERS)  # ("numpy", "pytorch", "keras")
FILE_TYPES = {file_type: adapter.name for adapter in ADAPTERS for file_type in adapter.file_types}  # {".npz": "numpy", ...}


def framework_module(framework):
    """The module with the shared interface for a framework name: cnn_from_scratch, cnn_pytorch or cnn_keras.
    Imported on first use; cnn_keras itself loads PyTorch's side before TensorFlow (see cnn_keras.py)."""
    modules = {adapter.name: adapter.module_name for adapter in ADAPTERS}
    if framework not in modules:
        raise ValueError(f"framework must be one of {list(modules)}, got {framework!r}")
    return importlib.import_module(modules[framework])


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


def count_parameters(model):
    """Trainable parameters of a model of any framework (its module's count_parameters)."""
    return framework_module(framework_of(model)).count_parameters(model)


def copy_numpy_weights(numpy_model, model):
    """Copy the weights of a NumPy CNN into a model of any framework with the same layers (numpy_to_torch,
    numpy_to_keras, or a plain copy), so that the three start from the same initial weights. Returns model."""
    return adapter_for(model).copy_numpy_weights(numpy_model)


def to_device(model, device):
    """The model on `device` (a torch.device) where its framework places models itself: PyTorch; the
    others are returned as they are."""
    return adapter_for(model).to_device(device)


# --- Layers by name, and the questions every figure asks ---
# Every layer gets a name made of its kind and a running count, the same in every framework for the
# same architecture: conv1, relu1, pool1, conv2, relu2, pool2, flatten1, dense1, relu3, dense2 for the
# SimpleCNN. A framework's own names (torch "features.0", Keras "conv2d") and integer indices into
# that list work too. Everything returned is NCHW, whatever the framework.

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


# --- Counting the work: what a training step must compute, and what this machine can ---

def count_flops(model, input_shape=None):
    """The floating-point operations of a network's matrix products, per image.

    A convolution's output has F * H_out * W_out numbers, each a dot product of C * HH * WW
    multiply-adds (2 FLOPs each): 2 * C * HH * WW * F * H_out * W_out. A fully connected layer from D to
    M features: 2 * D * M. Backward computes two products as large for each such layer, dW and dx,
    except for the first layer, which needs no dx. Element-wise work (ReLU, pooling, BatchNorm, the
    loss, the optimizer) is left out: a few FLOPs per number, limited by memory traffic, not arithmetic.
    Returns: dict with "forward" and "backward" (FLOPs per image, summed over layers) and "layers", a
    list of (index, layer class name, forward FLOPs, backward FLOPs), one per layer with a product.
    """
    input_shape = tuple(input_shape or model.input_shape or ())
    if len(input_shape) != 3:
        raise ValueError(f"count_flops needs input_shape=(C, H, W), got {input_shape!r}")
    x, rows = np.zeros((1, *input_shape), dtype=np.float32), []
    was_training = [layer.training for layer in model.layers]
    model.eval()
    for index, layer in enumerate(model.layers):
        out = layer.forward(x)
        weight = layer.params.get("W")  # read from the weights, so that another checkout's CNN counts too
        if weight is not None and weight.ndim == 4:  # a convolution: W of shape (F, C, HH, WW)
            _, C, HH, WW = weight.shape
            forward = 2 * C * HH * WW * out[0].size  # out[0].size = F * H_out * W_out
        elif weight is not None and weight.ndim == 2:  # fully connected: W of shape (D, M)
            forward = 2 * weight.shape[0] * weight.shape[1]
        else:
            forward = 0
        if forward:
            rows.append((index, type(layer).__name__, forward, forward * (2 if layer.needs_input_grad else 1)))
        x = out
    for layer, training in zip(model.layers, was_training):
        layer.training = training
    return {"forward": sum(row[2] for row in rows), "backward": sum(row[3] for row in rows), "layers": rows}


def matrix_product_gflops(size=2048, repeats=5, dtype=np.float32):
    """This machine's speed limit for the matrix products: float32 GFLOP/s of one size x size matrix
    product (2 * size^3 FLOPs), the best of `repeats` after one warm-up, on all the cores NumPy's BLAS
    uses. A network cannot train faster than count_flops(model) per image at this rate."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((size, size)).astype(dtype), rng.standard_normal((size, size)).astype(dtype)
    a @ b  # warm-up: threads started, memory touched
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * size ** 3 / best / 1e9


# --- Saving and loading any model by its file type ---

def framework_of_file(path):
    """The framework that wrote a model file, from its extension: .npz, .pt or .keras."""
    extension = os.path.splitext(os.fspath(path))[1].lower()
    if extension not in FILE_TYPES:
        raise ValueError(f"{os.fspath(path)!r}: unknown model file type {extension!r}; expected "
                         + ", ".join(f"{file_type} ({name})" for file_type, name in FILE_TYPES.items()))
    return FILE_TYPES[extension]


def save_any(model, path):
    """Save a model of any framework with its module's `save`; the extension must be its framework's.
    Returns the path (a pathlib.Path)."""
    framework = framework_of(model)
    if framework_of_file(path) != framework:
        expected = " or ".join(file_type for file_type, name in FILE_TYPES.items() if name == framework)
        raise ValueError(f"a {framework} model is saved to a {expected} file, got {os.fspath(path)!r}")
    return framework_module(framework).save(model, path)


def load_any(path):
    """Load a model saved by any framework module's `save`, the framework told by the file's extension.
    Only that framework is imported, so a NumPy model loads without PyTorch or TensorFlow."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no model file at {os.fspath(path)!r}")
    return framework_module(framework_of_file(path)).load(path)


# --- Several frameworks in one process ---

def fix_malloc_thresholds():
    """Pin glibc malloc's mmap and trim thresholds for the whole process; True if it could.

    glibc raises its mmap threshold as a program frees large blocks, so that arrays of a few hundred
    KB come from the heap instead of fresh pages. After TensorFlow has trained once in a process,
    that no longer happens: every such array is mapped and unmapped, and the NumPy CNN and PyTorch
    then train several times slower in that process (`python benchmarks/after_tensorflow.py` measures
    it; BENCHMARKS.md has the numbers). Fixed thresholds (256 MB and 512 MB) give the three
    frameworks the same allocator whichever order they run in.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:  # not glibc (macOS, Windows): nothing to fix
        return False
    M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # from glibc's malloc.h
    return bool(libc.mallopt(M_MMAP_THRESHOLD, 256 * 2 ** 20) and libc.mallopt(M_TRIM_THRESHOLD, 512 * 2 ** 20))
