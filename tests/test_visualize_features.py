"""Tests for visualize_features.py: the figures show what they claim, computed the way they claim.

One small NumPy SimpleCNN, trained for one epoch on 4,000 MNIST images, is shared by every test
(module-scoped fixture); the PyTorch and Keras copies get its weights through the transfer
functions of cnn_pytorch.py and cnn_keras.py.
"""
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

import frameworks
import visualize_features as vis
from cnn_from_scratch import Adam, conv2d_forward, conv2d_forward_naive, make_simple_cnn
from data import load_mnist

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONV_STAGES = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]


@pytest.fixture(scope="module")
def mnist():
    return load_mnist(seed=0)


@pytest.fixture(scope="module")
def numpy_model(mnist):
    model = make_simple_cnn(rng=np.random.default_rng(0))
    model.fit(mnist.x_train[:4000], mnist.y_train[:4000], epochs=1, batch_size=64,
              optimizer=Adam(model.parameters(), learning_rate=2e-3), seed=0, verbose=False)
    return model


@pytest.fixture(scope="module")
def torch_model(numpy_model):
    import cnn_pytorch
    return cnn_pytorch.numpy_to_torch(numpy_model, cnn_pytorch.SimpleCNN())


@pytest.fixture(scope="module")
def keras_model(numpy_model):
    import cnn_keras
    return cnn_keras.numpy_to_keras(numpy_model, cnn_keras.make_simple_cnn())


def rendered_pixels(figure):
    """The figure as the Agg backend draws it: an array of shape (height, width, 4)."""
    figure.canvas.draw()
    return np.asarray(figure.canvas.buffer_rgba()).copy()


# --- Layer names and the adapter ---

def test_layer_names_are_the_same_in_every_framework(numpy_model, torch_model, keras_model):
    expected = CONV_STAGES + ["flatten1", "dense1", "relu3", "dense2"]
    for model in (numpy_model, torch_model, keras_model):
        assert vis.layer_names(model) == expected
    assert vis.resolve_layer(torch_model, "features.3") == 3  # torch's own name for the second conv
    assert vis.resolve_layer(keras_model, keras_model.layers[0].name) == 0
    assert vis.resolve_layer(numpy_model, -1) == 9


def test_bad_arguments_give_clear_errors(numpy_model, mnist):
    with pytest.raises(ValueError, match="unknown layer 'conv9'"):
        vis.resolve_layer(numpy_model, "conv9")
    with pytest.raises(ValueError, match="out of range"):
        vis.resolve_layer(numpy_model, 10)
    with pytest.raises(TypeError, match="cnn_from_scratch.CNN"):
        frameworks.framework_of("not a model")
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        vis.get_activations(numpy_model, mnist.x_test[0])  # (1, 28, 28): the batch axis is missing
    with pytest.raises(ValueError, match="feature maps need"):
        vis.plot_feature_maps(numpy_model, mnist.x_test[0], layer="dense1")


def test_one_adapter_per_framework_gives_the_same_weights(numpy_model, torch_model, keras_model):
    assert [frameworks.adapter_for(model).name for model in (numpy_model, torch_model, keras_model)] == list(frameworks.FRAMEWORKS)
    reference = vis.weight_arrays(numpy_model)
    assert [weights.shape for weights in reference.values()] == [(16, 1, 3, 3), (32, 16, 3, 3), (1568, 128), (128, 10)]
    torch_weights, keras_weights = vis.weight_arrays(torch_model), vis.weight_arrays(keras_model)
    for name in reference:  # conv (F, C, HH, WW) and dense (in, out) in every framework
        np.testing.assert_array_equal(torch_weights[name], reference[name])
    for name in ("conv1", "conv2", "dense2"):  # Keras's dense1 rows are in (H, W, C) order
        np.testing.assert_array_equal(keras_weights[name], reference[name])
    with pytest.raises(ValueError, match="framework must be one of"):
        vis.framework_module("jax")


def test_save_any_and_load_any_give_the_same_logits(numpy_model, torch_model, keras_model, mnist, tmp_path):
    images = mnist.x_test[:16]
    expected = vis.predict_logits(numpy_model, images)
    for model, file_name in ((numpy_model, "simple.npz"), (torch_model, "simple.pt"), (keras_model, "simple.keras")):
        frameworks.save_any(model, tmp_path / file_name)
        loaded = frameworks.load_any(tmp_path / file_name)
        assert type(loaded) is type(model)
        np.testing.assert_allclose(vis.predict_logits(loaded, images), expected, atol=1e-4)


