"""The statistics behind every verdict of RESULTS.md: a summary of seeds, the paired or Welch t-test with
the 95% interval of the difference, the test of a change between two budgets, Holm's adjustment over a
table, the median of times to a target that some runs never reached, and the difference a test could
have detected.

Plain functions of sequences of numbers (one value per seed): they know nothing of experiments,
runs or files. report.py applies them to the rows of summary.json; scipy (which comes with
scikit-learn) is imported by the functions that need it. Checked against hand-worked values and
simulations in tests/test_stats.py:
    pytest tests/test_stats.py -q
In a REPL:
    >>> from stats import describe, difference_test, holm
    >>> round(describe([0.990, 0.991, 0.993])["std"], 6)
    0.001528
    >>> difference_test([0.990, 0.991, 0.993], [0.985, 0.987, 0.986], paired=True)["test"]
    'paired t'
    >>> holm([0.03, 0.01])
    [0.03, 0.02]
    >>> censored_quantiles([300, 320, None, 310, 330])["median"]
    320.0
"""
import math

import numpy as np

ALPHA = 0.05  # the family-wise error rate of each table's comparisons (Holm-Bonferroni)
POWER = 0.8  # "would be detected 80% of the time": the power behind each table's detectable difference


# --- Describing the seeds, testing a difference ---

def describe(values):
    """Mean, standard deviation (ddof=1), n, min, max, median and quartiles, and the 95% t-interval of the mean.

    Inputs: a sequence of numbers (None entries, e.g. a target never reached, are left out).
    Returns: dict; std and ci95 are None for fewer than two values.
    """
    values = np.asarray([value for value in values if value is not None], dtype=np.float64)
    n = len(values)
    if n == 0:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None, "median": None, "q1": None, "q3": None,
                "ci95": None}
    mean = float(values.mean())
    std = float(values.std(ddof=1)) if n > 1 else None
    ci95 = None
    if n > 1:
        from scipy.stats import t  # noqa: PLC0415 (scipy comes with scikit-learn)

        half_width = float(t.ppf(0.975, n - 1)) * std / math.sqrt(n)  # t_{0.975, n-1} * s / sqrt(n)
        ci95 = [mean - half_width, mean + half_width]
    q1, median, q3 = (float(value) for value in np.percentile(values, [25, 50, 75]))
    return {"n": n, "mean": mean, "std": std, "min": float(values.min()), "max": float(values.max()),
            "median": median, "q1": q1, "q3": q3, "ci95": ci95}


