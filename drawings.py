"""A drawing made into an MNIST digit, and MNIST's digits drawn the way people draw: the explorer's input.

MNIST's digits were not drawn on a square pad: they were cropped to their ink, scaled into a 20x20
box and centred by their centre of mass in a 28x28 image. A drawing from the explorer's page
(explorer.py) goes through the same steps before the network sees it. The story, top to bottom:
that preprocessing (ink_bounding_box, scale_into_box, center_of_mass, preprocess_drawing), then a
robustness set: MNIST's test (or validation) digits redrawn on the pad off-centre, at their own
size, tilted, slanted, thinner or thicker (draw_digit), each through preprocess_drawing, and the
accuracy of a model on it by group. NumPy and OpenCV only (cv2 is imported when a drawing is
resized); no framework, no figure, no server.

Then the augmentation that trains the explorer's model on MNIST drawn the way people draw
(random_affine, random_stroke_width, drawing_augmentation), and the command that trains it.

Run it:
    python drawings.py --epochs 8 --seed 0 --save models/simple_cnn.npz   # the shipped model (models/README.md)
    python drawings.py --quick                          # seconds: 1 epoch on a slice
    python benchmarks/explorer_robustness.py            # the shipped model on every test digit redrawn
In a REPL:
    >>> import drawings
    >>> image, steps = drawings.preprocess_drawing(drawing)   # drawing of shape (112, 112) in [0, 1]
    >>> robust = drawings.robustness_set(images, labels, seed=0)  # images of shape (N, 28, 28)
    >>> drawings.robustness_accuracy(predicted, robust)       # {"overall": ..., "placed": ..., ...}
"""
import numpy as np

from interface import random_shift

DRAWING_SIZE = 112       # the page sends its drawing as 112x112 grey levels (4 x 28)
IMAGE_SIZE = 28          # MNIST images are 28x28 ...
BOX_SIZE = 20            # ... with the digit scaled to fit a 20x20 box ...
CENTER = (14.0, 14.0)    # ... and its centre of mass at row 14, column 14 (the test set's mean: 13.99, 14.01)


# --- MNIST preprocessing ---
# LeCun's MNIST page: the NIST digits "were size normalized to fit in a 20x20 pixel box while
# preserving their aspect ratio" (with anti-aliasing, hence the grey levels), then "centered in a
# 28x28 image by computing the center of mass of the pixels, and translating the image so as to
# position this point at the center of the 28x28 field". A drawing goes through the same steps.

def ink_bounding_box(drawing):
    """(top, left, height, width) of the smallest box holding every pixel with ink (value > 0)."""
    rows = np.flatnonzero(drawing.max(axis=1) > 0)
    columns = np.flatnonzero(drawing.max(axis=0) > 0)
    if len(rows) == 0:
        raise ValueError("the drawing is empty: no pixel has ink (every value is 0)")
    return int(rows[0]), int(columns[0]), int(rows[-1] - rows[0] + 1), int(columns[-1] - columns[0] + 1)


def scale_into_box(patch, box_size=BOX_SIZE):
    """Resize a (h, w) patch so that its longer side is box_size, keeping the aspect ratio.

    Shrinking averages the covered pixels (cv2.INTER_AREA), the anti-aliasing that gives MNIST its
    grey edges; a small patch is enlarged bilinearly. Returns an array of shape (h_out, w_out),
    h_out = max(1, round(h * box_size / max(h, w))), and the same for w_out.
    """
    import cv2
    height, width = patch.shape
    scale = box_size / max(height, width)
    out_height, out_width = max(1, round(height * scale)), max(1, round(width * scale))
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    # cv2 takes the size as (width, height)
    scaled = cv2.resize(patch.astype(np.float32), (out_width, out_height), interpolation=interpolation)
    return np.clip(scaled.reshape(out_height, out_width), 0.0, 1.0)  # cv2 drops a size-1 axis; put it back


def center_of_mass(image):
    """(row, column) of the intensity-weighted mean pixel position of a 2-D image."""
    total = image.sum()
    rows, columns = np.indices(image.shape)  # (2, H, W)
    return float((rows * image).sum() / total), float((columns * image).sum() / total)