def test_gradcam_of_a_keras_model_loaded_from_a_file(keras_model, mnist, tmp_path):
    # A Sequential model loaded from .keras is rebuilt layer by layer: a layer's `.output` is then
    # not on the path to model.outputs, and d score / d activation used to come back as None.
    import cnn_keras
    cnn_keras.save_model(keras_model, tmp_path / "simple.keras")
    loaded = cnn_keras.load_model(tmp_path / "simple.keras")
    images, labels = mnist.x_test[:4], mnist.y_test[:4]
    gradients = vis.class_score_gradients(loaded, images, labels, "relu2")
    expected = vis.class_score_gradients(keras_model, images, labels, "relu2")
    for key in ("input_grad", "activation", "activation_grad", "logits"):
        assert gradients[key].dtype == np.float32 and gradients[key].shape == expected[key].shape, key
        np.testing.assert_allclose(gradients[key], expected[key], atol=1e-6)
    assert np.abs(gradients["activation_grad"]).max() > 0
    figure = vis.plot_saliency_gradcam(loaded, images, labels)
    assert figure.gradcam.shape == (4, 28, 28) and figure.gradcam.max() > 0


# --- Figure 1: filters ---

def test_filter_grid_shows_exactly_F_panels_with_the_weights(numpy_model):
    figure = vis.plot_filters(numpy_model)
    filters = numpy_model.layers[0].params["W"]  # (16, 1, 3, 3)
    panels = [ax for ax in figure.axes if ax.images]  # the colorbar axes holds no image
    assert len(panels) == len(figure.filter_axes) == filters.shape[0] == 16
    for index, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.images[0].get_array(), filters[index, 0])
        low, high = ax.images[0].get_clim()
        assert low == -high == -np.abs(filters).max()  # one scale, symmetric around zero
    assert len([ax for ax in vis.plot_filters(np.ones((5, 3, 3, 3))).axes if ax.images]) == 5


# --- Figures 2 and 3: feature maps and activation progression ---

def test_feature_maps_and_progression_show_the_layer_outputs(numpy_model, mnist):
    image = mnist.x_test[:1]
    figure = vis.plot_feature_maps(numpy_model, image, layer="relu1")
    np.testing.assert_array_equal(figure.feature_maps, numpy_model.layers[1].out[0])  # ReLULayer keeps its output
    assert len([ax for ax in figure.axes if ax.images]) == 1 + 16  # the input and 16 maps
    progression = vis.plot_activation_progression(numpy_model, image, max_channels=4)
    assert list(progression.stages) == CONV_STAGES
    assert [maps.shape for maps in progression.stages.values()] == [(4, 28, 28)] * 2 + [(4, 14, 14)] * 3 + [(4, 7, 7)]


def test_progression_says_how_many_channels_and_numbers_each_block_apart(numpy_model, mnist):
    figure = vis.plot_activation_progression(numpy_model, mnist.x_test[:1])
    assert figure.blocks == [CONV_STAGES[:3], CONV_STAGES[3:]]  # a new block at each conv layer
    assert "first 8 channels" in figure._suptitle.get_text()
    block_titles = [part._suptitle.get_text() for part in figure.subfigs[1:]]
    assert block_titles[0].startswith("conv1 -> relu1 -> pool1: channels 0-7 of 16")
    assert block_titles[1].startswith("conv2 -> relu2 -> pool2: channels 0-7 of 32")
    for part, block in zip(figure.subfigs[1:], figure.blocks):  # column titles name the block's own conv
        titles = [ax.get_title() for ax in part.axes if ax.get_title()]
        assert titles == [f"{block[0]} ch {channel}" for channel in range(8)]


# --- Figure 4: the convolution demo ---

def test_convolution_demo_numbers_equal_conv2d_forward():
    rng = np.random.default_rng(0)
    image, kernel, bias = rng.random((7, 6)), rng.standard_normal((3, 3)), 0.25
    figure = vis.plot_convolution_steps(image, kernel, bias=bias, positions=[(0, 0), (2, 3), (4, 3)])
    expected, _ = conv2d_forward_naive(image[None, None], kernel[None, None], np.array([bias]))
    np.testing.assert_allclose(figure.conv_demo["output"], expected[0, 0], rtol=1e-12)
    drawn_text = [text.get_text() for ax in figure.axes for text in ax.texts]
    for step in figure.conv_demo["steps"]:
        i, j = step["position"]
        np.testing.assert_array_equal(step["window"], image[i:i + 3, j:j + 3])
        assert step["total"] == pytest.approx(expected[0, 0, i, j], rel=1e-12)
        assert any(f"= {step['total']:.4f}" in text for text in drawn_text)  # the written-out sum is drawn


