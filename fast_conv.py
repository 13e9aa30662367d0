"""Convolution and pooling, vectorized: the functions of cnn_from_scratch.py without a Python loop over
positions, with the same signatures and results (the tests compare them). Read the loop versions there first.

Convolution becomes one matrix product (im2col, then w @ cols); pooling loops over the few positions
inside a window instead of over the many windows. NumPy only.

In a REPL:
    >>> import numpy as np
    >>> from fast_conv import im2col
    >>> im2col(np.arange(9.0).reshape(1, 1, 3, 3), 2, 2, stride=(1, 1), padding=(0, 0)).shape
    (4, 4)
"""
import numpy as np

from interface import check_pair, conv_output_size, pool_geometry


# --- Convolution ---

# Memory layout, the one performance idea in this module. The arrays keep the NCHW *shape* everywhere,
# but the vectorized layers store their outputs with the batch axis N innermost in memory, as
# (C, H, W, N) ("CHWN", the layout of cuda-convnet), and hand them on as the transposed view
# out.transpose(3, 0, 1, 2) of shape (N, C, H, W). The views cost nothing, and every shift of a window
# by (u, v) then moves whole runs of W_out * N contiguous numbers instead of rows of W_out numbers, so
# NumPy's loops are long and its per-row overhead disappears. Element-wise NumPy functions keep the
# layout they are given, so ReLU and friends pass it along for free.

def to_chwn(x):
    """(N, C, H, W) -> (C, H, W, N): a free view when x came from a vectorized layer, else one copy."""
    return x.transpose(1, 2, 3, 0)


def im2col(x, HH, WW, stride, padding):
    """Copy every (HH, WW) window of x into a column, so convolution becomes one matrix product.

    Inputs: x of shape (N, C, H, W); stride and padding as (height, width) pairs
    Returns: cols of shape (C * HH * WW, H_out * W_out * N): row (c, u, v), column (i, j, n) holds
      x_pad[n, c, i * sh + u, j * sw + v]. One slice copy per kernel offset (u, v), no loop over pixels.
    """
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x.shape
    H_out, W_out = conv_output_size(H, HH, sh, ph), conv_output_size(W, WW, sw, pw)
    if ph or pw:
        x_pad = np.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=x.dtype)
        x_pad[:, ph:ph + H, pw:pw + W, :] = to_chwn(x)  # (C, H, W, N)
    else:
        x_pad = to_chwn(x)
    cols = np.empty((C, HH, WW, H_out, W_out, N), dtype=x.dtype)
    for u in range(HH):
        for v in range(WW):
            cols[:, u, v] = x_pad[:, u:u + sh * H_out:sh, v:v + sw * W_out:sw, :]  # (C, H_out, W_out, N)
    return cols.reshape(C * HH * WW, H_out * W_out * N)


def col2im(dcols, x_shape, HH, WW, stride, padding):
    """Inverse bookkeeping of im2col: add each column's gradient back to the pixels it was copied from.

    Inputs: dcols of shape (C * HH * WW, H_out * W_out * N); x_shape = (N, C, H, W)
    Returns: dx of shape (N, C, H, W). Overlapping windows add up, which is why this is += and not =.
    """
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = x_shape
    H_out, W_out = conv_output_size(H, HH, sh, ph), conv_output_size(W, WW, sw, pw)
    dcols = dcols.reshape(C, HH, WW, H_out, W_out, N)
    dx_pad = np.zeros((C, H + 2 * ph, W + 2 * pw, N), dtype=dcols.dtype)
    for u in range(HH):
        for v in range(WW):
            dx_pad[:, u:u + sh * H_out:sh, v:v + sw * W_out:sw, :] += dcols[:, u, v]  # (C, H_out, W_out, N)
    return dx_pad[:, ph:ph + H, pw:pw + W, :].transpose(3, 0, 1, 2)  # (C, H, W, N) -> (N, C, H, W) view


def conv2d_forward(x, w, b, stride=1, padding=0):
    """Vectorized convolution, im2col then one matrix product: conv2d_forward_naive's signature and result.

    Inputs: x of shape (N, C, H, W); w of shape (F, C, HH, WW); b of shape (F,); stride, padding: int or pair
    Returns: out of shape (N, F, H_out, W_out), with H_out = 1 + (H + 2 * padding - HH) // stride; cache
    """
    stride, padding = check_pair(stride, "stride"), check_pair(padding, "padding", minimum=0)
    N, C, H, W = x.shape
    F, _, HH, WW = w.shape
    if w.shape[1] != C or b.shape != (F,):
        raise ValueError(f"x of shape {x.shape} needs w of shape (F, {C}, HH, WW) and b of shape (F,), "
                         f"got w {w.shape} and b {b.shape}")
    cols = im2col(x, HH, WW, stride, padding)  # (C * HH * WW, H_out * W_out * N)
    H_out, W_out = conv_output_size(H, HH, stride[0], padding[0]), conv_output_size(W, WW, stride[1], padding[1])
    out = w.reshape(F, -1) @ cols  # (F, C * HH * WW) x (C * HH * WW, H_out * W_out * N) -> (F, H_out * W_out * N)
    out += b[:, None]
    out = out.reshape(F, H_out, W_out, N).transpose(3, 0, 1, 2)  # -> (N, F, H_out, W_out) view
    return out, (x.shape, cols, w, stride, padding)


