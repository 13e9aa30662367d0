"""See what a CNN learns: filters, feature maps, the convolution itself, saliency and Grad-CAM.

Every figure function takes plain arrays or a trained model of any of the three frameworks
(the NumPy `CNN` of cnn_from_scratch.py, a `torch.nn.Module`, a `keras.Model`), addresses layers
by name or index, works on 1-channel MNIST images, returns a matplotlib Figure and, given
`save_path`, writes a PNG. This module draws; frameworks.py answers the questions each figure
asks of a model (its layers, weights, activations, logits, gradients) in one layout (NCHW) for
every framework, and explain.py computes saliency and Grad-CAM from those gradients. The story,
top to bottom: the other computations behind the figures, one function per figure, then `main()`.

Run it:
    python visualize_features.py --quick                       # under a minute: data.py's quick slice, 1 epoch
    python visualize_features.py                               # NumPy SimpleCNN, 2 epochs on MNIST, writes plots/
    python visualize_features.py --framework pytorch|keras     # the same figures for the other frameworks
    python visualize_features.py --save simple_cnn.npz                   # also keep the trained model
    python visualize_features.py --model-path simple_cnn.npz             # figures of a saved model, no training
    python visualize_features.py --only 06 13                            # only the figures whose names contain these
In a REPL:
    >>> import numpy as np, visualize_features as vis
    >>> from cnn_from_scratch import make_simple_cnn
    >>> model = make_simple_cnn(rng=np.random.default_rng(0))
    >>> vis.layer_names(model)          # ['conv1', 'relu1', 'pool1', 'conv2', ...]
    >>> figure = vis.plot_filters(model, save_path="filters.png")

Layer names (frameworks.model_layers): conv1, relu1, pool1, conv2, relu2, pool2, flatten1, dense1,
relu3, dense2 for the SimpleCNN in every framework; a framework's own names and integer indices work too.
"""
import argparse
import os
import textwrap
import time

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from cnn_from_scratch import CNN, conv2d_backward_naive, conv2d_forward_naive, receptive_field
from explain import grad_cam, mass_on_digit, saliency_map  # what figure 7 draws, and its check on the digit
from fast_conv import conv2d_forward, pool2d_forward
from frameworks import (  # the questions every figure asks of a model, answered for any framework
    ACTIVATION_KINDS, FRAMEWORKS, class_score_gradients, default_gradcam_layer, first_conv_filters,
    framework_module, get_activations, layer_names, load_any, model_layers, predict_logits, resolve_layer,
    save_any, weight_arrays)

# --- Computations behind the figures ---

def dead_unit_fraction(activation):
    """Fraction of units that are never active (output <= 0 everywhere) on a batch.

    A unit is a channel (a whole feature map) for output of shape (N, K, H, W), a neuron for (N, K).
    """
    if activation.ndim not in (2, 4):
        raise ValueError(f"expected an activation of shape (N, K) or (N, K, H, W), got {activation.shape}")
    ever_active = (activation > 0).any(axis=(0, 2, 3) if activation.ndim == 4 else 0)  # (K,)
    return float(1 - ever_active.mean())


def never_active_units(model, x, layer, batch_size=1000):
    """Which units of an activation layer are never active (output <= 0) on any image of x, batch by
    batch, so that 55,000 images fit in memory. x of shape (N, C, H, W) -> bool array of shape (K,)."""
    active = None
    for start in range(0, len(x), batch_size):
        values = next(iter(get_activations(model, x[start:start + batch_size], [layer]).values()))
        batch_active = (values > 0).any(axis=(0, 2, 3) if values.ndim == 4 else 0)  # (K,)
        active = batch_active if active is None else active | batch_active
    return ~active


def confident_mistakes(y_true, logits):
    """The errors, most confident first, and the softmax probabilities behind them.

    Inputs: y_true of shape (N,); logits of shape (N, K)
    Returns: (probabilities of shape (N, K), predicted of shape (N,), mistakes: indices of the wrong
    predictions, sorted by the probability given to the wrong class, highest first).
    """
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    probabilities = shifted / shifted.sum(axis=1, keepdims=True)  # softmax, (N, K)
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y_true)
    return probabilities, predicted, wrong[np.argsort(-probabilities[wrong, predicted[wrong]], kind="stable")]


def conv_versus_dense_parameters(weight_shape, input_shape, output_shape):
    """Parameters of a conv layer, and of a dense layer that would map the same input to the same output.

    Inputs: weight_shape = (F, C, HH, WW); input_shape = (C, H, W); output_shape = (F, H_out, W_out)
    Returns: (conv, dense) with conv = F * (C * HH * WW) + F, one filter per output channel shared by
    every position, and dense = (C * H * W) * (F * H_out * W_out) + F * H_out * W_out, a weight per
    (input value, output value) pair.
    """
    F, C, HH, WW = weight_shape
    inputs, outputs = int(np.prod(input_shape)), int(np.prod(output_shape))
    return F * C * HH * WW + F, inputs * outputs + outputs


