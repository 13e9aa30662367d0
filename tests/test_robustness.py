"""The robustness set of drawings.py is what it says: MNIST digits redrawn on the pad where and how
draw_digit was asked to (measured on the drawings: position, size, tilt, slant, stroke width), each
through preprocess_drawing, the same set for the same seed."""
import cv2
import numpy as np
import pytest

import drawings
from data import load_mnist


@pytest.fixture(scope="module")
def digits():
    data = load_mnist()
    return data.x_test[:60, 0], data.y_test[:60]


def moments(drawing):
    """(centre (row, column), covariance of shape (2, 2) in (x, y) order) of the ink's intensity."""
    rows, columns = np.indices(drawing.shape)
    mass = drawing.sum()
    centre = np.array([(rows * drawing).sum(), (columns * drawing).sum()]) / mass
    dx, dy = columns - centre[1], rows - centre[0]
    covariance = np.array([[(dx * dx * drawing).sum(), (dx * dy * drawing).sum()],
                           [(dx * dy * drawing).sum(), (dy * dy * drawing).sum()]]) / mass
    return centre, covariance


def orientation(drawing):
    """Angle in degrees of the ink's principal axis, counter-clockwise as seen (y points down)."""
    _, ((xx, xy), (_, yy)) = moments(drawing)
    return np.degrees(0.5 * np.arctan2(-2 * xy, xx - yy))


def stroke_width(drawing):
    """Mean stroke width in pixels, up to a constant: 4 times the ink's mean distance to the background
    (across a straight stroke of width w the distance rises from 0 to w / 2 and back: its mean is w / 4)."""
    ink = (drawing > 0.5).astype(np.uint8)
    return 4 * cv2.distanceTransform(ink, cv2.DIST_L2, 5)[ink > 0].mean()


def test_set_shapes_groups_and_labels(digits):
    images, labels = digits
    robust = drawings.robustness_set(images, labels, seed=0)
    assert robust["x"].shape == (60, 1, 28, 28) and robust["x"].dtype == np.float32
    assert 0 <= robust["x"].min() and robust["x"].max() <= 1
    np.testing.assert_array_equal(robust["y"], labels)
    assert sorted(set(robust["group"])) == sorted(drawings.ROBUSTNESS_GROUPS)
    assert all((robust["group"] == group).sum() == 10 for group in drawings.ROBUSTNESS_GROUPS)  # 60 / 6 each
    placed = robust["group"] == "placed"
    assert (robust["angle"][placed] == 0).all() and (robust["shear"][placed] == 0).all()
    assert (robust["stroke_radius"][placed] == 0).all()
    assert (np.abs(robust["angle"][robust["group"] == "rotated"]) >= 10).all()
    assert (np.abs(robust["shear"][robust["group"] == "slanted"]) >= 0.15).all()
    assert (robust["stroke_radius"][robust["group"] == "thinner"] < 0).all()
    assert (robust["stroke_radius"][robust["group"] == "thicker"] > 0).all()
    assert (28 <= robust["height"]).all() and (robust["height"] <= 100).all()


def test_each_image_is_its_drawing_through_preprocess_drawing(digits):
    images, labels = digits
    robust = drawings.robustness_set(images, labels, seed=3)
    for index in (0, 17, 59):
        arguments = {key: robust[key][index] for key in ("height", "top", "left", "angle", "shear", "stroke_radius")}
        drawing = drawings.draw_digit(images[index], **arguments)
        assert drawing.shape == (112, 112)
        np.testing.assert_array_equal(robust["x"][index, 0], drawings.preprocess_drawing(drawing)[0])


def test_same_seed_same_set_other_seed_other_set(digits):
    images, labels = digits
    first, again, other = (drawings.robustness_set(images[:12], labels[:12], seed=seed) for seed in (5, 5, 6))
    for key in first:
        np.testing.assert_array_equal(first[key], again[key])
    assert not np.array_equal(first["x"], other["x"]) and not np.array_equal(first["group"], other["group"])


def test_placement_and_size_are_as_asked(digits):
    images, _ = digits
    for height, top, left in ((40, 0.0, 1.0), (90, 1.0, 0.0), (28, 0.3, 0.7)):
        drawing = drawings.draw_digit(images[0], height, top, left)
        box_top, box_left, box_height, box_width = drawings.ink_bounding_box(drawing)
        assert box_height == height
        assert box_top == round(top * (112 - height)) and box_left == round(left * (112 - box_width))


@pytest.mark.parametrize("angle", [-25, -12, 18, 25])
def test_rotation_turns_the_ink_by_the_angle(digits, angle):
    """The ink's principal axis turns by the asked angle, for digits clearly longer than wide."""
    images, _ = digits
    turned = []
    for image in images[:30]:
        upright = drawings.draw_digit(image, 70)
        _, covariance = moments(upright)
        eigenvalues = np.linalg.eigvalsh(covariance)
        if eigenvalues[1] > 2 * eigenvalues[0]:  # a clear axis to measure
            change = orientation(drawings.draw_digit(image, 70, angle=angle)) - orientation(upright)
            turned.append((change + 90) % 180 - 90)  # an axis has no direction: angles modulo 180
    assert len(turned) >= 10
    np.testing.assert_allclose(turned, angle, atol=2.0)


@pytest.mark.parametrize("shear", [-0.4, 0.15, 0.3])
def test_slant_shears_the_ink_by_the_factor(digits, shear):
    """x -= shear * (y - y_centre) changes cov(x, y) by -shear * var(y), which is measured back."""
    images, _ = digits
    for image in images[:10]:
        _, before = moments(drawings.draw_digit(image, 70))
        _, after = moments(drawings.draw_digit(image, 70, shear=shear))
        measured = -(after[0, 1] - before[0, 1]) / before[1, 1]
        assert measured == pytest.approx(shear, abs=0.02)
        assert after[1, 1] == pytest.approx(before[1, 1], rel=0.02)  # heights are not changed by a slant


@pytest.mark.parametrize("radius", [-2, -1, 1, 3])
def test_pen_width_changes_by_twice_the_radius(digits, radius):
    """Erosion and dilation by a disc of radius r: the strokes lose or gain about r pixels each side
    (a little less, measured: curves and crossings are not straight strokes)."""
    images, _ = digits
    changes = [stroke_width(drawings.draw_digit(image, 90, stroke_radius=radius))
               - stroke_width(drawings.draw_digit(image, 90)) for image in images[:20]]
    assert np.median(changes) == pytest.approx(2 * radius, rel=0.25)


def test_accuracy_by_group():
    robust = {"y": np.array([1, 2, 3, 4]), "group": np.array(["placed", "placed", "rotated", "thicker"])}
    accuracy = drawings.robustness_accuracy(np.array([1, 0, 3, 0]), robust)
    assert accuracy["overall"] == 0.5 and accuracy["placed"] == 0.5 and accuracy["rotated"] == 1.0
    assert accuracy["thicker"] == 0.0 and "slanted" not in accuracy  # no image in that group


def test_mismatched_labels_are_refused(digits):
    images, labels = digits
    with pytest.raises(ValueError, match="one label per image"):
        drawings.robustness_set(images[:5], labels[:4])
