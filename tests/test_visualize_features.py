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

import explain
import frameworks
import visualize_features as vis
from cnn_from_scratch import (ConvolutionLayer, FullyConnectedLayer, conv2d_backward, conv2d_forward,
                              conv2d_forward_naive, fit, init_weights, make_simple_cnn)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONV_STAGES = ["conv1", "relu1", "pool1", "conv2", "relu2", "pool2"]


@pytest.fixture(scope="module")
def numpy_model(mnist):
    model = make_simple_cnn(rng=np.random.default_rng(0))
    fit(model, mnist.x_train[:4000], mnist.y_train[:4000], mnist.x_val, mnist.y_val, epochs=1, batch_size=64,
        learning_rate=2e-3, seed=0, progress=False, restore_best=False)
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
    cnn_keras.save(keras_model, tmp_path / "simple.keras")
    loaded = cnn_keras.load(tmp_path / "simple.keras")
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
    assert "first 8 channels" in figure.get_suptitle()
    block_titles = [part.get_suptitle() for part in figure.subfigs[1:]]
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
    assert "synthetic test patterns (not MNIST)" in figure.get_suptitle()


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
    assert weight_titles[0].endswith("He init, std sqrt(2 / 9) = 0.471")
    assert weight_titles[3].endswith("Xavier init, sqrt(2 / (128 + 10)) = 0.120")  # the last layer is Xavier's
    np.testing.assert_array_equal(vis.never_active_units(model, mnist.x_test[:100], "relu1", batch_size=30),
                                  np.isin(np.arange(16), [2, 5, 11, 13]))
    assert [vis.fan_in(np.zeros(shape)) for shape in ((16, 1, 3, 3), (32, 16, 3, 3), (1568, 128))] == [9, 144, 1568]
    assert "fan-in" in figure.subfigs[0].get_suptitle()  # the weight row says what it shows


def test_init_std_is_the_std_that_init_weights_draws():
    rng = np.random.default_rng(0)
    for shape, fans, scheme in (((1568, 128), (1568, 128), "he"), ((128, 10), (128, 10), "xavier"),
                                ((32, 16, 3, 3), (144, 288), "he"), ((32, 16, 3, 3), (144, 288), "xavier")):
        drawn = init_weights(shape, *fans, scheme, rng, np.float64)
        assert vis.init_std(drawn, scheme) == pytest.approx(drawn.std(), rel=0.03), (shape, scheme)
    assert vis.init_std(np.zeros((4, 3)), None) is None


# --- Figure 7: saliency and Grad-CAM ---

def test_gradcam_puts_most_of_its_mass_on_the_digit(numpy_model, mnist):
    images, labels = mnist.x_test[:100], mnist.y_test[:100]
    figure = vis.plot_saliency_gradcam(numpy_model, images, labels)
    cam = figure.gradcam  # (100, 28, 28), non-negative
    assert cam.shape == (100, 28, 28) and cam.min() >= 0
    # The digit: pixels brighter than 0.1, grown by one pixel in every direction.
    digit = np.stack([cv2.dilate((image[0] > 0.1).astype(np.uint8), np.ones((3, 3), np.uint8)) for image in images])
    np.testing.assert_array_equal(explain.digit_mask(images), digit)
    mass_on_digit, area_of_digit = explain.mass_on_digit(cam, images)
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
    assert "digits 0, 1, 2, 3, 4, 5, 6, 7, 8, 9" in figure.get_suptitle()
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


def test_confident_mistakes_are_the_errors_most_confident_first():
    logits = np.log(np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.05, 0.05, 0.9], [0.4, 0.35, 0.25]]))
    probabilities, predicted, mistakes = vis.confident_mistakes(np.array([1, 1, 0, 2]), logits)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_array_equal(predicted, [0, 1, 2, 0])
    np.testing.assert_array_equal(mistakes, [2, 0, 3])  # p = 0.9, 0.7, 0.4 on the wrong class; image 1 is right