def preprocess_drawing(drawing):
    """MNIST's preprocessing of one drawing: crop to the ink, scale into 20x20, centre by mass in 28x28.

    Inputs: drawing of shape (S, S), values in [0, 1], 0 = background, 1 = ink
    Returns: (image of shape (28, 28) float32, steps) where steps says what each step did:
      "box" (top, left, height, width of the ink in the drawing), "scaled" (the (h, w) patch, longer
      side 20), "offset" (row, column of its top-left corner in the 28x28 image) and "center_of_mass".
    The patch moves by whole pixels, so the centre of mass lands within half a pixel of (14, 14), as
    in MNIST's test set (spread 0.29 pixel); a patch whose mass sits far off its middle is stopped
    at the image's edge instead.
    """
    top, left, height, width = ink_bounding_box(drawing)
    scaled = scale_into_box(drawing[top:top + height, left:left + width])  # (h, w), max(h, w) = 20
    mass_row, mass_column = center_of_mass(scaled)
    offset_row = int(np.clip(round(CENTER[0] - mass_row), 0, IMAGE_SIZE - scaled.shape[0]))
    offset_column = int(np.clip(round(CENTER[1] - mass_column), 0, IMAGE_SIZE - scaled.shape[1]))
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    image[offset_row:offset_row + scaled.shape[0], offset_column:offset_column + scaled.shape[1]] = scaled
    steps = {"box": (top, left, height, width), "scaled": scaled, "offset": (offset_row, offset_column),
             "center_of_mass": center_of_mass(image)}
    return image, steps


# --- A robustness set: MNIST's digits drawn the way people draw on a pad ---
# A drawing on the pad is not an MNIST digit: it sits anywhere, at any size, tilted, slanted, drawn
# with a thinner or thicker pen. draw_digit redraws one MNIST digit that way into a 112x112
# drawing, and robustness_set sends every redrawn digit through preprocess_drawing, exactly as the
# page's drawings go. Report on the test images; make choices (augmentation, epochs) on a set
# built from the validation split.

ROBUSTNESS_GROUPS = ("placed", "rotated", "slanted", "thinner", "thicker", "combined")


def ink_of(image):
    """The smallest patch of a 2-D image that holds all its ink (values > 0)."""
    top, left, height, width = ink_bounding_box(image)
    return image[top:top + height, left:left + width]


def draw_digit(image, height, top=0.5, left=0.5, angle=0.0, shear=0.0, stroke_radius=0, size=DRAWING_SIZE):
    """One MNIST digit drawn on the pad: enlarged, tilted, slanted, pen made thinner or thicker, placed.

    Inputs:
    - image of shape (28, 28) in [0, 1]; height: the digit's height in drawing pixels (before tilting)
    - top, left in [0, 1]: where the digit's box sits in the free room (0: at the top or left edge)
    - angle: degrees, counter-clockwise; shear: the slant, x -= shear * (y - y_centre) (0.3 leans right)
    - stroke_radius: pixels of the drawing taken off (< 0, grey erosion) or added to (> 0, grey dilation)
      each side of every stroke, with a disc of that radius
    Returns: drawing of shape (size, size), float32 in [0, 1] rounded to 3 decimals as the page sends it.
    """
    import cv2
    ink = ink_of(image)  # (h0, w0)
    width = max(1, round(ink.shape[1] * height / ink.shape[0]))
    interpolation = cv2.INTER_LINEAR if height > ink.shape[0] else cv2.INTER_AREA  # as scale_into_box
    digit = cv2.resize(ink, (width, height), interpolation=interpolation)  # (height, width)
    # A square canvas with room for any tilt and slant, the digit in its middle.
    side = int(np.ceil(np.hypot(height, width) * (1 + abs(shear)))) + 2 * abs(stroke_radius) + 4
    canvas = np.zeros((side, side), dtype=np.float32)
    row, column = (side - height) // 2, (side - width) // 2
    canvas[row:row + height, column:column + width] = digit
    centre = ((side - 1) / 2, (side - 1) / 2)
    rotation = np.vstack([cv2.getRotationMatrix2D(centre, angle, 1.0), [0, 0, 1]])  # (3, 3), about the centre
    slant = np.array([[1, -shear, shear * centre[1]], [0, 1, 0], [0, 0, 1]])  # x' = x - shear * (y - y_centre)
    canvas = cv2.warpAffine(canvas, (rotation @ slant)[:2], (side, side), flags=cv2.INTER_LINEAR)
    if stroke_radius:
        pen = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * abs(stroke_radius) + 1,) * 2)
        canvas = (cv2.dilate if stroke_radius > 0 else cv2.erode)(canvas, pen)
    drawn = np.clip(ink_of(np.round(canvas, 3)), 0, 1)  # round first: a fringe of 0.0001 is no ink on the page
    if max(drawn.shape) > size:  # tilted past the drawing's edges: shrink it to fit
        drawn = np.clip(scale_into_box(drawn, size), 0, 1)
    drawing = np.zeros((size, size), dtype=np.float32)
    row, column = round(top * (size - drawn.shape[0])), round(left * (size - drawn.shape[1]))
    drawing[row:row + drawn.shape[0], column:column + drawn.shape[1]] = drawn
    return np.round(drawing, 3)


