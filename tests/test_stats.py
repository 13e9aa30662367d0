"""stats.py: every statistic of RESULTS.md against values worked by hand (the intervals, the test of a
change between budgets, the censored median), and the tests' promises (a true zero "detected" about 5% of
the time, the detectable difference found 80% of the time) checked by simulation."""
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from stats import (censored_quantiles, change_test, describe, detectable_difference, difference_estimate,
                   difference_test, holm, spread_uncertainty)


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
    # The 95% interval: 1 ± t_{0.975, 2} * 0.5 / sqrt(3) = 1 ± 4.302653 * 0.288675 = 1 ± 1.242069.
    assert result["ci95"] == pytest.approx([1 - 1.242069, 1 + 1.242069], abs=1e-6)


def test_the_welch_interval_matches_hand_computation():
    # -3.5 ± t_{0.975, df} * sqrt(0.75), df = 0.5625 / ((1/3)^2 / 2 + (5/12)^2 / 3) = 4.959 (Welch-Satterthwaite)
    result = difference_test([1.0, 2.0, 3.0], [4.0, 5.0, 6.0, 7.0], paired=False)
    df = 0.5625 / ((1 / 3) ** 2 / 2 + (5 / 12) ** 2 / 3)
    assert result["df"] == pytest.approx(df) and result["difference"] == pytest.approx(-3.5)
    half_width = scipy_stats.t.ppf(0.975, df) * math.sqrt(0.75)
    assert result["ci95"] == pytest.approx([-3.5 - half_width, -3.5 + half_width])
    assert 2.571 < half_width / math.sqrt(0.75) < 2.776  # t_{0.975, 4.96}: between a t table's df 5 and df 4
    constant = difference_test([1.0, 1.0], [0.5, 0.5], paired=False)  # no spread: an interval of one point
    assert constant["ci95"] == [0.5, 0.5] and constant["p"] == 0.0


def paired_arms(differences):
    """Two paired arms whose seed-by-seed differences are the given ones (the reference arm varies by seed)."""
    reference = np.array([0.5, 0.7, 0.6])
    return reference + np.asarray(differences), reference


def test_both_budgets_detect_the_same_effect_and_the_change_test_finds_no_change():
    # Default budget: differences 1.0, 1.1, 0.9: mean 1.0, sd 0.1, se 0.1 / sqrt(3), df 2. Long budget:
    # 1.05, 0.95, 1.0: mean 1.0, sd 0.05, se 0.05 / sqrt(3). Each detected on its own (p < 0.01).
    before, after = paired_arms([1.0, 1.1, 0.9]), paired_arms([1.05, 0.95, 1.0])
    assert difference_test(*before, paired=True)["p"] < 0.01 and difference_test(*after, paired=True)["p"] < 0.01
    change = change_test(difference_estimate(*before, paired=True), difference_estimate(*after, paired=True))
    # change 0; se^2 = 0.01/3 + 0.0025/3 = 0.0125/3; df = se^4 / (se_1^4/2 + se_2^4/2) = 0.0125^2 * 2 / (0.01^2 +
    # 0.0025^2) = 50/17 = 2.941; t = 0, p = 1, interval 0 ± t_{0.975, 50/17} * 0.064550.
    assert change["change"] == pytest.approx(0.0, abs=1e-12)
    assert change["se"] == pytest.approx(math.sqrt(0.0125 / 3)) and change["df"] == pytest.approx(50 / 17)
    assert change["p"] == pytest.approx(1.0)
    half_width = scipy_stats.t.ppf(0.975, 50 / 17) * math.sqrt(0.0125 / 3)
    assert change["ci95"] == pytest.approx([-half_width, half_width], abs=1e-9)


