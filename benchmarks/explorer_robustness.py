"""Does the explorer's model read digits drawn the way people draw? Clean against robustness-set accuracy.

Builds drawings.robustness_set from MNIST's test images (every test digit redrawn on the 112x112
pad off-centre, at its own size, and tilted, slanted, thinner or thicker, then sent through
preprocess_drawing as the page's drawings are) and prints, for each model, its accuracy on the
clean test set, on the robustness set overall and on each group of it, and the drop from clean to
overall. `--split validation` measures on the validation split instead: choices (augmentation,
epochs) are made there, never on the test set. Nothing here asserts.

    python benchmarks/explorer_robustness.py                                   # the shipped model
    python benchmarks/explorer_robustness.py --model old.npz --model models/simple_cnn.npz
    python benchmarks/explorer_robustness.py --split validation --quick        # 1,000 validation images
"""
import argparse
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import drawings  # noqa: E402
import explorer  # noqa: E402
import frameworks  # noqa: E402
from data import load_mnist  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description="Clean and robustness-set accuracy of the explorer's models.")
    parser.add_argument("--model", action="append", help="a saved model, as explorer.py takes it; repeat to compare "
                                                         "(default: the shipped models/simple_cnn.npz)")
    parser.add_argument("--split", choices=("test", "validation"), default="test",
                        help="the MNIST images to redraw (default: test; make choices on validation)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the robustness set (default 0)")
    parser.add_argument("--quick", action="store_true", help="the first 1,000 images of the split")
    args = parser.parse_args()

    data = load_mnist()
    images, labels = (data.x_test, data.y_test) if args.split == "test" else (data.x_val, data.y_val)
    if args.quick:
        images, labels = images[:1000], labels[:1000]
    start = time.perf_counter()
    robust = drawings.robustness_set(images, labels, seed=args.seed)
    print(f"robustness set: {len(labels):,} {args.split} images, seed {args.seed}, built in "
          f"{time.perf_counter() - start:.1f} s; groups of "
          + ", ".join(f"{group} {int((robust['group'] == group).sum())}" for group in drawings.ROBUSTNESS_GROUPS))
    columns = ["clean", "overall", *drawings.ROBUSTNESS_GROUPS, "drop"]
    print(f"{'model':<24}" + "".join(f"{column:>10}" for column in columns))
    for path in args.model or [explorer.DEFAULT_MODEL_PATH]:
        model, _, _ = explorer.load_model_file(path)
        clean = float((frameworks.predict_logits(model, images).argmax(axis=1) == labels).mean())
        accuracy = drawings.robustness_accuracy(frameworks.predict_logits(model, robust["x"]).argmax(axis=1), robust)
        drop = clean - accuracy["overall"]
        percentages = "".join(f"{100 * value:>9.2f}%" for value in [clean, *accuracy.values()])
        print(f"{os.path.basename(path):<24}{percentages}{100 * drop:>10.2f}")
    print("accuracy in %; drop = clean - overall, in percentage points (goal for the shipped model: at most 2)")


if __name__ == "__main__":
    main()