def test_default_convolution_windows_do_not_overlap_and_leave_no_empty_band():
    output = np.array([[0.0, 1, 2, 3, 9], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [0, 0, 0, 0, 0], [-9, -1, 0, 0, 8]])
    # (0, 4) and (4, 0) are the extremes but touch the top-left window's neighbours only by rows or columns.
    assert vis.non_overlapping_positions(output, (3, 3)) == [(0, 0), (0, 4), (4, 0)]
    assert vis.windows_overlap((0, 0), (2, 2), (3, 3)) and not vis.windows_overlap((0, 0), (2, 3), (3, 3))
    rng = np.random.default_rng(2)
    for image, kernel in ((rng.random((7, 7)), vis.CLASSIC_KERNELS["Sobel x\n(vertical edges)"]),
                          (rng.random((9, 8)), rng.standard_normal((3, 3))), (rng.random((8, 8)), np.ones((2, 2)))):
        figure = vis.plot_convolution_steps(image, kernel)
        positions = [step["position"] for step in figure.conv_demo["steps"]]
        assert len(positions) == 3 and positions[0] == (0, 0)
        for index, first in enumerate(positions):
            for second in positions[index + 1:]:
                assert not vis.windows_overlap(first, second, kernel.shape), (first, second)
        frames = [patch.get_bbox() for patch in figure.axes[0].patches]  # the windows drawn on the input
        assert len(frames) == 3
        for index, first in enumerate(frames):
            assert not any(first.overlaps(second) for second in frames[index + 1:])
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        lowest = min(text.get_window_extent(renderer).y0 for ax in figure.axes[3:] for text in ax.texts)
        assert lowest / figure.dpi < 0.5  # inches of empty space under the written-out sums


# --- Figure 5: OpenCV against the project's convolution ---

@pytest.mark.parametrize("kernel_name", list(vis.CLASSIC_KERNELS))
def test_opencv_filter2d_equals_numpy_conv2d_forward(kernel_name):
    kernel = vis.CLASSIC_KERNELS[kernel_name]
    for image in vis.synthetic_images().values():
        ours, _ = conv2d_forward(image[None, None], kernel[None, None], np.zeros(1), padding=1)
        np.testing.assert_allclose(vis.apply_kernel_opencv(image, kernel), ours[0, 0], rtol=0, atol=1e-12)


def test_opencv_matches_on_a_non_square_kernel_and_the_figure_uses_it():
    rng = np.random.default_rng(1)
    image, kernel = rng.random((9, 11)), rng.standard_normal((3, 5))
    ours, _ = conv2d_forward(image[None, None], kernel[None, None], np.zeros(1), padding=(1, 2))
    np.testing.assert_allclose(vis.apply_kernel_opencv(image, kernel), ours[0, 0], atol=1e-12)
    figure = vis.plot_filter_responses({"random": image}, {"random kernel": kernel})
    np.testing.assert_allclose(figure.responses[("random", "random kernel")], ours[0, 0], atol=1e-12)


def test_filter_responses_use_a_sequential_colormap_for_non_negative_outputs():
    figure = vis.plot_filter_responses()
    assert figure.colormaps["box blur"] == figure.colormaps["Gaussian blur"] == "viridis"
    assert all(figure.colormaps[name] == "RdBu_r" for name in vis.CLASSIC_KERNELS if "blur" not in name)
    for (_, kernel_name), response in figure.responses.items():
        assert (response.min() >= 0) == ("blur" in kernel_name)
    assert "synthetic test patterns (not MNIST)" in figure._suptitle.get_text()


# --- Figure 6: statistics and dead units ---

def test_dead_unit_fraction_on_a_hand_made_case():
    activation = np.zeros((3, 4, 2, 2))  # 4 channels; channels 1 and 3 fire once, 0 and 2 never do
    activation[2, 1, 1, 0] = 0.5
    activation[0, 3, 0, 1] = 2.0
    activation[:, 2] = -1.0  # negative is not active
    assert vis.dead_unit_fraction(activation) == 0.5
    assert vis.dead_unit_fraction(np.array([[0.0, 1.0, -2.0, 0.0, 0.0], [0.0, 0.0, 0.0, 3.0, 0.0]])) == 0.6
    with pytest.raises(ValueError):
        vis.dead_unit_fraction(np.zeros((2, 3, 4)))