def test_only_one_budget_detects_the_effect_and_the_change_test_finds_no_change():
    # Default: 1.0, 1.1, 0.9 (detected). Long: 0.9, 1.9, -0.1: mean 0.9, sd 1.0, t = 0.9 / 0.57735 = 1.56,
    # p = 0.26: not detected. "Detected, then not" but the change, -0.1, is nowhere near detected:
    # se^2 = 0.01/3 + 1/3 = 1.01/3; df = 1.01^2 * 2 / (0.01^2 + 1) = 2.0400; t = -0.1 / 0.580230 = -0.1723.
    before, after = paired_arms([1.0, 1.1, 0.9]), paired_arms([0.9, 1.9, -0.1])
    assert difference_test(*before, paired=True)["p"] < 0.01 and difference_test(*after, paired=True)["p"] > 0.2
    change = change_test(difference_estimate(*before, paired=True), difference_estimate(*after, paired=True))
    df = 1.01 ** 2 * 2 / (0.01 ** 2 + 1)
    assert change["change"] == pytest.approx(-0.1) and change["df"] == pytest.approx(df)
    assert change["se"] == pytest.approx(math.sqrt(1.01 / 3))
    assert change["t"] == pytest.approx(-0.1 / math.sqrt(1.01 / 3))
    assert change["p"] == pytest.approx(2 * scipy_stats.t.sf(0.1 / math.sqrt(1.01 / 3), df)) and change["p"] > 0.8
    half_width = scipy_stats.t.ppf(0.975, df) * math.sqrt(1.01 / 3)
    assert change["ci95"] == pytest.approx([-0.1 - half_width, -0.1 + half_width])


def test_a_change_that_is_there_is_detected():
    # Two Welch estimates: 2.0 (se 0.1, df 4) then 0.0 (se 0.1, df 4): se = sqrt(0.02), df = 0.02^2 / (2 *
    # 0.1^4 / 4) = 8, t = -2 / 0.141421 = -14.14.
    change = change_test({"difference": 2.0, "se": 0.1, "df": 4}, {"difference": 0.0, "se": 0.1, "df": 4})
    assert change["df"] == pytest.approx(8) and change["t"] == pytest.approx(-2 / math.sqrt(0.02))
    assert change["p"] < 1e-5
    one_seed = {"difference": 1.0, "se": None, "df": None}  # no spread on one side: no test
    assert change_test(one_seed, {"difference": 0.0, "se": 0.1, "df": 4})["p"] is None


def test_the_spread_of_three_seeds_is_uncertain_by_a_factor_of_twelve():
    # With n - 1 = 2 degrees of freedom chi-squared is exponential with mean 2: its quantile at q is -2 ln(1 - q).
    low, high = spread_uncertainty(3)
    assert low == pytest.approx(math.sqrt(2 / (-2 * math.log(0.025))))  # 0.521
    assert high == pytest.approx(math.sqrt(2 / (-2 * math.log(0.975))))  # 6.285


def test_the_censored_median_counts_a_run_never_reached_as_more_than_the_budget():
    # Sorted: 300, 310, 320, 330, then the run that never reached (larger than all): median 320, quartiles
    # at positions 1 and 3 (of 0 to 4): 310 and 330.
    assert censored_quantiles([300, 320, None, 310, 330]) == {"n": 5, "reached": 4, "median": 320.0, "q1": 310.0,
                                                              "q3": 330.0}
    # Two of five never reached: 300, 310, 330, >, >: the median is 330 (not 310, the median of those that
    # reached), and the upper quartile falls on a run that never reached.
    assert censored_quantiles([300, None, None, 310, 330]) == {"n": 5, "reached": 3, "median": 330.0, "q1": 310.0,
                                                               "q3": math.inf}
    # Four seeds, three reached: 300, 310, 320, >: median (310 + 320) / 2; q1 at position 0.75: 307.5; q3 at
    # position 2.25, between 320 and a run never reached: more than the budget.
    assert censored_quantiles([300, 310, 320, None]) == {"n": 4, "reached": 3, "median": 315.0, "q1": 307.5,
                                                         "q3": math.inf}
    # Half or fewer reached: no median; three seeds: a median but no quartiles.
    assert censored_quantiles([300, None, None, 310])["median"] is None
    assert censored_quantiles([300, 320, None]) == {"n": 3, "reached": 2, "median": 320.0, "q1": None, "q3": None}


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