def test_mistake_gradcam_explains_the_wrong_and_the_true_class(numpy_model, mnist, tmp_path):
    x, y = mnist.x_test[:300], mnist.y_test[:300]
    _, predicted, mistakes = vis.confident_mistakes(y, vis.predict_logits(numpy_model, x))
    chosen = mistakes[:3]
    assert len(chosen) == 3  # a one-epoch model makes mistakes on 300 images
    figure = vis.plot_mistake_gradcam(numpy_model, x[chosen], y[chosen])
    np.testing.assert_array_equal(figure.predicted, predicted[chosen])
    for classes, shown in ((predicted[chosen], figure.gradcam_predicted), (y[chosen], figure.gradcam_true)):
        gradients = frameworks.class_score_gradients(numpy_model, x[chosen], classes, "relu2")
        np.testing.assert_allclose(shown, explain.grad_cam(gradients["activation"], gradients["activation_grad"],
                                                           (28, 28)), rtol=1e-6, atol=1e-9)
    titles = [ax.get_title() for ax in figure.axes[:3]]
    assert titles[0].startswith(f"true {y[chosen[0]]} -> {predicted[chosen[0]]}\np = ")
    printed = []
    vis.write_all_figures(numpy_model, mnist, tmp_path, only=["08"], log=printed.append)
    errors = int(np.sum(vis.predict_logits(numpy_model, mnist.x_test).argmax(axis=1) != mnist.y_test))
    assert any(line.startswith(f"{errors} errors on {len(mnist.y_test)} test images") for line in printed)


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


# --- Figures 9 to 13: the data, the network, channels, the receptive field, the backward pass ---

def test_mnist_samples_show_each_image_with_its_label(mnist):
    images, labels = mnist.x_train[:300], mnist.y_train[:300]
    figure = vis.plot_mnist_samples(images, labels, per_class=2)
    assert figure.sample_indices.shape == (2, 10)
    panels = [ax for ax in figure.axes if ax.images]
    assert len(panels) == 20
    for ax, index in zip(panels, figure.sample_indices.ravel()):  # row by row, as subplots are laid out
        np.testing.assert_array_equal(ax.images[0].get_array(), images[index, 0])
        assert ax.get_title() == f"y[{index}] = {labels[index]}"
    np.testing.assert_array_equal(labels[figure.sample_indices], np.tile(np.arange(10), (2, 1)))
    with pytest.raises(ValueError, match="every class needs 2 images"):
        vis.plot_mnist_samples(images[:3], np.array([0, 1, 1]), per_class=2)


def test_architecture_shows_every_shape_and_parameter_count(numpy_model, torch_model, keras_model):
    expected_shapes = [(1, 28, 28), (16, 28, 28), (16, 28, 28), (16, 14, 14), (32, 14, 14), (32, 14, 14), (32, 7, 7),
                       (1568,), (128,), (128,), (10,)]
    forward_shapes = [(1, 28, 28)]
    x = np.zeros((1, 1, 28, 28), np.float32)
    for layer in numpy_model.layers:  # the shapes, by the model's own forward pass
        x = layer.forward(x)
        forward_shapes.append(x.shape[1:])
    assert forward_shapes == expected_shapes
    for model in (numpy_model, torch_model, keras_model):
        figure = vis.plot_architecture(model)
        assert [row["shape"] for row in figure.architecture] == expected_shapes
        assert [row["name"] for row in figure.architecture] == ["input"] + CONV_STAGES + ["flatten1", "dense1", "relu3",
                                                                                          "dense2"]
        counts = [row["parameters"] for row in figure.architecture]
        assert counts == [0] + [sum(p.size for p in layer.params.values()) for layer in numpy_model.layers]
        assert sum(counts) == numpy_model.num_parameters() == 206_922
        drawn = [text.get_text() for text in figure.axes[0].texts]
        assert "(16, 14, 14)" in drawn and "(10,)\n1,290 parameters" in drawn and "conv2\n3x3 conv, 32 filters" in drawn
        assert "= 206,922" in figure.get_suptitle()


def test_conv_versus_dense_counts_equal_the_layers_own_parameters():
    conv, dense = vis.conv_versus_dense_parameters((4, 3, 3, 3), (3, 5, 6), (4, 5, 6))
    assert conv == sum(p.size for p in ConvolutionLayer(3, 4, 3).params.values())
    assert dense == sum(p.size for p in FullyConnectedLayer(3 * 5 * 6, 4 * 5 * 6).params.values())
    assert vis.conv_versus_dense_parameters((32, 16, 3, 3), (16, 14, 14), (32, 14, 14)) == (4_640, 19_675_264)