def test_statistics_figure_finds_channels_killed_by_hand(mnist):
    model = make_simple_cnn(rng=np.random.default_rng(0))
    conv = model.layers[0]
    conv.params["W"][[2, 5, 11, 13]] = 0.0  # 4 of 16 first-layer filters output their bias only ...
    conv.params["b"][[2, 5, 11, 13]] = -1.0  # ... which is negative: the ReLU after them never fires
    figure = vis.plot_statistics(model, mnist.x_test[:100])
    assert figure.dead_fractions["relu1"] == 4 / 16
    assert set(figure.dead_fractions) == {"relu1", "relu2", "relu3"}
    weight_titles = [ax.get_title() for ax in figure.subfigs[0].axes]
    assert weight_titles[0].startswith("conv1 (16, 1, 3, 3): fan-in 9\n")
    assert [vis.fan_in(np.zeros(shape)) for shape in ((16, 1, 3, 3), (32, 16, 3, 3), (1568, 128))] == [9, 144, 1568]
    assert "fan-in" in figure.subfigs[0]._suptitle.get_text()  # the weight row says what it shows


# --- Figure 7: saliency and Grad-CAM ---

def test_gradcam_puts_most_of_its_mass_on_the_digit(numpy_model, mnist):
    images, labels = mnist.x_test[:100], mnist.y_test[:100]
    figure = vis.plot_saliency_gradcam(numpy_model, images, labels)
    cam = figure.gradcam  # (100, 28, 28), non-negative
    assert cam.shape == (100, 28, 28) and cam.min() >= 0
    # The digit: pixels brighter than 0.1, grown by one pixel in every direction.
    digit = np.stack([cv2.dilate((image[0] > 0.1).astype(np.uint8), np.ones((3, 3), np.uint8)) for image in images])
    np.testing.assert_array_equal(vis.digit_mask(images), digit)
    mass_on_digit, area_of_digit = vis.mass_on_digit(cam, images)
    np.testing.assert_allclose(mass_on_digit[0], (cam[0] * digit[0]).sum() / cam[0].sum(), rtol=1e-6)
    assert 0.2 < area_of_digit.mean() < 0.4  # what a uniform map would put on the digit
    assert np.mean(mass_on_digit > area_of_digit) >= 0.8
    assert mass_on_digit.mean() > 1.6 * area_of_digit.mean()


def test_saliency_figure_shows_each_digit_0_to_9_on_a_uniform_colormap(numpy_model, mnist):
    examples = vis.first_of_each_class(mnist.y_test)
    assert list(mnist.y_test[examples]) == list(range(10))
    assert all(np.flatnonzero(mnist.y_test == digit)[0] == index for digit, index in enumerate(examples))
    figure = vis.plot_saliency_gradcam(numpy_model, mnist.x_test[examples], mnist.y_test[examples])
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert [title.split("\n")[0] for title in titles] == [f"digit {digit}" for digit in range(10)]
    assert "digits 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in figure._suptitle.get_text()
    maps = [image for ax in figure.axes for image in ax.images if image.get_cmap().name != "gray"]
    assert len(maps) == 2 * 10 and {image.get_cmap().name for image in maps} == {"magma"}
    with pytest.raises(ValueError, match=r"no example of class \[3\]"):
        vis.first_of_each_class(np.array([0, 1, 2, 4]))


def test_confusion_matrix_colors_and_writes_the_errors():
    y_true = np.array([0] * 50 + [1] * 30 + [2] * 20)
    predicted = y_true.copy()
    predicted[:3] = 2  # three 0s taken for 2s
    predicted[50] = 0  # one 1 taken for a 0
    logits = np.eye(3)[predicted] * 5.0  # (100, 3): the largest logit is the predicted class
    figure = vis.plot_confusion_and_mistakes(y_true, logits, np.zeros((100, 1, 4, 4)))
    np.testing.assert_array_equal(figure.confusion, [[47, 0, 3], [1, 29, 0], [0, 0, 20]])
    ax = figure.axes[0]
    written = {(round(text.get_position()[1]), round(text.get_position()[0])): text.get_text() for text in ax.texts}
    assert written == {(0, 0): "47", (1, 1): "29", (2, 2): "20", (0, 2): "3", (1, 0): "1"}  # zero errors: blank
    shown = ax.images[0]
    assert shown.get_clim() == (0, 3)  # the errors set the color scale, not the ~1,000 correct images
    assert shown.get_array().mask.tolist() == np.eye(3, dtype=bool).tolist()  # the diagonal is not colored
    assert set(figure.mistakes) == {0, 1, 2, 50}


