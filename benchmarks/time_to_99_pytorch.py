"""Time from scratch until a PyTorch CNN first reaches 99.0% MNIST test accuracy.

The clock starts before the model is created (data loading is not counted) and includes
every evaluation. Test accuracy is checked after every half epoch; here the test set only
stops the clock, it chooses nothing about the model. This prints; it asserts nothing.

The default model is the SimpleCNN shape with BatchNorm after each layer (a DeepCNN with one
conv per stage and no dropout): BatchNorm lets a high learning rate work from the first steps,
which is what a budget of one or two epochs needs.

Run it:
    python benchmarks/time_to_99_pytorch.py              # BatchNorm CNN (16, 32), batch 128, at most 1.5 epochs
    python benchmarks/time_to_99_pytorch.py --quick      # a few seconds on data.py's quick slice (target not reached)
    python benchmarks/time_to_99_pytorch.py --model simple --channels 8 16 --kernel-size 5 --epochs 2.5 --learning-rate 5e-3
"""
import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cnn_pytorch import (DeepCNN, SimpleCNN, choose_device, count_parameters, evaluate, make_optimizer,  # noqa: E402
                         make_scheduler, set_seed, to_tensors, train_one_epoch, training_batches)
from interface import TrainingHook  # noqa: E402
from data import QUICK_TEST, QUICK_TRAIN, QUICK_VAL, load_mnist  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="Seconds until a small PyTorch CNN reaches a test accuracy.")
    parser.add_argument("--model", default="deep", choices=("deep", "simple"),
                        help="deep: conv-BN-ReLU-pool x 2 (kernel 3); simple: the SimpleCNN")
    parser.add_argument("--channels", type=int, nargs=2, default=(16, 32))
    parser.add_argument("--kernel-size", type=int, default=3)
    parser.add_argument("--hidden-units", type=int, default=128)
    parser.add_argument("--epochs", type=float, default=1.5,
                        help="length of the one-cycle schedule and the limit, in half epochs (1.5 is fine)")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=1e-2)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default=None)
    parser.add_argument("--quick", action="store_true",
                        help=f"data.py's quick slice ({QUICK_TRAIN:,} training, {QUICK_TEST:,} test images), 1 epoch")
    args = parser.parse_args()

    set_seed(args.seed)
    device = choose_device(args.device)
    data = load_mnist(seed=args.seed)
    if args.quick:
        data, args.epochs = data.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST), 1
    x_train, y_train = to_tensors(data.x_train, data.y_train, device)
    x_test, y_test = to_tensors(data.x_test, data.y_test, device)
    print(f"device: {device}, threads: {torch.get_num_threads()}, train {tuple(x_train.shape)}, "
          f"test {tuple(x_test.shape)}")

    start = time.perf_counter()
    if args.model == "simple":
        model = SimpleCNN(channels=tuple(args.channels), kernel_size=args.kernel_size,
                          hidden_units=args.hidden_units).to(device)
    else:
        model = DeepCNN(channels=tuple(args.channels), convs_per_stage=1, hidden_units=args.hidden_units,
                        dropout=0.0).to(device)
    half_sizes = (len(x_train) // 2, len(x_train) - len(x_train) // 2)
    num_halves = round(2 * args.epochs)  # the test accuracy is checked after every half epoch
    total_steps = sum(math.ceil(half_sizes[half % 2] / args.batch_size) for half in range(num_halves))
    optimizer = make_optimizer(model, "adam", args.learning_rate, weight_decay=1e-4)
    scheduler = make_scheduler(optimizer, total_steps, schedule="one_cycle")
    hook = TrainingHook()
    generator = torch.Generator().manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)  # the batch order within each half epoch
    print(f"{type(model).__name__}, channels {tuple(args.channels)}, hidden units {args.hidden_units}: "
          f"{count_parameters(model):,} parameters, batch {args.batch_size}, "
          f"AdamW + one-cycle to lr {args.learning_rate} over {num_halves / 2} epochs")
    for half in range(num_halves):
        if half % 2 == 0:  # a new shuffle every epoch, split into two halves
            order = torch.randperm(len(x_train), generator=generator).to(device)
        index = order[:half_sizes[0]] if half % 2 == 0 else order[half_sizes[0]:]
        batches = training_batches(x_train[index], y_train[index], args.batch_size, rng)
        train_one_epoch(model, batches, optimizer, scheduler, hook)
        _, accuracy = evaluate(model, x_test, y_test)
        seconds, epochs_done = time.perf_counter() - start, (half + 1) / 2
        print(f"epoch {epochs_done:.1f}: test accuracy {100 * accuracy:.2f}% at {seconds:.1f} s")
        if accuracy >= args.target:
            print(f"reached {100 * args.target:.1f}% test accuracy in {seconds:.1f} s (epoch {epochs_done:.1f})")
            return
    print(f"did not reach {100 * args.target:.1f}% in {args.epochs} epochs ({time.perf_counter() - start:.1f} s)")


if __name__ == "__main__":
    main()
