"""stats.py: every statistic of RESULTS.md against values worked by hand, and the tests' promises
(a true zero "detected" about 5% of the time, the detectable difference found 80% of the time)
checked by simulation."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from stats import describe, detectable_difference, difference_test, holm


def test_describe_matches_hand_computed_values():
    result = describe([1.0, 2.0, 4.0, None])  # None (e.g. a target never reached) is left out
    assert result["n"] == 3 and result["min"] == 1.0 and result["max"] == 4.0
    assert result["mean"] == pytest.approx(7 / 3)
    # ddof=1: ((1 - 7/3)^2 + (2 - 7/3)^2 + (4 - 7/3)^2) / 2 = (16/9 + 1/9 + 25/9) / 2 = 7/3
    assert result["std"] == pytest.approx(math.sqrt(7 / 3))
    half_width = 4.302652729911275 * math.sqrt(7 / 3) / math.sqrt(3)  # t_{0.975, 2} from a t table
    assert result["ci95"] == pytest.approx([7 / 3 - half_width, 7 / 3 + half_width])
    one = describe([0.5])
    assert one["mean"] == 0.5 and one["std"] is None and one["ci95"] is None
    assert describe([])["n"] == 0


def test_welch_test_matches_hand_computation():
    a, b = [1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0]
    result = difference_test(a, b, paired=False)
    # s_a^2 / n_a = 1 / 3, s_b^2 / n_b = (5 / 3) / 4 = 5 / 12; t = (2 - 5.5) / sqrt(1/3 + 5/12) = -3.5 / sqrt(0.75)
    assert result["test"] == "Welch t"
    assert result["t"] == pytest.approx(-3.5 / math.sqrt(0.75))
    assert result["df"] == pytest.approx(0.75 ** 2 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3))
    assert result["p"] == pytest.approx(2 * scipy_stats.t.sf(3.5 / math.sqrt(0.75), result["df"]))
    assert difference_test([1.0], b, paired=False)["p"] is None  # one value: no spread, no test


def test_paired_test_matches_hand_computation():
    a, b = [1.0, 2.0, 4.0], [0.5, 1.0, 2.5]  # differences 0.5, 1.0, 1.5: mean 1, sd 0.5
    result = difference_test(a, b, paired=True)
    assert result["test"] == "paired t" and result["df"] == 2
    assert result["t"] == pytest.approx(1.0 / (0.5 / math.sqrt(3)))
    assert result["p"] == pytest.approx(2 * scipy_stats.t.sf(1.0 / (0.5 / math.sqrt(3)), 2))


def planted(difference, n, spread=0.002, seed_effect=0.0, seed=0):
    """Two arms of n seeds: accuracy 0.98 plus each seed's shared effect plus its own noise; b is a + difference."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(0, seed_effect, n)  # the seed's initial weights and batches: the same in both arms
    return 0.98 + shared + rng.normal(0, spread, n), 0.98 + difference + shared + rng.normal(0, spread, n)


def test_a_planted_large_difference_is_detected_and_a_planted_zero_is_not():
    a, b = planted(0.01, 5)  # one point, five times the seed-to-seed spread
    assert difference_test(a, b, paired=False)["p"] < 0.001
    detections = [difference_test(*planted(0.0, 5, seed=seed), paired=False)["p"] < 0.05
                  for seed in range(200)]
    assert 0.01 < np.mean(detections) < 0.10  # a true zero is "detected" about 5% of the time, as promised


def test_the_paired_test_finds_what_the_unpaired_test_misses():
    # Each seed moves both arms together (0.5 points) far more than the arms differ (0.1 points).
    a, b = planted(0.001, 5, spread=0.0001, seed_effect=0.005, seed=3)
    assert difference_test(a, b, paired=True)["p"] < 0.01
    assert difference_test(a, b, paired=False)["p"] > 0.3


def test_holm_matches_a_hand_worked_example():
    # p sorted: 0.01, 0.02, 0.03, 0.04 (m = 4): 4 * 0.01 = 0.04, 3 * 0.02 = 0.06, 2 * 0.03 = 0.06, 1 * 0.04 = 0.04,
    # then each at least the one before: 0.04, 0.06, 0.06, 0.06. Given in another order, with a None.
    assert holm([0.03, None, 0.01, 0.04, 0.02]) == pytest.approx([0.06, None, 0.04, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # 2 * 0.5 capped at 1; 0.9 then raised to it


def test_detectable_difference_has_the_promised_power():
    a, b = planted(0.0, 5, seed=1)
    delta = detectable_difference(a, b, paired=False, alpha=0.05)
    # Simulate: a true difference of delta with the same spread is detected about 80% of the time.
    spread = math.sqrt((np.var(a, ddof=1) + np.var(b, ddof=1)) / 2)
    rng = np.random.default_rng(0)
    hits = [difference_test(rng.normal(0, spread, 5), rng.normal(delta, spread, 5), paired=False)["p"] < 0.05
            for _ in range(2000)]
    assert 0.72 < np.mean(hits) < 0.88
    assert detectable_difference(a, b, paired=False, alpha=0.01) > delta  # stricter level: larger
