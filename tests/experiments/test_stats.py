"""The fixed-in-advance statistics against closed forms and tabulated values.

For 2 degrees of freedom Student's t has a closed form, F(t) = 1/2 + t / (2 √(2 + t²)), and for
1 the Cauchy CDF 1/2 + atan(t)/π; with 3 seeds every interval and p-value is at 2 degrees of
freedom, so each case below is checked against arithmetic written out here.
"""

from __future__ import annotations

import math

import pytest

from canvas_engineering.experiments import stats


def t2_cdf(t):
    return 0.5 + t / (2 * math.sqrt(2 + t * t))


def t2_quantile(p):
    a = 2 * p - 1
    return a * math.sqrt(2 / (1 - a * a))


@pytest.mark.parametrize("t", [-3.0, -0.5, 0.0, 0.7, 2.0, 9.0])
def test_t_cdf_matches_the_closed_forms(t):
    assert stats.t_cdf(t, 2) == pytest.approx(t2_cdf(t), abs=1e-10)
    assert stats.t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-10)


def test_t_quantiles_match_the_tables():
    # two-sided 95% critical values from any t table
    for df, q in [(1, 12.706), (2, 4.303), (4, 2.776), (10, 2.228), (30, 2.042)]:
        assert stats.t_quantile(0.975, df) == pytest.approx(q, abs=1e-3)
    assert stats.t_quantile(0.975, 2) == pytest.approx(t2_quantile(0.975), abs=1e-8)
    assert stats.t_cdf(2.0, 5) == pytest.approx(0.949030, abs=1e-6)  # tabulated


def reference(ratios):
    """gm, CI and two-sided p of the log ratios by hand (3 seeds: 2 degrees of freedom)."""
    d = [math.log(r) for r in ratios]
    mean = sum(d) / 3
    se = math.sqrt(sum((x - mean) ** 2 for x in d) / 2) / math.sqrt(3)
    q = t2_quantile(0.975)
    t = mean / se
    return math.exp(mean), (math.exp(mean - q * se), math.exp(mean + q * se)), \
        2 * (1 - t2_cdf(abs(t)))


@pytest.mark.parametrize("ratios, verdict", [
    ([2.0, 1.6, 1.8], "reproduced"),  # gm 1.79 >= 1.5, interval above 1
    ([1.2, 1.1, 1.15], "direction only"),  # interval above 1, gm 1.15 < 1.5
    ([1.3, 0.8, 1.0], "not reproduced"),  # interval contains 1
    ([0.5, 0.6, 0.55], "reversed"),  # interval below 1
])
def test_compare_and_each_verdict(ratios, verdict):
    treatment = [0.1, 0.2, 0.3]
    control = [r * x for r, x in zip(ratios, treatment)]
    result = stats.compare(control, treatment)
    gm, (lo, hi), p = reference(ratios)
    assert result["ratios"] == pytest.approx(ratios)
    assert result["gm"] == pytest.approx(gm)
    assert result["ci95"] == pytest.approx([lo, hi], rel=1e-7)
    assert result["p"] == pytest.approx(p, rel=1e-6)
    assert stats.verdict(result, reproduced_at=1.5) == verdict


def test_equal_ratios_and_one_seed():
    same = stats.compare([2.0, 4.0, 6.0], [1.0, 2.0, 3.0])  # every seed exactly 2x
    assert same["ci95"] == pytest.approx([2.0, 2.0]) and same["p"] == 0.0
    assert stats.verdict(same, 1.5) == "reproduced"
    one = stats.compare([2.0], [1.0])
    assert one["ci95"] is None and stats.verdict(one, 1.5) == "not reproduced"
    with pytest.raises(ValueError, match="one per seed"):
        stats.compare([1.0, 2.0], [1.0])