def conv2d_backward(dout, cache, compute_dx=True):
    """Backward pass of conv2d_forward: two matrix products for dw and dx, a sum for db, and a col2im.

    Inputs: dout of shape (N, F, H_out, W_out); cache from conv2d_forward
    Returns: dx of shape (N, C, H, W) (None when compute_dx is False), dw of shape (F, C, HH, WW), db of shape (F,)
    """
    x_shape, cols, w, stride, padding = cache
    F, _, HH, WW = w.shape
    dout_rows = to_chwn(dout).reshape(F, -1)  # (N, F, H_out, W_out) -> (F, H_out * W_out * N)
    db = dout_rows @ np.ones(dout_rows.shape[1], dout_rows.dtype)  # the sum over positions and images
    dw = (dout_rows @ cols.T).reshape(w.shape)  # (F, H_out * W_out * N) x (H_out * W_out * N, C * HH * WW)
    if not compute_dx:
        return None, dw, db
    dcols = w.reshape(F, -1).T @ dout_rows  # (C * HH * WW, F) x (F, H_out * W_out * N)
    return col2im(dcols, x_shape, HH, WW, stride, padding), dw, db


# --- Pooling ---

def window_offsets(kernel, stride, output_size):
    """For each kernel offset (u, v), in row-major order, the index that picks x[n, c, i * sh + u, j * sw + v]
    for every output (i, j)."""
    (kh, kw), (sh, sw), (H_out, W_out) = kernel, stride, output_size
    for u in range(kh):
        for v in range(kw):
            yield (slice(None), slice(None), slice(u, u + sh * H_out, sh), slice(v, v + sw * W_out, sw))


def pool2d_forward(x, kernel_size=2, stride=None, mode="max"):
    """Vectorized pooling, one strided slice per kernel offset (u, v): pool2d_forward_naive's signature and result.

    Instead of looping over the N * C * H_out * W_out windows, loop over the kh * kw positions inside
    a window: x[:, :, u::sh, v::sw] (cut to H_out x W_out) holds element (u, v) of every window at once.
    Inputs: x of shape (N, C, H, W); kernel_size, stride: int or (height, width) pair; mode "max" or "avg"
    Returns: out of shape (N, C, H_out, W_out) with H_out = 1 + (H - kernel) // stride; cache
    """
    if mode not in ("max", "avg"):
        raise ValueError(f"mode must be 'max' or 'avg', got {mode!r}")
    kernel, stride, H_out, W_out = pool_geometry(x.shape, kernel_size, stride)
    slices = list(window_offsets(kernel, stride, (H_out, W_out)))
    out = x[slices[0]].copy(order="K")  # (N, C, H_out, W_out): element (0, 0) of every window, in x's layout
    if mode == "avg":
        for window_slice in slices[1:]:
            out += x[window_slice]
        return out / out.dtype.type(len(slices)), (x.shape, None, kernel, stride, mode)
    # argmax[n, c, i, j] = k when the window's first maximum is its k-th element (row-major, k = u * kw + v).
    # Offsets come in increasing k, so "max(argmax, k if strictly better else 0)" keeps the latest strict
    # improvement, and a tie keeps the earlier, first maximum, as PyTorch does.
    argmax = np.zeros_like(out, dtype=np.uint8 if len(slices) < 256 else np.intp)
    for k, window_slice in enumerate(slices[1:], start=1):
        candidate = x[window_slice]
        np.maximum(argmax, (candidate > out) * argmax.dtype.type(k), out=argmax)
        np.maximum(out, candidate, out=out)
    return out, (x.shape, argmax, kernel, stride, mode)


def pool2d_backward(dout, cache):
    """Backward pass of pool2d_forward, one strided += per kernel offset (u, v).

    Max pooling: offset k of each window gets dout where it was the window's (first) maximum, 0 elsewhere.
    Average pooling: every offset gets dout / (kh * kw). Overlapping windows add up.
    Inputs: dout of shape (N, C, H_out, W_out); cache. Returns: dx of shape (N, C, H, W)
    """
    x_shape, argmax, kernel, stride, mode = cache
    N, C, H, W = x_shape
    H_out, W_out = dout.shape[2:]
    overlapping = stride[0] < kernel[0] or stride[1] < kernel[1]
    # Windows that tile x exactly (stride = kernel, no rows or columns left over) write every pixel once,
    # so dx needs no zeros first.
    tiled = stride == kernel and (H, W) == (H_out * kernel[0], W_out * kernel[1])
    dx = (np.empty if tiled else np.zeros)((C, H, W, N), dtype=dout.dtype).transpose(3, 0, 1, 2)  # CHWN memory
    average = dout / dout.dtype.type(kernel[0] * kernel[1]) if mode == "avg" else None
    for k, window_slice in enumerate(window_offsets(kernel, stride, (H_out, W_out))):
        if overlapping:
            dx[window_slice] += dout * (argmax == k) if mode == "max" else average
        elif mode == "max":  # each pixel is in at most one window: write its share straight into dx
            np.multiply(dout, argmax == k, out=dx[window_slice])
        else:
            dx[window_slice] = average
    return dx