def test_channel_figure_sums_to_the_layers_output_map(numpy_model, mnist):
    image = mnist.x_test[:1]
    figure = vis.plot_channel_sum(numpy_model, image)
    demo = figure.channel_demo
    f = demo["channel"]
    pool1 = image
    for layer in numpy_model.layers[:3]:  # conv1, relu1, pool1: the input of conv2, by the layers themselves
        pool1 = layer.forward(pool1)
    conv2 = numpy_model.layers[3]
    expected, _ = conv2d_forward_naive(pool1, conv2.params["W"], conv2.params["b"], padding=1)  # (1, 32, 14, 14)
    np.testing.assert_allclose(demo["inputs"], pool1[0], rtol=1e-6)
    assert demo["kernels"].shape == (16, 3, 3) and demo["bias"] == pytest.approx(float(conv2.params["b"][f]))
    for c in range(16):  # each channel's part: its own map correlated with its own 3x3 slice of filter f
        part, _ = conv2d_forward_naive(pool1[:, c:c + 1], conv2.params["W"][f:f + 1, c:c + 1], np.zeros(1), padding=1)
        np.testing.assert_allclose(demo["partials"][c], part[0, 0], atol=1e-5)
    scale = np.abs(expected[0, f]).max()
    np.testing.assert_allclose(demo["total"], expected[0, f], atol=1e-5 * scale)  # the sum IS the layer's map
    np.testing.assert_allclose(demo["layer_output"], expected[0, f], atol=1e-5 * scale)
    assert demo["parameters"][0] == sum(p.size for p in conv2.params.values()) == 4_640
    title = figure.get_suptitle()
    assert "= 4,640 parameters" in title and "19,675,264 (19.7 million)" in title
    with pytest.raises(ValueError, match="conv layer with stride 1"):
        vis.plot_channel_sum(numpy_model, image, layer="pool1")
    with pytest.raises(TypeError, match="cnn_from_scratch.CNN"):
        vis.plot_channel_sum(object(), image)


def test_receptive_field_figure_frames_what_the_gradient_reaches(numpy_model, mnist):
    image = mnist.x_test[:1]
    figure = vis.plot_receptive_field(numpy_model, image)
    assert {name: field["size"] for name, field in figure.fields.items()} == {
        "conv1": (3, 3), "pool1": (4, 4), "conv2": (8, 8), "pool2": (10, 10)}
    frames = [patch for patch in figure.axes[0].patches]
    for patch, field in zip(frames, figure.fields.values()):  # drawn on pixel edges: the field, row by row
        assert (patch.get_x(), patch.get_y()) == (field["left"] - 0.5, field["top"] - 0.5)
        assert (patch.get_height(), patch.get_width()) == field["size"]
    # Brute force on the trained model: the gradient of the framed unit (all its channels) reaches only
    # input pixels inside its frame; max pooling and ReLU may keep it from some of them, never add any.
    noisy = (image + np.random.default_rng(0).uniform(0, 0.05, image.shape)).astype(np.float32)
    names = vis.layer_names(numpy_model)
    first = numpy_model.layers[0]
    first.needs_input_grad = True
    try:
        for name, field in figure.fields.items():
            layers = numpy_model.layers[:names.index(name) + 1]
            out = noisy
            for layer in layers:
                out = layer.forward(out)
            dout = np.zeros_like(out)
            dout[0, :, field["unit"][0], field["unit"][1]] = 1.0
            for layer in reversed(layers):
                dout = layer.backward(dout)
            inside = np.zeros((28, 28), dtype=bool)
            inside[max(field["top"], 0):field["top"] + field["size"][0],
                   max(field["left"], 0):field["left"] + field["size"][1]] = True
            reached = dout[0, 0] != 0
            assert reached.any() and not (reached & ~inside).any(), name
    finally:
        first.needs_input_grad = False