def robustness_parameters(num_images, seed=0):
    """How each digit of a robustness set is drawn: one group of ROBUSTNESS_GROUPS per digit, in turn
    over a seeded shuffle, and that group's random parameters.

    Every digit is placed anywhere at a height of 28 to 100 of the 112 pixels; then "placed" does
    nothing more, "rotated" tilts by 10 to 25 degrees either way, "slanted" shears by 0.15 to 0.4
    either way, "thinner" erodes every stroke by about half an MNIST pixel each side, "thicker"
    dilates it by a half to one and a quarter, and "combined" draws a tilt, a slant and a pen of all
    those ranges at once (each possibly near zero).
    Returns: dict of arrays of shape (num_images,): "group" (str), "height", "top", "left", "angle",
    "shear", "stroke_radius" (drawing pixels, < 0 thinner); the arguments of draw_digit.
    """
    rng = np.random.default_rng(seed)
    n = num_images
    group = np.array(ROBUSTNESS_GROUPS)[rng.permutation(n) % len(ROBUSTNESS_GROUPS)]
    height = rng.integers(28, 101, size=n)
    pixels = height / 20  # drawing pixels per MNIST pixel: the digit's height becomes 20 in preprocessing
    sign = lambda: rng.choice([-1.0, 1.0], size=n)  # noqa: E731
    angle = np.select([group == "rotated", group == "combined"], [sign() * rng.uniform(10, 25, n),
                                                                  rng.uniform(-25, 25, n)], 0.0)
    shear = np.select([group == "slanted", group == "combined"], [sign() * rng.uniform(0.15, 0.4, n),
                                                                  rng.uniform(-0.4, 0.4, n)], 0.0)
    stroke = np.select([group == "thinner", group == "thicker", group == "combined"],
                       [np.full(n, -0.5), rng.uniform(0.5, 1.25, n), rng.uniform(-0.5, 1.25, n)], 0.0)  # MNIST pixels
    return {"group": group, "height": height, "top": rng.uniform(0, 1, n), "left": rng.uniform(0, 1, n),
            "angle": angle, "shear": shear, "stroke_radius": np.round(stroke * pixels).astype(int)}