def difference_estimate(a, b, paired):
    """The difference of means mean(a) - mean(b), its standard error and degrees of freedom.

    Paired (a[i] and b[i] from the same seed): d = a - b, se = sd(d) / sqrt(n), df = n - 1.
    Welch: se = sqrt(s_a^2 / n_a + s_b^2 / n_b), df by Welch-Satterthwaite:
    df = se^4 / ((s_a^2 / n_a)^2 / (n_a - 1) + (s_b^2 / n_b)^2 / (n_b - 1)).
    Returns: dict with difference, se and df; se and df are None with fewer than two values on a side.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    difference = float(a.mean() - b.mean()) if len(a) and len(b) else None
    if len(a) < 2 or len(b) < 2:
        return {"difference": difference, "se": None, "df": None}
    if paired:
        return {"difference": difference, "se": float(np.std(a - b, ddof=1) / math.sqrt(len(a))), "df": len(a) - 1}
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else len(a) + len(b) - 2
    return {"difference": difference, "se": float(math.sqrt(va + vb)), "df": float(df)}


def interval(estimate, se, df, confidence=0.95):
    """The t-interval estimate ± t_{(1 + confidence) / 2, df} * se; None without a standard error."""
    from scipy.stats import t  # noqa: PLC0415

    if se is None:
        return None
    half_width = float(t.ppf((1 + confidence) / 2, df)) * se
    return [estimate - half_width, estimate + half_width]


def t_test(estimate, se, df):
    """Two-sided test of a true value of zero: t = estimate / se, p = 2 P(T_df > |t|). With se = 0 (no
    spread at all) t is undefined: p is 1.0 when the estimate is 0, else 0.0."""
    from scipy.stats import t  # noqa: PLC0415

    if se is None:
        return None, None
    if se == 0:
        return None, 1.0 if estimate == 0 else 0.0
    statistic = estimate / se
    return float(statistic), float(2 * t.sf(abs(statistic), df))


def difference_test(a, b, paired):
    """Test mean(a) == mean(b), two-sided: the paired t-test when the runs are paired by seed (the same
    initial weights and batch order in both arms), Welch's unequal-variance t-test otherwise; with the
    95% confidence interval of the difference (difference_estimate, interval).

    Inputs: a, b: sequences of numbers; paired a[i] with b[i] when paired (then len(a) == len(b)).
    Returns: dict with test ("paired t" or "Welch t"), difference, se, df, ci95, t and p; se, df, ci95, t and
    p are None with fewer than two values on a side (or two pairs), and p is 1.0 or 0.0 when there is no spread.
    """
    estimate = difference_estimate(a, b, paired)
    statistic, p = t_test(estimate["difference"], estimate["se"], estimate["df"])
    return {"test": "paired t" if paired else "Welch t", **estimate,
            "ci95": interval(estimate["difference"], estimate["se"], estimate["df"]), "t": statistic, "p": p}


def change_test(before, after):
    """Did a difference change between two independent experiments (two budgets)? The change is
    after - before, each a difference_estimate; se = sqrt(se_1^2 + se_2^2) and, by Welch-Satterthwaite,
    df = se^4 / (se_1^4 / df_1 + se_2^4 / df_2); then the t-test and the 95% interval of the change.

    Note: one difference detected and the other not is no evidence of a change (Gelman and Stern 2006,
    "The difference between significant and not significant is not itself statistically significant").
    Returns: dict with change, se, df, ci95, t and p (None where either side has no standard error).
    """
    change = after["difference"] - before["difference"]
    if before["se"] is None or after["se"] is None:
        return {"change": change, "se": None, "df": None, "ci95": None, "t": None, "p": None}
    variance = before["se"] ** 2 + after["se"] ** 2
    fourth_powers = (before["se"] ** 4 / before["df"] if before["se"] else 0.0) + \
                    (after["se"] ** 4 / after["df"] if after["se"] else 0.0)
    df = variance ** 2 / fourth_powers if fourth_powers > 0 else before["df"] + after["df"]
    se = math.sqrt(variance)
    statistic, p = t_test(change, se, df)
    return {"change": change, "se": se, "df": float(df), "ci95": interval(change, se, df), "t": statistic, "p": p}


def spread_uncertainty(n, confidence=0.95):
    """How uncertain a standard deviation from n values is: (low, high) such that the true standard deviation
    lies between low * s and high * s with the given confidence, for normal values.
    (n - 1) s^2 / sigma^2 is chi-squared with n - 1 degrees of freedom, so sigma / s runs from
    sqrt((n - 1) / chi2_{(1 + confidence) / 2}) to sqrt((n - 1) / chi2_{(1 - confidence) / 2})."""
    from scipy.stats import chi2  # noqa: PLC0415

    df = n - 1
    return (math.sqrt(df / chi2.ppf((1 + confidence) / 2, df)), math.sqrt(df / chi2.ppf((1 - confidence) / 2, df)))


# --- Times to a target that some runs never reached ---

def order_statistic(sorted_values, fraction):
    """The fraction-quantile of sorted values by linear interpolation between neighbours (numpy's default):
    position fraction * (n - 1). math.inf (a run that never reached the target) wins any interpolation."""
    position = fraction * (len(sorted_values) - 1)
    low, high = math.floor(position), math.ceil(position)
    if low == high:
        return sorted_values[low]
    if math.inf in (sorted_values[low], sorted_values[high]):
        return math.inf
    return sorted_values[low] + (position - low) * (sorted_values[high] - sorted_values[low])


def censored_quantiles(values, minimum_for_quartiles=4):
    """Median and quartiles of times (or steps) to a target over all seeds, a run that never reached it
    (None) counting as more than the budget: larger than every run that reached it.

    Rule: the median is given only when more than half of the seeds reached the target (then it falls on
    reached runs); the quartiles only with a median and at least minimum_for_quartiles seeds; a quartile
    that falls on a run that never reached is math.inf ("more than the budget").
    Returns: dict with n (seeds), reached, median, q1 and q3; a statistic not given is None.
    """
    reached = sorted(float(value) for value in values if value is not None)
    n = len(values)
    ordered = reached + [math.inf] * (n - len(reached))  # (n,): the runs that never reached, last
    result = {"n": n, "reached": len(reached), "median": None, "q1": None, "q3": None}
    if len(reached) > n / 2:
        result["median"] = order_statistic(ordered, 0.5)
        if n >= minimum_for_quartiles:
            result["q1"], result["q3"] = order_statistic(ordered, 0.25), order_statistic(ordered, 0.75)
    return result


# --- A table of comparisons: Holm's adjustment, and what a test could detect ---

def holm(p_values):
    """Holm-Bonferroni adjusted p-values, in the order given (None stays None and is not counted).

    Sort the m p-values: p_(1) <= ... <= p_(m); adjusted p_(i) = max over j <= i of min(1, (m - j + 1) p_(j)).
    A comparison is a detected difference when its adjusted p < ALPHA; the chance of calling any true
    null hypothesis of the table a difference is then at most ALPHA (Holm 1979).
    """
    order = sorted((p, index) for index, p in enumerate(p_values) if p is not None)
    adjusted, running_max, m = [None] * len(p_values), 0.0, len(order)
    for rank, (p, index) in enumerate(order):
        running_max = max(running_max, min(1.0, (m - rank) * p))
        adjusted[index] = running_max
    return adjusted


def detectable_difference(a, b, paired, alpha=ALPHA, power=POWER):
    """The true difference of means that this test, at level alpha, would detect with probability
    `power`, taking the observed spread for the true one (a plug-in estimate).

    Power of the two-sided t-test at a true difference delta: P(|T| > t_{1 - alpha/2, df}) with T
    noncentral t (df, delta / se); se = sd(a - b) / sqrt(n) when paired, else sqrt(s_a^2/n_a + s_b^2/n_b).
    Returns: delta (same units as a and b), or None with fewer than two values on a side.
    """
    from scipy import optimize, stats  # noqa: PLC0415

    estimate = difference_estimate(a, b, paired)
    se, df = estimate["se"], estimate["df"]
    if se is None:
        return None
    if se == 0:
        return 0.0
    critical = stats.t.ppf(1 - alpha / 2, df)

    def shortfall(delta):
        noncentrality = delta / se
        lower_tail = np.nan_to_num(stats.nct.cdf(-critical, df, noncentrality))  # ~0; scipy gives nan far out
        return stats.nct.sf(critical, df, noncentrality) + lower_tail - power

    upper = se * (critical + 3)
    while shortfall(upper) <= 0:  # few degrees of freedom (a near-constant side) need a larger difference
        upper *= 2
    return float(optimize.brentq(shortfall, 0.0, upper))
