"""Make the flat modules at the repository root importable from tests/, and load PyTorch first.

TensorFlow and PyTorch's compiler stack (triton, imported lazily by torch.optim) each carry their
own LLVM; when TensorFlow is loaded first, the later triton import crashes the process with a
segmentation fault. Importing torch._dynamo here, before any test module imports TensorFlow,
gives every test the safe order.
"""
import os
import sys

import torch._dynamo  # noqa: F401  (import order matters, see above)

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
