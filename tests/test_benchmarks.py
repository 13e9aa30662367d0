"""The speed benchmarks run and print what BENCHMARKS.md quotes (their numbers are measurements, never
asserted here: timing goals live in the benchmarks' output, not in tests)."""
import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(script, *arguments):
    result = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", script), *arguments], cwd=ROOT,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow
def test_numpy_vs_torch_prints_the_ratio_and_each_framework_against_the_limit():
    output = run("numpy_vs_torch.py", "--quick", "--no-keras")
    assert re.search(r"machine's limit: \d+ GFLOP/s", output)
    assert "453 MFLOP in matrix products (2.44 forward + 4.65 backward per image" in output  # count_flops, batch 64
    for name in ("NumPy", "PyTorch"):
        assert re.search(rf"{name} +[\d.]+ ms +[\d.]+ GFLOP/s +[\d.]+% of the limit", output)
    assert re.search(r"ratio NumPy / PyTorch = [\d.]+", output)


@pytest.mark.slow
def test_numpy_layers_times_every_layer_in_the_order_forward_runs_them():
    output = run("numpy_layers.py", "--repeats", "3")
    names = re.findall(r"^ +\d+ (\w+) +forward", output, flags=re.MULTILINE)
    assert names == ["ConvolutionLayer", "PoolingLayer", "ReLULayer"] * 2 + [
        "FlattenLayer", "FullyConnectedLayer", "ReLULayer", "FullyConnectedLayer"]
    assert len(re.findall(r"GFLOP/s", output)) == 5  # the four layers with a matrix product, and the header