def test_numpy_backward_gradients_equal_torch_autograd_in_float64(numpy_model, mnist):
    # Finite differences are no oracle here: background pixels give exactly equal values in many
    # max-pool windows, a tie where the network is not differentiable. Autograd is the oracle.
    import cnn_pytorch
    import torch
    model = numpy_model.astype(np.float64)
    try:
        torch_model = cnn_pytorch.numpy_to_torch(model, cnn_pytorch.SimpleCNN().to(torch.float64))
        x, labels = mnist.x_test[:4].astype(np.float64), mnist.y_test[:4]
        for layer in ("conv1", "relu2", "pool2"):
            ours = vis.class_score_gradients(model, x, labels, layer)
            theirs = vis.class_score_gradients(torch_model, x, labels, layer)
            for key in ("input_grad", "activation_grad"):
                assert np.abs(ours[key]).max() > 0
                np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-10, atol=1e-12)
    finally:
        numpy_model.astype(np.float32)


# --- The three frameworks agree ---

def test_three_frameworks_give_the_same_arrays_and_figures(numpy_model, torch_model, keras_model, mnist):
    images, labels = mnist.x_test[:8], mnist.y_test[:8]
    # Gradients are compared on images with a little noise added. On clean MNIST the empty background
    # makes many max-pool windows hold mathematically equal values; in float32 each framework's
    # rounding then decides which one is "first", and the gradient goes there (about 1% of saliency
    # pixels differ). With noise there are no ties, and float64 (test above) agrees to 1e-10 anyway.
    noisy = np.clip(images + np.random.default_rng(0).uniform(0, 0.05, images.shape), 0, 1).astype(np.float32)
    reference = {
        "filters": vis.first_conv_filters(numpy_model),
        "activations": vis.get_activations(numpy_model, images, CONV_STAGES),
        "logits": vis.predict_logits(numpy_model, images),
        "gradients": vis.class_score_gradients(numpy_model, noisy, labels, "relu2"),
        "filter pixels": rendered_pixels(vis.plot_filters(numpy_model)),
        "map pixels": rendered_pixels(vis.plot_feature_maps(numpy_model, images[0], layer="conv2")),
        "figure 7": vis.plot_saliency_gradcam(numpy_model, noisy, labels),
    }
    for model in (torch_model, keras_model):
        np.testing.assert_array_equal(vis.first_conv_filters(model), reference["filters"])
        activations = vis.get_activations(model, images, CONV_STAGES)
        for name in CONV_STAGES:
            np.testing.assert_allclose(activations[name], reference["activations"][name], atol=1e-4)
        np.testing.assert_allclose(vis.predict_logits(model, images), reference["logits"], atol=1e-4)
        gradients = vis.class_score_gradients(model, noisy, labels, "relu2")
        for key in ("input_grad", "activation", "activation_grad", "logits"):
            np.testing.assert_allclose(gradients[key], reference["gradients"][key], atol=1e-4)
        figure = vis.plot_saliency_gradcam(model, noisy, labels)
        for key in ("saliency", "gradcam"):
            expected = getattr(reference["figure 7"], key)
            np.testing.assert_allclose(getattr(figure, key), expected, atol=1e-4 * expected.max())
        np.testing.assert_array_equal(rendered_pixels(vis.plot_filters(model)), reference["filter pixels"])
        # Feature maps agree to ~1e-6, so at most a rare pixel can fall into the next colormap bin.
        pixels = rendered_pixels(vis.plot_feature_maps(model, images[0], layer="conv2"))
        assert pixels.shape == reference["map pixels"].shape
        assert np.mean(np.any(pixels != reference["map pixels"], axis=2)) < 1e-3


# --- The script ---

def test_quick_script_writes_every_figure(tmp_path):
    result = subprocess.run([sys.executable, "visualize_features.py", "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = ["features_01_filters.png", "features_02_feature_maps.png", "features_03_activation_progression.png",
                "features_04_convolution_steps.png", "features_05_filter_responses.png",
                "features_06_statistics.png", "features_07_saliency_gradcam.png", "features_08_confusion_matrix.png"]
    assert sorted(os.listdir(tmp_path)) == expected
    for name in expected:
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and min(image.shape[:2]) > 300, name  # a real, decodable PNG of sensible size
        assert image.std() > 10, name  # not blank
    assert "test accuracy" in result.stdout