def channel_contributions(maps, filters, bias):
    """One output map of a convolution (stride 1, zero padding that keeps the size) as a sum over channels.

    Inputs: maps of shape (C, H, W), the layer's input; filters of shape (C, HH, WW), one filter w[f];
    bias: b[f]
    Returns: partials of shape (C, H, W), where partials[c] is maps[c] correlated with its own slice
    filters[c] (by OpenCV, independently of conv2d_forward), and the map bias + sum over c, of shape (H, W).
    """
    partials = np.stack([apply_kernel_opencv(channel, kernel) for channel, kernel in zip(maps, filters)])
    return partials, bias + partials.sum(axis=0)


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


def fan_out(weights):
    """Outputs per input unit, as init_weights counts them: F * HH * WW for conv weights, out_features for dense."""
    return int(weights.shape[0] * np.prod(weights.shape[2:])) if weights.ndim == 4 else int(weights.shape[1])


def init_std(weights, scheme):
    """The standard deviation init_weights draws for these weights' shape: He (normal), sqrt(2 / fan_in);
    Xavier (uniform in [-limit, limit], std limit / sqrt(3)), sqrt(2 / (fan_in + fan_out)); None if unknown."""
    return {"he": np.sqrt(2 / fan_in(weights)), "xavier": np.sqrt(2 / (fan_in(weights) + fan_out(weights)))}.get(scheme)


