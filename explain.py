"""Why did the network say that? Saliency and Grad-CAM: the computations that explain one prediction.

Both start from the gradient of one class's score (its logit, before softmax), which
frameworks.class_score_gradients computes for a model of any framework. Saliency (Simonyan et al.
2014) asks which pixels change the score most; Grad-CAM (Selvaraju et al. 2017) asks which regions
of a conv layer's maps raise it. A check of either map follows: how much of its mass falls on the
digit itself. NumPy and OpenCV only (cv2 is imported when a map is resized or dilated); no
framework, no figure. visualize_features.py draws these maps (figure 7) and explorer.py sends
Grad-CAM to the page.

In a REPL:
    >>> import numpy as np, explain, frameworks
    >>> from cnn_from_scratch import make_simple_cnn
    >>> model = make_simple_cnn(rng=np.random.default_rng(0))
    >>> x = np.random.default_rng(0).random((2, 1, 28, 28), dtype=np.float32)
    >>> gradients = frameworks.class_score_gradients(model, x, [3, 7], frameworks.default_gradcam_layer(model))
    >>> explain.saliency_map(gradients["input_grad"]).shape                                       # (2, 28, 28)
    >>> explain.grad_cam(gradients["activation"], gradients["activation_grad"], (28, 28)).shape  # (2, 28, 28)
"""
import numpy as np


# --- Saliency and Grad-CAM ---

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


# --- Is the explanation on the digit? ---

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