def robustness_set(images, labels, seed=0):
    """Digits drawn the way people draw on the pad (draw_digit), each through preprocess_drawing.

    Inputs: images of shape (N, 28, 28) or (N, 1, 28, 28) in [0, 1] (MNIST's test images to report,
    its validation images to choose by); labels of shape (N,); seed: the same seed gives the same set
    Returns: dict with "x" of shape (N, 1, 28, 28) float32 (what the network sees), "y" (the labels),
    and every array of robustness_parameters: "group" says which transformation each digit got.
    """
    images = np.asarray(images).reshape(len(images), IMAGE_SIZE, IMAGE_SIZE)  # (N, 1, 28, 28) -> (N, 28, 28)
    if len(labels) != len(images):
        raise ValueError(f"expected one label per image, got {len(labels)} labels for {len(images)} images")
    parameters = robustness_parameters(len(images), seed)
    x = np.empty((len(images), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for index, image in enumerate(images):
        drawing = draw_digit(image, **{key: parameters[key][index] for key in parameters if key != "group"})
        x[index, 0] = preprocess_drawing(drawing)[0]
    return {"x": x, "y": np.asarray(labels), **parameters}


def robustness_accuracy(predicted, robust):
    """{"overall": accuracy, group: accuracy, ...} of predicted classes of shape (N,) on a robustness_set
    (groups with no image left out)."""
    correct = np.asarray(predicted) == robust["y"]
    return {"overall": float(correct.mean()), **{group: float(correct[robust["group"] == group].mean())
                                                 for group in ROBUSTNESS_GROUPS if (robust["group"] == group).any()}}


# --- MNIST drawn the way people draw: the explorer model's augmentation ---
# Training on these teaches the network the drawings it will meet on the pad (models/README.md).

def random_affine(x, rng, degrees=10.0, translate=0.1, zoom=0.1, shear=0.0):
    """Rotate, shift, zoom and slant each image by its own random amount about the image's centre,
    reading between pixels bilinearly and filling with zeros; the NumPy twin of cnn_pytorch's
    random_affine (same arguments and defaults), plus a slant: people's digits lean more than MNIST's.

    Inputs: x of shape (N, C, H, W); rng: np.random.Generator; the largest changes, each drawn
    uniformly from [-largest, largest]: degrees of rotation (counter-clockwise as seen), translate
    (a fraction of the width and height), zoom (a fraction of the size) and shear (x -= shear *
    (y - y_centre): 0.4 leans right)
    Returns: array of shape (N, C, H, W), the same dtype
    """
    N, C, H, W = x.shape
    angle = np.radians(rng.uniform(-degrees, degrees, N))  # (N,)
    slant, scale = rng.uniform(-shear, shear, N), 1 + rng.uniform(-zoom, zoom, N)
    largest_shift = translate * np.array([W, H])  # pixels
    shift = rng.uniform(-largest_shift, largest_shift, (N, 2))  # (N, 2): (x, y) in pixels
    # The forward map of a point p = (x, y) (y points down): p' = centre + A (p - centre) + shift, with
    # A = scale * rotation @ slant. Each output pixel reads the input at p = centre + A^-1 (p' - centre - shift).
    cos, sin = np.cos(angle), np.sin(angle)
    A = scale[:, None, None] * np.stack([np.stack([cos, sin], 1), np.stack([-sin, cos], 1)], 1)  # (N, 2, 2)
    A = A @ np.stack([np.stack([np.ones(N), -slant], 1), np.stack([np.zeros(N), np.ones(N)], 1)], 1)
    centre = np.array([(W - 1) / 2, (H - 1) / 2])
    rows, columns = np.mgrid[0:H, 0:W]  # (H, W) each
    grid = np.stack([columns, rows], -1).reshape(1, H * W, 2) - centre - shift[:, None]  # (N, H * W, 2)
    source = grid @ np.linalg.inv(A).transpose(0, 2, 1) + centre  # (N, H * W, 2): (x, y) to read
    # Bilinear reading from the image padded by one zero pixel: any read outside lands on the padding.
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1))).transpose(0, 2, 3, 1)  # (N, H + 2, W + 2, C)
    low = np.floor(source)
    fraction = (source - low).astype(x.dtype)[..., None]  # (N, H * W, 2, 1)
    image = np.arange(N)[:, None]  # (N, 1)
    out = 0
    for dy in (0, 1):
        for dx in (0, 1):
            column = np.clip(low[..., 0] + dx, -1, W).astype(int) + 1  # (N, H * W), -1 and W: padding
            row = np.clip(low[..., 1] + dy, -1, H).astype(int) + 1
            weight_x = fraction[:, :, 0] if dx else 1 - fraction[:, :, 0]  # (N, H * W, 1)
            weight_y = fraction[:, :, 1] if dy else 1 - fraction[:, :, 1]
            weight = weight_x * weight_y
            out = out + weight * padded[image, row, column]  # (N, H * W, C)
    return np.ascontiguousarray(out.reshape(N, H, W, C).transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)