def plot_statistics(model, x, save_path=None):
    """Figure 6: weight histograms per layer, activation histograms per activation layer, and the
    fraction of dead units (never active on the batch x of shape (N, C, H, W)) per activation layer.

    The weight row shows how big each layer's weights are after training, beside its fan-in and the
    std its initialization drew (init_std; known for the NumPy layers, which keep their `init`):
    He, sqrt(2 / fan-in), before a ReLU, Xavier, sqrt(2 / (fan-in + fan-out)), for the last layer, so
    that every layer's output keeps about the size of its input; training moves them only so far.
    Returns: the Figure; figure.dead_fractions is {activation layer name: fraction in [0, 1]}.
    """
    weights = weight_arrays(model)
    schemes = {name: getattr(layer, "init", None) for name, _, layer in model_layers(model)}  # "he", "xavier", None
    names = [name for name, kind, _ in model_layers(model) if kind in ACTIVATION_KINDS]
    activations = get_activations(model, x, names)
    dead = {name: dead_unit_fraction(values) for name, values in activations.items()}
    figure = new_figure(3.2 * max(len(weights), len(names)), 8.6)
    weight_row, activation_row, dead_row = figure.subfigures(3, 1, height_ratios=[1.15, 1, 0.55])
    for ax, (name, values) in zip(np.atleast_1d(weight_row.subplots(1, len(weights))), weights.items()):
        ax.hist(values.ravel(), bins=60, color="tab:blue")
        initial = init_std(values, schemes[name])
        drawn = {"he": f"He init, std sqrt(2 / {fan_in(values)})",
                 "xavier": f"Xavier init, sqrt(2 / ({fan_in(values)} + {fan_out(values)}))"}
        ax.set_title(f"{name} {values.shape}: fan-in {fan_in(values)}\nstd after training {values.std():.3f}\n" +
                     (f"{drawn[schemes[name]]} = {initial:.3f}" if initial else "initialization unknown"), fontsize=9)
        ax.set_xlabel("weight")
        ax.set_ylabel("count")
    weight_row.suptitle("Weights after training, every weight of each conv and dense layer: the more inputs a unit "
                        "sums (fan-in), the smaller its weights,\nas initialization made them (He before a ReLU, "
                        "Xavier for the last layer) so that each layer's output keeps the size of its input",
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
    probabilities, predicted, wrong = confident_mistakes(y_true, logits)
    K = logits.shape[1]
    confusion = confusion_matrix(y_true, predicted, labels=range(K))  # (K, K): row = true, column = predicted
    mistakes = wrong[:num_mistakes]
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


def plot_mistake_gradcam(model, images, labels, layer=None, save_path=None):
    """Figure 14: what misled the network: each misclassified image, Grad-CAM for the class it
    predicted and Grad-CAM for its true class, from the same layer.

    Where the two maps light up different strokes, the predicted class's map shows the evidence the
    network took for the wrong digit. Each map is
    scaled to its own maximum; a map that is zero everywhere means no region raised that score.
    Inputs: images of shape (N, C, H, W), the mistakes; labels of shape (N,), their true classes;
    layer: the Grad-CAM layer (default: default_gradcam_layer(model))
    Returns: the Figure; figure.predicted of shape (N,), figure.probabilities of shape (N, K) (softmax),
    figure.gradcam_predicted and figure.gradcam_true, each of shape (N, H, W).
    """
    layer = default_gradcam_layer(model) if layer is None else layer
    labels = np.asarray(labels)
    logits = predict_logits(model, images)  # (N, K)
    probabilities, predicted, _ = confident_mistakes(labels, logits)
    maps = {}
    for key, classes in (("predicted", predicted), ("true", labels)):
        gradients = class_score_gradients(model, images, classes, layer)
        maps[key] = grad_cam(gradients["activation"], gradients["activation_grad"], images.shape[2:])  # (N, H, W)
    figure = new_figure(2.0 * len(images) + 1.6, 6.8)
    axes = figure.subplots(3, len(images), squeeze=False)
    for column, image in enumerate(images):
        gray = _image_of(image)
        axes[0, column].imshow(gray, cmap="gray")
        axes[0, column].set_title(f"true {labels[column]} -> {predicted[column]}\n"
                                  f"p = {probabilities[column, predicted[column]]:.3f}", fontsize=9)
        for row, values in ((1, maps["predicted"][column]), (2, maps["true"][column])):
            shown = axes[row, column].imshow(values / (values.max() or 1), cmap="magma", vmin=0, vmax=1)
            axes[row, column].contour(gray, levels=[0.5], colors="white", linewidths=0.7)
        for ax in axes[:, column]:
            ax.set_xticks([])
            ax.set_yticks([])
    for row, text in enumerate(("input", "Grad-CAM,\nwrong class", "Grad-CAM,\ntrue class")):
        axes[row, 0].set_ylabel(text, fontsize=9)
    figure.colorbar(shown, ax=axes[1:, :], shrink=0.8, label="fraction of the image's maximum")
    figure.suptitle(f"What misled the network: Grad-CAM (layer {layer}) for the wrong class it chose and for the "
                    f"true class,\np = the softmax probability given to the wrong class, white line = the digit's "
                    f"outline")
    figure.predicted, figure.probabilities = predicted, probabilities
    figure.gradcam_predicted, figure.gradcam_true = maps["predicted"], maps["true"]
    return _finish(figure, save_path)


def plot_mnist_samples(images, labels, per_class=3, save_path=None):
    """Figure 9: what the data looks like: the first per_class images of each digit, with their labels.

    Inputs: images of shape (N, 1, H, W) with values in [0, 1]; labels of shape (N,)
    Returns: the Figure; figure.sample_indices of shape (per_class, K): column k holds images of digit k.
    """
    classes = range(int(labels.max()) + 1)
    found = [np.flatnonzero(labels == label)[:per_class] for label in classes]
    if min(len(indices) for indices in found) < per_class:
        raise ValueError(f"every class needs {per_class} images, got {[len(indices) for indices in found]}")
    indices = np.array(found).T  # (per_class, K)
    figure = new_figure(1.25 * len(found) + 1.2, 1.45 * per_class + 0.9)
    axes = figure.subplots(per_class, len(found), squeeze=False)
    for (row, column), index in np.ndenumerate(indices):
        ax = axes[row, column]
        shown = ax.imshow(_image_of(images[index]), cmap="gray", vmin=0, vmax=1)
        ax.set_title(f"y[{index}] = {labels[index]}", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    figure.colorbar(shown, ax=axes, shrink=0.8, label="pixel value")
    height, width = images.shape[2:]
    figure.suptitle(f"MNIST: {height}x{width} greyscale images, pixel values from 0 (black) to 1, each with its label "
                    f"y[i]: the first {per_class} training images of each digit")
    figure.sample_indices = indices
    return _finish(figure, save_path)


def describe_layer(kind, layer, weights, in_shape, out_shape):
    """A short description of what a layer does, from its kind and shapes: '3x3 conv, 16 filters'."""
    if kind == "conv":
        return f"{weights.shape[2]}x{weights.shape[3]} conv, {weights.shape[0]} filters"
    if kind == "pool":
        mode = "max" if "max" in type(layer).__name__.lower() or getattr(layer, "mode", None) == "max" else "avg"
        return f"{in_shape[1] // out_shape[1]}x{in_shape[2] // out_shape[2]} {mode} pool"
    if kind == "dense":
        return f"dense {weights.shape[0]} → {weights.shape[1]}"
    return {"relu": "ReLU", "flatten": "flatten"}.get(kind, kind)


def plot_architecture(model, input_shape=(1, 28, 28), save_path=None):
    """Figure 10: the network as a row of layers, each with its output shape and parameter count.

    Shapes come from a forward pass of one zero image (get_activations), so they are the model's own;
    a conv layer has F * C * HH * WW weights and F biases, a dense layer in * out weights and out biases.
    Inputs: a model of any framework; input_shape = (C, H, W) of one image
    Returns: the Figure; figure.architecture lists {"name", "kind", "shape", "parameters"} per layer,
    the input first; shapes leave out the batch axis N.
    """
    outputs = get_activations(model, np.zeros((1, *input_shape), dtype=np.float32))
    weights = weight_arrays(model)
    rows, previous = [dict(name="input", kind="input", shape=tuple(input_shape), parameters=0, text="image")], input_shape
    for name, kind, layer in model_layers(model):
        shape = outputs[name].shape[1:]
        biases = 0 if name not in weights else weights[name].shape[0 if kind == "conv" else 1]
        parameters = 0 if name not in weights else weights[name].size + biases
        rows.append(dict(name=name, kind=kind, shape=shape, parameters=parameters,
                         text=describe_layer(kind, layer, weights.get(name), previous, shape)))
        previous = shape
    colors = {"input": "0.75", "conv": "tab:blue", "pool": "tab:orange", "dense": "tab:purple", "flatten": "0.6"}
    spacing = 1.5
    figure = new_figure(1.3 * len(rows) + 0.8, 3.4)
    ax = figure.subplots()
    ax.set_axis_off()
    largest = max(row["shape"][1] for row in rows if len(row["shape"]) == 3)
    extents = []
    for position, row in enumerate(rows):
        center, color = position * spacing, colors.get(row["kind"], "tab:green")  # activations in green
        if len(row["shape"]) == 3:  # a stack of (at most 6 drawn) H x W sheets, one per channel
            channels, height, _ = row["shape"]
            side, sheets = 0.8 * height / largest, min(channels, 6)
            step = 0.06
            left = center - (side + step * (sheets - 1)) / 2
            for sheet in range(sheets):
                ax.add_patch(Rectangle((left + step * sheet, -side / 2 - step * sheet), side, side, facecolor=color,
                                       edgecolor="black", linewidth=0.6, alpha=0.55))
            extents.append((left, left + side + step * (sheets - 1)))
        else:  # a vector: one bar, its height growing with the log of its length
            bar = 0.12 * np.log2(row["shape"][0])
            ax.add_patch(Rectangle((center - 0.07, -bar / 2), 0.14, bar, facecolor=color, edgecolor="black",
                                   linewidth=0.6, alpha=0.55))
            extents.append((center - 0.07, center + 0.07))
        ax.text(center, 0.75, f"{row['name']}\n{row['text']}", ha="center", va="bottom", fontsize=9,
                fontweight="bold" if row["kind"] in ("conv", "dense") else "normal")
        parameter_text = f"\n{row['parameters']:,} parameters" if row["parameters"] else ""
        ax.text(center, -0.8, str(tuple(int(size) for size in row["shape"])) + parameter_text, ha="center", va="top",
                fontsize=9)
    for (_, right), (left, _) in zip(extents, extents[1:]):
        ax.annotate("", xy=(left - 0.04, 0), xytext=(right + 0.04, 0), arrowprops=dict(arrowstyle="->", lw=1.2))
    ax.set_xlim(-spacing / 2, (len(rows) - 0.4) * spacing)
    ax.set_ylim(-1.35, 1.3)
    ax.set_aspect("equal")
    total = sum(row["parameters"] for row in rows)
    counted = " + ".join(f"{row['parameters']:,}" for row in rows if row["parameters"])
    figure.suptitle(f"The network, one image at a time: each layer's output shape (channels, height, width) or "
                    f"(features,), the batch axis N left out\nparameters: {counted} = {total:,}; the last layer's "
                    f"{rows[-1]['shape'][0]} outputs are the logits, one score per class")
    figure.architecture = [{key: row[key] for key in ("name", "kind", "shape", "parameters")} for row in rows]
    return _finish(figure, save_path)


def plot_channel_sum(model, image, layer="conv2", output_channel=None, save_path=None):
    """Figure 11: one output map of a conv layer, built as the sum over its input channels, and the
    parameters this sharing saves.

    Output map f is b[f] + sum over c of (input map c correlated with its own slice w[f, c]): one
    filter is a (C, HH, WW) block spanning every input channel and gives one map.
    Inputs: a NumPy CNN (the bias is read from the layer); image of shape (C, H, W) or (1, C, H, W);
    layer: a conv layer with stride 1 and the padding that keeps the size; output_channel: f
    (default: the map with the strongest response)
    Returns: the Figure; figure.channel_demo = {"channel", "inputs" (C, H, W), "kernels" (C, HH, WW),
    "bias", "partials" (C, H, W), "total" (H, W), "layer_output" (H, W) (the layer's own map f),
    "parameters" (conv, dense) from conv_versus_dense_parameters}.
    """
    if not isinstance(model, CNN):
        raise TypeError(f"plot_channel_sum reads the bias of a cnn_from_scratch.CNN layer, got {type(model).__name__}")
    batch = _as_batch(image)
    named = model_layers(model)
    position = resolve_layer(model, layer)
    name, kind, conv = named[position]
    if kind != "conv" or conv.stride != (1, 1) or conv.padding != (conv.kernel_size[0] // 2, conv.kernel_size[1] // 2):
        raise ValueError(f"layer {name!r} must be a conv layer with stride 1 and padding kernel_size // 2, got {conv!r}")
    activations = get_activations(model, batch, [position - 1, position] if position else [position])
    inputs = activations[named[position - 1][0]][0] if position else batch[0]  # (C, H, W)
    output = activations[name][0]  # (F, H, W)
    f = int(np.argmax(output.max(axis=(1, 2)))) if output_channel is None else int(output_channel)
    w, b = conv.params["W"], conv.params["b"]
    partials, total = channel_contributions(inputs, w[f], b[f])
    conv_count, dense_count = conv_versus_dense_parameters(w.shape, inputs.shape, output.shape)
    C, previous_name = len(inputs), named[position - 1][0] if position else "input"
    columns = min(8, C)
    blocks = -(-C // columns)  # ceil(C / columns): blocks of three rows, input map c, its slice w[f, c], their correlation
    figure = new_figure(1.1 * columns + 4.6, 3.3 * blocks + 2.0)
    left, right = figure.subfigures(1, 2, width_ratios=[1.1 * columns + 0.8, 3.8])
    parts = left.subfigures(blocks + 1, 1, height_ratios=[3.3] * blocks + [0.75])
    limits = (inputs.max() or 1.0, np.abs(w[f]).max() or 1.0, np.abs(partials).max() or 1.0)
    colormaps = ("gray", "RdBu_r", "RdBu_r")
    for block, part in enumerate(parts[:blocks]):
        grid = part.subplots(3, columns, squeeze=False)
        for column in range(columns):
            c = block * columns + column
            for ax, values, cmap, limit in zip(grid[:, column], (inputs, w[f], partials), colormaps, limits):
                ax.set_xticks([])
                ax.set_yticks([])
                if c < C:
                    ax.imshow(values[c], cmap=cmap, vmin=0 if cmap == "gray" else -limit, vmax=limit)
                else:
                    ax.set_axis_off()
            grid[0, column].set_title(f"c = {c}" if c < C else "", fontsize=9)
        for ax, text in zip(grid[:, 0], (f"{previous_name}\nmap c", f"its slice\nw[{f}, c]", f"map c\ncorrelated\nwith w[{f}, c]")):
            ax.set_ylabel(text, fontsize=9)
    bars = parts[-1].subplots(1, 3)
    for ax, label, cmap, limit in zip(bars, ("input value", "weight", "contribution"), colormaps, limits):
        scale = ScalarMappable(Normalize(0 if cmap == "gray" else -limit, limit), cmap=cmap)
        parts[-1].colorbar(scale, cax=ax, orientation="horizontal", label=label)
    left.suptitle(f"Filter {f} of {name} is a ({C}, {w.shape[2]}, {w.shape[3]}) block: each of the {C} input maps "
                  f"is correlated with its own {w.shape[2]}x{w.shape[3]} slice, and the {C} results are added",
                  fontsize=10)
    total_ax, output_ax = right.subplots(2, 1)
    limit = max(np.abs(total).max(), np.abs(output[f]).max()) or 1.0
    total_ax.imshow(total, cmap="RdBu_r", vmin=-limit, vmax=limit)
    total_ax.set_title(f"sum of the {C} contributions\n+ bias b[{f}] = {b[f]:.3f}", fontsize=9)
    shown = output_ax.imshow(output[f], cmap="RdBu_r", vmin=-limit, vmax=limit)
    output_ax.set_title(f"{name} output map {f} (conv2d_forward)\nlargest difference "
                        f"{np.abs(total - output[f]).max():.1e}", fontsize=9)
    for ax in (total_ax, output_ax):
        ax.set_xticks([])
        ax.set_yticks([])
    right.colorbar(shown, ax=[total_ax, output_ax], shrink=0.7, label="output value")
    F, _, HH, WW = w.shape
    figure.suptitle(f"Channels and parameter sharing: {name} has {F} filters x ({C} x {HH} x {WW}) weights + {F} biases "
                    f"= {conv_count:,} parameters, used at every position.\nA dense layer between the same shapes, "
                    f"{C} x {inputs.shape[1]} x {inputs.shape[2]} inputs to {F} x {output.shape[1]} x {output.shape[2]} "
                    f"outputs, would need {dense_count:,} ({dense_count / 1e6:.1f} million).", fontsize=11)
    figure.channel_demo = dict(channel=f, inputs=inputs, kernels=w[f], bias=float(b[f]), partials=partials, total=total,
                               layer_output=output[f], parameters=(conv_count, dense_count))
    return _finish(figure, save_path)


def plot_receptive_field(model, image, save_path=None):
    """Figure 12: the receptive field of the central unit of every conv and pooling layer, on a digit.

    receptive_field(model.layers) gives each layer's field; the figure draws the fields of the units
    at the centre of each layer's maps (they are nested), and beside them the maps with the unit marked.
    Inputs: a NumPy CNN (its layers carry kernel sizes, strides and padding); image (C, H, W) or (1, C, H, W)
    Returns: the Figure; figure.fields is {layer name: {"unit": (i, j), "top", "left", "size": (height, width)}},
    the field's first input row and column (negative: padding) and its size.
    """
    if not isinstance(model, CNN):
        raise TypeError(f"plot_receptive_field reads the layers of a cnn_from_scratch.CNN, got {type(model).__name__}")
    batch = _as_batch(image)
    fields = receptive_field(model.layers)
    shown = [(name, fields[position]) for position, (name, kind, _) in enumerate(model_layers(model)[:len(fields)])
             if kind in ("conv", "pool")]
    activations = get_activations(model, batch, [name for name, _ in shown])
    colors = ["tab:orange", "tab:green", "tab:purple", "tab:red", "tab:brown", "tab:pink"]
    figure = new_figure(12.5, 6.0)
    left, right = figure.subfigures(1, 2, width_ratios=[1.1, 1])
    ax = left.subplots()
    picture = _image_of(batch)
    ax.imshow(picture, cmap="gray", vmin=0, vmax=max(picture.max(), 1e-12))
    ax.set_xticks(np.arange(-0.5, picture.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, picture.shape[0], 1), minor=True)
    ax.grid(which="minor", color="0.35", linewidth=0.3)
    ax.tick_params(which="minor", length=0)
    map_axes = right.subplots(-(-len(shown) // 2), 2, squeeze=False).ravel()
    figure.fields = {}
    for index, ((name, (size, jump, start)), color) in enumerate(zip(shown, colors)):
        maps = activations[name][0]  # (K, h, w)
        unit = (maps.shape[1] // 2, maps.shape[2] // 2)
        top, left_column = start[0] + unit[0] * jump[0], start[1] + unit[1] * jump[1]
        # Frames on pixel edges; the larger ones are drawn first and thicker, so that a shared edge shows both colours.
        ax.add_patch(Rectangle((left_column - 0.5, top - 0.5), size[1], size[0], fill=False, edgecolor=color,
                               linewidth=2 + 1.2 * index, zorder=10 - index,
                               label=f"{name} unit {unit}: {size[0]}x{size[1]} pixels"))
        channel = int(np.argmax(maps[:, unit[0], unit[1]]))  # the channel that responds most at this unit
        _show_map(map_axes[index], maps[channel], np.abs(maps[channel]).max() or 1.0, maps[channel].min() < 0)
        map_axes[index].add_patch(Rectangle((unit[1] - 0.5, unit[0] - 0.5), 1, 1, fill=False, edgecolor=color,
                                            linewidth=2.5))
        map_axes[index].set_title(f"{name}: {maps.shape[1]}x{maps.shape[2]} maps, channel {channel},\n"
                                  f"unit {unit} sees {size[0]}x{size[1]} input pixels", fontsize=9)
        map_axes[index].set_xticks([])
        map_axes[index].set_yticks([])
        figure.fields[name] = dict(unit=unit, top=top, left=left_column, size=size)
    for extra in map_axes[len(shown):]:
        extra.set_axis_off()
    handles, labels = ax.get_legend_handles_labels()
    ax.legend(handles, labels, loc="upper left", bbox_to_anchor=(0.0, -0.06), ncol=2, fontsize=9, frameon=False)
    ax.set_title(f"input {picture.shape[0]}x{picture.shape[1]}: the pixels each unit depends on")
    sizes = " → ".join(f"{name} {size[0]}" for name, (size, _, _) in shown)
    figure.suptitle(f"Receptive field: {sizes} pixels. A window of size k adds (k - 1) x jump pixels; a stride "
                    f"multiplies the jump,\nthe distance in input pixels between neighbouring units. Right: each "
                    f"layer's map (the channel strongest at the framed unit)", fontsize=11)
    return _finish(figure, save_path)


def plot_convolution_backward(x=None, w=None, dout=None, save_path=None):
    """Figure 13: the backward pass of the convolution step by step, on numbers small enough to check by hand.

    Each output out[i, j] used the window x[i:i + HH, j:j + WW] and the kernel w, so the gradient dout[i, j]
    flows back to both: dw += dout[i, j] * window (row 2) and dx[window] += dout[i, j] * w (row 3). Read
    from dx's side, that is the full correlation of dout (padded with HH - 1 zeros) with the kernel
    flipped in both directions (row 4). Stride 1, no padding.
    Inputs: x of shape (H, W), w of shape (HH, WW), dout of shape (H - HH + 1, W - WW + 1), at most 9
    cells; default: a 4x4 input of small integers, an asymmetric 3x3 kernel and a 2x2 dout
    Returns: the Figure; figure.backward_demo = {"dx", "dw", "db" from conv2d_backward_naive, "windows" and
    "stamps" of shape (H_out, W_out, ...) (dout[i, j] * window and dout[i, j] * w placed on its window),
    "full" (the full correlation, computed here by its own loop)}.
    """
    x = np.array([[1, 2, 0, 1], [0, 1, 3, 1], [2, 0, 1, 0], [1, 1, 0, 2]], dtype=np.float64) if x is None else x
    w = np.array([[1, 0, -1], [2, 1, 0], [0, -1, 1]], dtype=np.float64) if w is None else w
    dout = np.array([[1, -1], [2, 1]], dtype=np.float64) if dout is None else dout
    x, w, dout = (np.asarray(array, dtype=np.float64) for array in (x, w, dout))
    (H, W), (HH, WW) = x.shape, w.shape
    if dout.shape != (H - HH + 1, W - WW + 1):
        raise ValueError(f"dout must have shape {(H - HH + 1, W - WW + 1)} for x {x.shape} and w {w.shape}, "
                         f"got {dout.shape}")
    if dout.size > 9:
        raise ValueError(f"the figure draws one panel per output cell: at most 9, got {dout.size} for x {x.shape} "
                         f"and w {w.shape}")
    out, cache = conv2d_forward_naive(x[None, None], w[None, None], np.zeros(1))
    dx, dw, db = conv2d_backward_naive(dout[None, None], cache)
    windows = np.zeros((*dout.shape, HH, WW))
    stamps = np.zeros((*dout.shape, H, W))
    for i, j in np.ndindex(dout.shape):
        windows[i, j] = dout[i, j] * x[i:i + HH, j:j + WW]
        stamps[i, j, i:i + HH, j:j + WW] = dout[i, j] * w
    padded = np.pad(dout, ((HH - 1, HH - 1), (WW - 1, WW - 1)))  # (H + HH - 1, W + WW - 1): the "full" padding
    flipped = w[::-1, ::-1]
    full = np.array([[np.sum(padded[r:r + HH, c:c + WW] * flipped) for c in range(W)] for r in range(H)])
    terms = dout.size

    def show(ax, values, title, frame=None, color="black", gray=False):
        limit = np.abs(values).max() or 1.0
        ax.imshow(values, cmap="gray" if gray else "RdBu_r", vmin=0 if gray else -limit, vmax=limit)
        for (r, c), value in np.ndenumerate(values + 0.0):  # + 0.0 turns -0 into 0
            dark = value < 0.5 * limit if gray else abs(value) > 0.6 * limit
            ax.text(c, r, f"{value:g}", ha="center", va="center", fontsize=10, color="white" if dark else "black")
        if frame is not None:
            (r, c), (height, width) = frame
            ax.add_patch(Rectangle((c - 0.45, r - 0.45), width - 0.1, height - 0.1, fill=False, edgecolor=color,
                                   linewidth=2.5))
        ax.set_title(title, fontsize=9.5, color=color)
        ax.set_xticks([])
        ax.set_yticks([])

    figure = new_figure(2.3 * (terms + 1) + 0.6, 12.2)
    rows = figure.subfigures(4, 1, height_ratios=[1, 1, 1, 1.15])
    colors = ["tab:orange", "tab:green", "tab:purple", "tab:red", "tab:brown", "tab:pink", "tab:olive", "tab:cyan",
              "tab:gray"]
    top = rows[0].subplots(1, 5, width_ratios=[W, WW, dout.shape[1], dout.shape[1], 2])
    show(top[0], x, f"input x ({H}x{W})", gray=True)
    show(top[1], w, f"kernel w ({HH}x{WW})")
    show(top[2], out[0, 0], "out = conv2d_forward(x, w)")
    show(top[3], dout, "dout = d loss / d out\n(from the next layer)")
    top[4].set_axis_off()
    rows[0].suptitle(f"Forward: out[i, j] = sum(x[i:i+{HH}, j:j+{WW}] * w). Backward: each dout[i, j] flows back "
                     f"along the {HH * WW} products that made out[i, j]; db = sum of dout = {db[0]:g}", fontsize=11)
    middle = rows[1].subplots(1, terms + 1)
    for k, (i, j) in enumerate(np.ndindex(dout.shape)):
        show(middle[k], windows[i, j], f"{'+ ' if k else ''}dout[{i}, {j}] = {dout[i, j]:g}\ntimes x[{i}:{i + HH}, "
             f"{j}:{j + WW}]", color=colors[k])
    show(middle[-1], dw[0, 0], "= dw")
    rows[1].suptitle("dw[u, v] = sum over i, j of dout[i, j] * x[i + u, j + v]: each window, weighted by its dout, "
                     "added up", fontsize=11)
    third = rows[2].subplots(1, terms + 1)
    for k, (i, j) in enumerate(np.ndindex(dout.shape)):
        show(third[k], stamps[i, j], f"{'+ ' if k else ''}dout[{i}, {j}] * w\nonto the window at ({i}, {j})",
             frame=((i, j), (HH, WW)), color=colors[k])
    show(third[-1], dx[0, 0], "= dx")
    rows[2].suptitle("dx[i + u, j + v] += dout[i, j] * w[u, v]: each dout sends a copy of the kernel, scaled, back "
                     "onto its window; overlaps add up", fontsize=11)
    # The cell to write out: among those that collect from the most dout values, the largest |dx|.
    reached = np.array([[np.count_nonzero(padded[r:r + HH, c:c + WW]) for c in range(W)] for r in range(H)])
    r, c = np.unravel_index(np.argmax(reached * (np.abs(full).max() + 1) + np.abs(full)), full.shape)
    bottom = rows[3].subplots(1, 5, width_ratios=[W + WW - 1, 0.4, WW, W, 1.6 * W])
    show(bottom[0], padded, f"dout with {HH - 1} zeros around it", frame=((r, c), (HH, WW)), color="tab:red")
    bottom[1].set_axis_off()
    show(bottom[2], flipped, "w flipped: rows\nand columns reversed")
    show(bottom[3], full, "= dx again", frame=((r, c), (1, 1)), color="tab:red")
    def number(value):  # negative numbers in parentheses: 2*(-1), not 2*-1
        return f"({value:g})" if value < 0 else f"{value:g}"

    written = " + ".join(f"{number(a)}*{number(b)}" for a, b in zip(padded[r:r + HH, c:c + WW].ravel() + 0.0,
                                                                      flipped.ravel()))
    bottom[4].set_axis_off()
    bottom[4].text(0.0, 0.5, f"dx[{r}, {c}] =\n" + textwrap.fill(written, 30) + f"\n= {full[r, c]:g}",
                   family="monospace", fontsize=10, va="center", color="tab:red", transform=bottom[4].transAxes)
    rows[3].suptitle("The same dx as a forward pass: the full correlation of dout with the flipped kernel "
                     "(the forward pass did not flip it; its backward pass does)", fontsize=11)
    figure.backward_demo = dict(dx=dx[0, 0], dw=dw[0, 0], db=float(db[0]), windows=windows, stamps=stamps, full=full,
                                written=(int(r), int(c)))
    return _finish(figure, save_path)


# --- Training or loading a model for the script ---

def train_or_load(framework, data, epochs, seed, model_path=None):
    """A SimpleCNN of the chosen framework: loaded from model_path (frameworks.load_any), or built and
    trained through the framework module's shared interface (set_seed, build_model, fit, with fit's
    defaults, the same in every framework)."""
    if model_path:
        return load_any(model_path)
    module = framework_module(framework)
    module.set_seed(seed)
    model = module.build_model("simple")
    module.fit(model, data.x_train, data.y_train, data.x_val, data.y_val, epochs=epochs, seed=seed)
    return model


def first_of_each_class(labels):
    """Index of the first example of each class 0, 1, ..., max(labels): labels of shape (N,) -> (K,)."""
    classes = range(int(labels.max()) + 1)
    missing = [label for label in classes if not np.any(labels == label)]
    if missing:
        raise ValueError(f"no example of class {missing} among the {len(labels)} labels")
    return np.array([np.flatnonzero(labels == label)[0] for label in classes])


def write_all_figures(model, data, out_dir, num_gradcam_images=1000, only=None, log=print):
    """Every figure for one trained model (or those whose file name contains one of the strings in
    `only`), and the numbers BENCHMARKS.md quotes (printed): Grad-CAM's mass on the digit over the first
    num_gradcam_images test images, with figure 7; the commonest confusions and the confidence of the
    worst mistakes, with figure 8 (figure 14 draws Grad-CAM on the four most confident mistakes); the last
    ReLU's units that never fire on the training images, with figure 6. Figures 11 and 12 need a NumPy
    CNN (they read its biases and layer geometry) and are skipped for the other frameworks. Returns the
    list of PNG paths written.
    """
    x_test, y_test = data.x_test, data.y_test
    image = x_test[:1]  # (1, 1, 28, 28): the first test image, a 7
    examples = first_of_each_class(y_test)  # the first test image of each digit 0..9
    layer = default_gradcam_layer(model)  # the last conv layer's activation: relu2 in the SimpleCNN
    crop = image[:, :, 4:25, 4:25]  # (1, 1, 21, 21): the digit without most of the empty border
    small, _ = pool2d_forward(crop, kernel_size=3, mode="avg")  # (1, 1, 21, 21) -> (1, 1, 7, 7): readable numbers
    logits = predict_logits(model, x_test)  # (N, K), for figures 8 and 14
    probabilities, predicted, mistakes = confident_mistakes(y_test, logits)
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
         lambda path: plot_confusion_and_mistakes(y_test, logits, x_test, save_path=path)),
        ("features_09_mnist_samples.png", lambda path: plot_mnist_samples(data.x_train, data.y_train, save_path=path)),
        ("features_10_architecture.png",
         lambda path: plot_architecture(model, input_shape=x_test.shape[1:], save_path=path)),
        ("features_11_channels.png", lambda path: plot_channel_sum(model, image, save_path=path)),
        ("features_12_receptive_field.png", lambda path: plot_receptive_field(model, image, save_path=path)),
        ("features_13_convolution_backward.png", lambda path: plot_convolution_backward(save_path=path)),
        ("features_14_mistake_gradcam.png",
         lambda path: plot_mistake_gradcam(model, x_test[mistakes[:4]], y_test[mistakes[:4]], save_path=path)),
    ]
    if not isinstance(model, CNN):
        log("skipping features_11 and features_12: they read the layers of a NumPy CNN")
        figures = [(name, draw) for name, draw in figures if not name.startswith(("features_11", "features_12"))]
    if len(mistakes) == 0:
        log("skipping features_14: the model makes no mistake on these test images")
        figures = [(name, draw) for name, draw in figures if not name.startswith("features_14")]
    if only:
        chosen = [(name, draw) for name, draw in figures if any(part in name for part in only)]
        if not chosen:
            raise ValueError(f"no figure's file name contains any of {list(only)}; the figures are "
                             f"{[name for name, _ in figures]}")
        figures = chosen
    if "features_07_saliency_gradcam.png" in dict(figures):
        x_some, y_some = x_test[:num_gradcam_images], y_test[:num_gradcam_images]
        gradients = class_score_gradients(model, x_some, y_some, layer)
        mass, area = mass_on_digit(grad_cam(gradients["activation"], gradients["activation_grad"], x_some.shape[2:]),
                                   x_some)
        log(f"Grad-CAM ({layer}) on {len(mass)} test images: {mass.mean():.1%} of its mass on the digit, which "
            f"covers {area.mean():.1%} of the image; more mass than area on {np.mean(mass > area):.1%} of the images")
    if "features_08_confusion_matrix.png" in dict(figures):
        pairs = {}
        for index in mistakes:
            pairs[(y_test[index], predicted[index])] = pairs.get((y_test[index], predicted[index]), 0) + 1
        common = sorted(pairs.items(), key=lambda item: -item[1])[:4]
        confidence = probabilities[mistakes[:8], predicted[mistakes[:8]]]
        log(f"{len(mistakes)} errors on {len(y_test)} test images; the most common (true -> predicted): "
            + ", ".join(f"{true} -> {wrong} ({count})" for (true, wrong), count in common)
            + f"; the {len(confidence)} most confident mistakes have p from {confidence.min():.3f} to "
              f"{confidence.max():.3f}; {np.mean(probabilities[mistakes, predicted[mistakes]] > 0.9):.0%} of all "
              f"mistakes have p > 0.9")
    if "features_06_statistics.png" in dict(figures):
        last = [name for name, kind, _ in model_layers(model) if kind in ACTIVATION_KINDS][-1]
        dead = never_active_units(model, data.x_train, last)
        log(f"{last}: {dead.sum()} of {dead.size} units never active on the {len(data.x_train)} training images")
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
    parser.add_argument("--only", nargs="+", default=None, metavar="PART",
                        help="write only the figures whose file name contains one of these, e.g. --only 06 09 13")
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
        save_any(model, args.save)
        print(f"saved {args.save}")
    paths = write_all_figures(model, data, args.out, num_gradcam_images=200 if args.quick else 1000, only=args.only)
    print(f"{len(paths)} figures in {args.out}/, total time {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()