def test_backward_figure_numbers_are_the_backward_pass():
    figure = vis.plot_convolution_backward()
    demo = figure.backward_demo
    x = np.array([[1, 2, 0, 1], [0, 1, 3, 1], [2, 0, 1, 0], [1, 1, 0, 2]], dtype=np.float64)
    w = np.array([[1, 0, -1], [2, 1, 0], [0, -1, 1]], dtype=np.float64)
    dout = np.array([[1, -1], [2, 1]], dtype=np.float64)
    _, cache = conv2d_forward(x[None, None], w[None, None], np.zeros(1))
    dx, dw, db = conv2d_backward(dout[None, None], cache)  # the vectorized pass, not the loops the figure uses
    np.testing.assert_array_equal(demo["dx"], dx[0, 0])
    np.testing.assert_array_equal(demo["dw"], dw[0, 0])
    assert demo["db"] == db[0] == 3
    np.testing.assert_array_equal(demo["stamps"].sum(axis=(0, 1)), dx[0, 0])  # the four copies of w add up to dx
    np.testing.assert_array_equal(demo["windows"].sum(axis=(0, 1)), dw[0, 0])  # the four weighted windows to dw
    np.testing.assert_array_equal(demo["full"], dx[0, 0])  # the full correlation with the flipped kernel
    assert np.array_equal(dx, np.round(dx)) and np.abs(dx).max() <= 9  # small integers: checkable by hand
    r, c = demo["written"]
    drawn = [text.get_text() for ax in figure.axes for text in ax.texts]
    assert any(text.startswith(f"dx[{r}, {c}] =") and text.endswith(f"= {dx[0, 0, r, c]:g}") for text in drawn)
    rng = np.random.default_rng(3)  # any shapes: the identities hold for a non-square input and kernel
    x, w, dout = rng.standard_normal((4, 5)), rng.standard_normal((2, 3)), rng.standard_normal((3, 3))
    demo = vis.plot_convolution_backward(x, w, dout).backward_demo
    np.testing.assert_allclose(demo["full"], demo["dx"], atol=1e-12)
    np.testing.assert_allclose(demo["stamps"].sum(axis=(0, 1)), demo["dx"], atol=1e-12)
    with pytest.raises(ValueError, match=r"dout must have shape \(3, 3\)"):
        vis.plot_convolution_backward(x, w, dout[:2])
    with pytest.raises(ValueError, match="at most 9, got 16"):
        vis.plot_convolution_backward(rng.standard_normal((5, 6)), w, rng.standard_normal((4, 4)))


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

@pytest.mark.slow
def test_quick_script_writes_every_figure(tmp_path):
    result = subprocess.run([sys.executable, "visualize_features.py", "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    expected = ["features_01_filters.png", "features_02_feature_maps.png", "features_03_activation_progression.png",
                "features_04_convolution_steps.png", "features_05_filter_responses.png",
                "features_06_statistics.png", "features_07_saliency_gradcam.png", "features_08_confusion_matrix.png",
                "features_09_mnist_samples.png", "features_10_architecture.png", "features_11_channels.png",
                "features_12_receptive_field.png", "features_13_convolution_backward.png",
                "features_14_mistake_gradcam.png"]
    assert sorted(os.listdir(tmp_path)) == expected
    for name in expected:
        image = cv2.imread(str(tmp_path / name))
        assert image is not None and min(image.shape[:2]) > 300, name  # a real, decodable PNG of sensible size
        assert image.std() > 10, name  # not blank
    assert "test accuracy" in result.stdout


def test_only_writes_the_chosen_figures(numpy_model, mnist, tmp_path):
    printed = []
    paths = vis.write_all_figures(numpy_model, mnist, tmp_path, only=["09", "backward"], log=printed.append)
    assert [os.path.basename(path) for path in paths] == ["features_09_mnist_samples.png",
                                                          "features_13_convolution_backward.png"]
    assert sorted(os.listdir(tmp_path)) == [os.path.basename(path) for path in paths]
    assert not any("Grad-CAM" in line for line in printed)  # its measurement comes with figure 7 only
    with pytest.raises(ValueError, match=r"no figure's file name contains any of \['features_99'\]"):
        vis.write_all_figures(numpy_model, mnist, tmp_path, only=["features_99"])


def test_figures_that_read_numpy_layers_are_skipped_for_other_frameworks(torch_model, mnist, tmp_path):
    printed = []
    paths = vis.write_all_figures(torch_model, mnist, tmp_path, only=["10", "11", "12"], log=printed.append)
    assert [os.path.basename(path) for path in paths] == ["features_10_architecture.png"]
    assert any(line.startswith("skipping features_11 and features_12") for line in printed)



@pytest.mark.parametrize("module", ["drawings", "explain", "explorer", "stats", "report"])
def test_computations_load_no_figures_module(module):
    """Modules that compute (the report's text included) load neither matplotlib nor a figures module, nor
    the experiments that feed the report: report.py draws its figures with matplotlib imported on demand."""
    code = (f"import sys, {module}; print(sorted(name for name in ('experiments', 'matplotlib', 'visualize_features') "
            f"if name in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
