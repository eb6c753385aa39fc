"""Statistics fixed before any number is seen: per-seed loss ratios, their geometric mean, a 95%
t-interval on the log ratios, a paired t-test, and the verdict rules.

A comparison pairs a *control* arm with the arm the paper says is better (the *treatment*), seed
by seed: ratio_i = loss_control,i / loss_treatment,i, so a ratio above 1 means the paper's
direction. The analysis is on d_i = log ratio_i (a paired t-test on log losses):

    gm = exp(mean d),   95% CI = exp(mean d ± t_{0.975, n−1} · sd(d) / √n),   t = mean d / se

Verdicts (`verdict`), for a claim whose paper ratio is R and whose bar is `reproduced_at`:
- reproduced: CI entirely above 1 and gm ≥ reproduced_at;
- direction only: CI entirely above 1, gm below the bar;
- reversed: CI entirely below 1;
- not reproduced: the CI contains 1.

The t distribution is computed here (no scipy): its CDF through the regularised incomplete beta
function (continued fraction, Numerical Recipes §6.4), its quantile by bisection.
"""

from __future__ import annotations

import math

VERDICTS = ("reproduced", "direction only", "not reproduced", "reversed")
RULES = (
    "- **reproduced**: the 95% interval of the ratio lies above 1 and its geometric mean reaches "
    "the claim's bar;\n"
    "- **direction only**: the interval lies above 1 but the geometric mean is below the bar;\n"
    "- **not reproduced**: the interval contains 1 (no detectable difference);\n"
    "- **reversed**: the interval lies below 1 (the other arm is better).")


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-15:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """Regularised incomplete beta I_x(a, b), a, b > 0, x in [0, 1]."""
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc: x = {x}, expected a number in [0, 1]")
    if x in (0.0, 1.0):
        return x
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                     + a * math.log(x) + b * math.log1p(-x))
    if x < (a + 1.0) / (a + b + 2.0):  # the fraction converges fast here; else use symmetry
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def t_cdf(t: float, df: float) -> float:
    """P(T ≤ t) for Student's t with `df` degrees of freedom."""
    if df <= 0:
        raise ValueError(f"t_cdf: df = {df}, expected > 0")
    if math.isinf(t):
        return 1.0 if t > 0 else 0.0
    tail = 0.5 * betainc(df / 2.0, 0.5, df / (df + t * t))  # P(T > |t|)
    return 1.0 - tail if t > 0 else tail


def t_quantile(p: float, df: float) -> float:
    """The t with P(T ≤ t) = p (bisection; |error| < 1e-10)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"t_quantile: p = {p}, expected a number in (0, 1)")
    lo, hi = -1.0, 1.0
    while t_cdf(lo, df) > p:
        lo *= 2.0
    while t_cdf(hi, df) < p:
        hi *= 2.0
    while hi - lo > 1e-10:
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if t_cdf(mid, df) < p else (lo, mid)
    return 0.5 * (lo + hi)


def compare(control: list[float], treatment: list[float]) -> dict:
    """Paired comparison of per-seed losses (lower is better; same seed order in both).

    Returns ratios (control / treatment), gm, ci95 [lo, hi] (None below 2 seeds), t, p (two-sided),
    n, and the treatment's and control's mean and std over seeds.
    """
    if len(control) != len(treatment) or not control:
        raise ValueError(f"compare: {len(control)} control and {len(treatment)} treatment "
                         "losses, expected the same number >= 1 (one per seed)")
    if min(*control, *treatment) <= 0:
        raise ValueError("compare: losses must be > 0 (a ratio of losses)")
    ratios = [c / x for c, x in zip(control, treatment)]
    d = [math.log(r) for r in ratios]
    n, mean = len(d), sum(d) / len(d)
    out = {"n": n, "ratios": ratios, "gm": math.exp(mean), "ci95": None, "t": None, "p": None,
           "control": _moments(control), "treatment": _moments(treatment)}
    if n < 2:
        return out
    sd = math.sqrt(sum((x - mean) ** 2 for x in d) / (n - 1))
    se = sd / math.sqrt(n)
    if se == 0:  # every seed gave the same ratio
        out.update(ci95=[out["gm"], out["gm"]], t=math.copysign(math.inf, mean) if mean else 0.0,
                   p=0.0 if mean else 1.0)
        return out
    q = t_quantile(0.975, n - 1)
    t = mean / se
    out.update(ci95=[math.exp(mean - q * se), math.exp(mean + q * se)], t=t,
               p=2.0 * (1.0 - t_cdf(abs(t), n - 1)))
    return out


def _moments(values: list[float]) -> dict:
    n = len(values)
    mean = sum(values) / n
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1)) if n > 1 else 0.0
    return {"mean": mean, "std": std}


def verdict(result: dict, reproduced_at: float) -> str:
    """One of `VERDICTS` for a `compare` result (see the module docstring)."""
    if result["ci95"] is None:
        return "not reproduced"  # one seed: no interval, no claim either way
    lo, hi = result["ci95"]
    if lo > 1.0:
        return "reproduced" if result["gm"] >= reproduced_at else "direction only"
    if hi < 1.0:
        return "reversed"
    return "not reproduced"
