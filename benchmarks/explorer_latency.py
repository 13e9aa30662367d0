"""How fast does the explorer answer? Latency of POST /api/predict through real HTTP.

Starts `python explorer.py` in its own process (so client and server do not share a GIL), sends
one realistic drawing (a real MNIST test digit enlarged to the page's 112x112 drawing, with 3
decimals as the page sends it) over one keep-alive connection, and times each answer: MNIST
preprocessing, one prediction, every layer's feature maps and Grad-CAM of all ten classes, JSON
encoding and transfer. It prints the median and the 95th percentile; the goal is at most 50 ms
on the project's 2-core machine. Nothing here asserts.

    python benchmarks/explorer_latency.py                      # 200 requests, the shipped NumPy model
    python benchmarks/explorer_latency.py --quick              # 20 requests
    python benchmarks/explorer_latency.py --model my_cnn.pt    # any model explorer.py loads
    python benchmarks/explorer_latency.py --dtype int8         # maps and Grad-CAM as 8-bit levels, as the page asks
It also prints the size in bytes of one answer, which --dtype int8 makes about a quarter.
"""
import argparse
import http.client
import json
import os
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import drawings  # noqa: E402
import explorer  # noqa: E402
from data import load_mnist  # noqa: E402


def realistic_drawing(image, size=drawings.DRAWING_SIZE):
    """A 28x28 MNIST digit enlarged to (size, size) and rounded to 3 decimals, as the page would send it."""
    import cv2
    drawing = cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR)  # (28, 28) -> (112, 112)
    return np.round(np.clip(drawing, 0, 1), 3)


def start_explorer(model_path):
    """Run explorer.py on a free port; returns (process, host, port) once it prints its address."""
    command = [sys.executable, os.path.join(ROOT, "explorer.py"), "--port", "0", "--model", model_path]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        print(f"  server: {line.rstrip()}")
        if "CNN explorer at http://" in line:
            address = line.split("http://")[1].split("/")[0]
            host, port = address.rsplit(":", 1)
            return process, host, int(port)
    raise RuntimeError(f"explorer.py exited with code {process.wait()} before printing its address")


def time_requests(host, port, body, count, warmup=10):
    """Seconds per POST /api/predict over one keep-alive connection, and the server's own compute times."""
    connection = http.client.HTTPConnection(host, port, timeout=60)
    headers = {"Content-Type": "application/json"}
    seconds, server_milliseconds = [], []
    for index in range(warmup + count):
        start = time.perf_counter()
        connection.request("POST", "/api/predict", body, headers)
        response = connection.getresponse()
        content = response.read()
        answer = json.loads(content)
        elapsed = time.perf_counter() - start
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}: {answer}")
        if index >= warmup:
            seconds.append(elapsed)
            server_milliseconds.append(answer["milliseconds"])
    connection.close()
    return np.array(seconds), np.array(server_milliseconds), len(body), answer, len(content)


def main():
    parser = argparse.ArgumentParser(description="Latency of the explorer's prediction API.")
    parser.add_argument("--model", default=explorer.DEFAULT_MODEL_PATH)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 requests")
    parser.add_argument("--dtype", choices=("float32", "int8"), default="float32",
                        help="how the maps and Grad-CAM travel: float32 (the API's default) or int8 (the page's)")
    args = parser.parse_args()
    count = 20 if args.quick else args.requests

    data = load_mnist()
    drawing = realistic_drawing(data.x_test[0, 0])
    body = json.dumps({"drawing": drawing.tolist(), "dtype": args.dtype})
    process, host, port = start_explorer(args.model)
    try:
        seconds, server_milliseconds, body_bytes, answer, answer_bytes = time_requests(host, port, body, count)
    finally:
        process.terminate()
        process.wait()
    milliseconds = 1000 * seconds
    print(f"model {os.path.basename(args.model)}: test image 0 (label {data.y_test[0]}) drawn at "
          f"{drawings.DRAWING_SIZE}x{drawings.DRAWING_SIZE} ({body_bytes:,} bytes of JSON) -> predicted "
          f"{answer['predicted']}, {len(answer['layers'])} layers of maps, Grad-CAM of "
          f"{len(answer['gradcam']['classes'])} classes, as {args.dtype}: {answer_bytes:,} bytes of answer")
    print(f"{count} requests through HTTP: median {np.median(milliseconds):.1f} ms, "
          f"95th percentile {np.percentile(milliseconds, 95):.1f} ms (goal: at most 50 ms)")
    print(f"  of which the server's own work (parse, preprocess, model; not the JSON encoding): median "
          f"{np.median(server_milliseconds):.1f} ms, 95th percentile {np.percentile(server_milliseconds, 95):.1f} ms")


if __name__ == "__main__":
    main()
