"""How long does Keras need, from scratch, to reach 99.0% test accuracy on MNIST? (CPU, prints, never asserts)

The clock starts before the model is built (graph tracing included) and stops at the first check
where the test accuracy reaches the target; the model is checked on the 10,000 test images
`--checks-per-epoch` times per epoch. The seconds spent on those checks are reported separately
and left out of the training time, since a normal run would not spend them. Importing TensorFlow
and loading MNIST happen before the clock starts and are printed too.

Run it (with other heavy jobs kept off the CPU):
    python benchmarks/time_to_99_keras.py                     # SimpleCNN (16, 32), batch 128, lr 6e-3, 4 checks per epoch
    python benchmarks/time_to_99_keras.py --channels 32 64 --max-epochs 3 --learning-rate 3e-3
    python benchmarks/time_to_99_keras.py --quick             # seconds: data.py's quick slice, target 90%
"""
import argparse
import sys
import time
from pathlib import Path

start_import = time.perf_counter()
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import cnn_keras  # noqa: E402  (first: it picks the backend and quiets TensorFlow's logging)
from cnn_keras import tf  # noqa: E402
from data import QUICK_TEST, QUICK_TRAIN, QUICK_VAL, load_mnist  # noqa: E402

import_seconds = time.perf_counter() - start_import


class StopAtTestAccuracy(cnn_keras.keras.callbacks.Callback):
    """Every `check_every` batches, measure test accuracy; stop training once it reaches `target`."""

    def __init__(self, x_test, y_test, target, check_every, start_time):
        super().__init__()
        self.x_test, self.y_test, self.target, self.check_every = x_test, y_test, target, check_every
        self.start_time, self.check_seconds, self.batches_seen = start_time, 0.0, 0
        self.reached_at, self.checks = None, []  # checks: (images seen, accuracy, training seconds)

    def on_train_batch_end(self, batch, logs=None):
        self.batches_seen += 1
        if self.batches_seen % self.check_every == 0:
            self.check()

    def check(self):
        check_start = time.perf_counter()
        logits = self.model.predict(self.x_test, batch_size=2000, verbose=0)  # (N, 10), inference mode
        accuracy = float((logits.argmax(axis=1) == self.y_test).mean())
        self.check_seconds += time.perf_counter() - check_start
        training_seconds = time.perf_counter() - self.start_time - self.check_seconds
        self.checks.append((self.batches_seen, accuracy, training_seconds))
        print(f"  after {self.batches_seen:4d} batches: test accuracy {100 * accuracy:.2f}%  "
              f"(training {training_seconds:.1f} s)", flush=True)
        if accuracy >= self.target and self.reached_at is None:
            self.reached_at = training_seconds
            self.model.stop_training = True


def main():
    parser = argparse.ArgumentParser(description="Seconds of Keras training until MNIST test accuracy >= 99%.")
    parser.add_argument("--channels", type=int, nargs=2, default=(16, 32))
    parser.add_argument("--hidden-units", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=6e-3)
    parser.add_argument("--max-epochs", type=int, default=2, help="the cosine schedule spans this many epochs")
    parser.add_argument("--checks-per-epoch", type=int, default=4)
    parser.add_argument("--target", type=float, default=0.99)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help=f"data.py's quick slice ({QUICK_TRAIN:,} training, {QUICK_TEST:,} test images), 1 epoch, "
                             "target 90%%")
    args = parser.parse_args()

    cnn_keras.set_seed(args.seed)
    data = load_mnist(seed=args.seed)
    if args.quick:
        data, args.max_epochs, args.target = data.first(QUICK_TRAIN, QUICK_VAL, QUICK_TEST), 1, 0.90
    x_train, y_train = cnn_keras.to_channels_last(data.x_train), data.y_train
    x_test, y_test = cnn_keras.to_channels_last(data.x_test), data.y_test
    print(f"TensorFlow {tf.__version__}, {tf.config.threading.get_intra_op_parallelism_threads() or 'all'} "
          f"intra-op threads; import {import_seconds:.1f} s; train {x_train.shape}, test {x_test.shape}")

    steps_per_epoch = -(-len(x_train) // args.batch_size)  # ceil(N / batch_size)
    start_time = time.perf_counter()
    model = cnn_keras.make_simple_cnn(channels=tuple(args.channels), hidden_units=args.hidden_units)
    cnn_keras.compile_model(model, learning_rate=args.learning_rate, weight_decay=1e-4, schedule="warmup_cosine",
                            total_steps=args.max_epochs * steps_per_epoch)
    stopper = StopAtTestAccuracy(x_test, y_test, args.target, max(1, steps_per_epoch // args.checks_per_epoch),
                                 start_time)
    model.fit(x_train, y_train, epochs=args.max_epochs, batch_size=args.batch_size, callbacks=[stopper], verbose=0)
    wall_seconds = time.perf_counter() - start_time

    print(f"SimpleCNN channels {tuple(args.channels)}, hidden {args.hidden_units}, {model.count_params():,} "
          f"parameters, batch {args.batch_size}, peak learning rate {args.learning_rate}")
    if stopper.reached_at is None:
        best = max(accuracy for _, accuracy, _ in stopper.checks)
        print(f"did not reach {100 * args.target:.1f}% in {args.max_epochs} epoch(s): best {100 * best:.2f}%, "
              f"{wall_seconds:.1f} s wall")
    else:
        images = stopper.checks[-1][0] * args.batch_size
        print(f"time to {100 * args.target:.1f}% test accuracy: {stopper.reached_at:.1f} s of training "
              f"({images / len(x_train):.2f} epochs; {wall_seconds:.1f} s wall including "
              f"{stopper.check_seconds:.1f} s of test checks)")


if __name__ == "__main__":
    main()