def random_stroke_width(x, rng, thinner=0.5, thicker=1.25):
    """Make each image's strokes thinner or thicker by its own random amount, as other pens draw.

    A grey dilation (each pixel the maximum of itself and its 4 neighbours) widens every stroke by
    one pixel each side, an erosion (the minimum) narrows it; an amount r drawn uniformly from
    [-thinner, thicker] pixels each side applies floor(|r|) of them and blends in the last fraction.
    Inputs: x of shape (N, C, H, W); rng: np.random.Generator; thinner, thicker: pixels each side, >= 0
    Returns: array of shape (N, C, H, W), the same dtype
    """
    amount = rng.uniform(-thinner, thicker, (len(x), 1, 1, 1)).astype(x.dtype)  # (N, 1, 1, 1)
    out, wider, narrower = x.copy(), x, x
    for step in range(int(np.ceil(max(thinner, thicker)))):
        grown, shrunk = _neighbourhood(wider, np.maximum), _neighbourhood(narrower, np.minimum)
        out += np.clip(amount - step, 0, 1) * (grown - wider) + np.clip(-amount - step, 0, 1) * (shrunk - narrower)
        wider, narrower = grown, shrunk
    return out


def _neighbourhood(x, combine):
    """combine (np.maximum or np.minimum) of each pixel and its 4 neighbours; outside the image is 0."""
    padded = np.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1)))  # (N, C, H + 2, W + 2)
    H, W = x.shape[2:]
    out = x
    for dy, dx in ((0, 1), (2, 1), (1, 0), (1, 2)):  # up, down, left, right
        out = combine(out, padded[:, :, dy:dy + H, dx:dx + W])
    return out


def drawing_augmentation(x, rng, fraction=0.5):
    """The augmentation of the explorer's shipped model (models/README.md): a random `fraction` of the
    images get random_affine's tilts of up to 25 degrees, shifts of 2 pixels, zooms of 10% and slants
    up to 0.4, then random_stroke_width; the others are shifted by up to 2 pixels (random_shift).

    Inputs: x of shape (N, C, H, W); rng: np.random.Generator; fraction in [0, 1]
    Returns: array of shape (N, C, H, W)
    """
    chosen = rng.random(len(x)) < fraction  # (N,)
    out = random_shift(x, 2, rng)
    H, W = x.shape[2:]
    tilted = random_affine(x[chosen], rng, degrees=25.0, translate=2 / W, zoom=0.1, shear=0.4)  # 2 / 28: 2 pixels
    out[chosen] = random_stroke_width(tilted, rng)
    return out

# --- Script: train the explorer's model ---

def main():
    from cnn_from_scratch import evaluate, fit, make_simple_cnn, save  # the lab imports the lesson, not the reverse
    from data import QUICK_TEST, QUICK_TRAIN, QUICK_VAL, load_mnist, training_parser

    parser = training_parser("Train the explorer's model: the NumPy SimpleCNN with drawing_augmentation.", epochs=8,
                             batch_size=64, learning_rate=2e-3,
                             quick_help=f"{QUICK_TRAIN:,} training and {QUICK_TEST:,} test images, 1 epoch")
    parser.add_argument("--save", default=None, help="write the trained model to this .npz file")
    args = parser.parse_args()
    data, epochs = load_mnist(seed=args.seed), args.epochs
    if args.quick:
        data, epochs = data.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST), 1
    model = make_simple_cnn(rng=np.random.default_rng(args.seed))
    fit(model, data.x_train, data.y_train, data.x_val, data.y_val, epochs=epochs, batch_size=args.batch_size,
        learning_rate=args.learning_rate, seed=args.seed, augment=True, restore_best=False,
        augmentation=drawing_augmentation)
    test_loss, test_accuracy = evaluate(model, data.x_test, data.y_test)
    print(f"test accuracy {test_accuracy:.2%} (loss {test_loss:.4f}) after {epochs} epoch(s)")
    if args.save:
        save(model, args.save)
        print(f"saved to {args.save}")


if __name__ == "__main__":
    main()
