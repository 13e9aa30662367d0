"""The statistics behind every verdict of RESULTS.md: a summary of seeds, the paired or Welch t-test,
Holm's adjustment over a table, and the difference a test could have detected.

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


def difference_test(a, b, paired):
    """Test mean(a) == mean(b), two-sided, with scipy: the paired t-test (ttest_rel) when the runs are
    paired by seed (the same initial weights and batch order in both arms), Welch's unequal-variance
    t-test (ttest_ind, equal_var=False) otherwise.

    Inputs: a, b: sequences of numbers; paired a[i] with b[i] when paired (then len(a) == len(b)).
    Returns: dict with test ("paired t" or "Welch t"), t, df and p; t, df and p are None with fewer than
    two values on a side (or two pairs), and p is 1.0 or 0.0 when both sides are constant.
    """
    from scipy import stats  # noqa: PLC0415

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    name = "paired t" if paired else "Welch t"
    if len(a) < 2 or len(b) < 2:
        return {"test": name, "t": None, "df": None, "p": None}
    if (np.ptp(a - b) == 0) if paired else (np.ptp(a) == 0 and np.ptp(b) == 0):  # no spread: t is undefined
        return {"test": name, "t": None, "df": None, "p": 1.0 if np.mean(a) == np.mean(b) else 0.0}
    if paired:
        result, df = stats.ttest_rel(a, b), len(a) - 1
    else:
        result = stats.ttest_ind(a, b, equal_var=False)
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))  # Welch-Satterthwaite
    return {"test": name, "t": float(result.statistic), "df": float(df), "p": float(result.pvalue)}


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

    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if len(a) < 2 or len(b) < 2:
        return None
    if paired:
        se, df = np.std(a - b, ddof=1) / math.sqrt(len(a)), len(a) - 1
    else:
        va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1)) if va + vb > 0 else len(a) - 1
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
