"""Confidence intervals for evaluation means: a seeded percentile bootstrap (scipy) or a Student t-interval.

Every function returns plain floats or None (never NaN): an interval needs at least two values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0


def _clean(values: Sequence[float | None]) -> np.ndarray:
    kept = [float(v) for v in values if v is not None and not math.isnan(float(v))]
    return np.asarray(kept, dtype=float)


def _interval_or_none(data: np.ndarray) -> dict[str, float | int | None] | None:
    """The answer when no interval can be computed (fewer than two values); None when one can."""
    n = int(data.size)
    if n == 0:
        return {"mean": None, "ci_low": None, "ci_high": None, "n": 0}
    if n < 2:
        return {"mean": _round(float(data.mean())), "ci_low": None, "ci_high": None, "n": n}
    return None


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), digits)


def bootstrap_ci(values: Sequence[float | None], confidence: float = CONFIDENCE, n_resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, float | int | None]:
    """Mean and percentile-bootstrap CI over the values (None values are dropped, counted out of `n`).

    Seeded, so the same values always give the same interval. With all values equal the interval is
    that value; with fewer than two values it is None.
    """
    data = _clean(values)
    trivial = _interval_or_none(data)
    if trivial is not None:
        return trivial
    n, mean = int(data.size), float(data.mean())
    if float(data.min()) == float(data.max()):
        return {"mean": _round(mean), "ci_low": _round(mean), "ci_high": _round(mean), "n": n}
    from scipy.stats import bootstrap

    result = bootstrap((data,), np.mean, confidence_level=confidence, n_resamples=n_resamples, method="percentile",
                       vectorized=True, rng=np.random.default_rng(seed))
    low, high = float(result.confidence_interval.low), float(result.confidence_interval.high)
    # a percentile interval always holds the sample mean of a non-degenerate sample, but keep it explicit
    return {"mean": _round(mean), "ci_low": _round(min(low, mean)), "ci_high": _round(max(high, mean)), "n": n}


def t_interval(values: Sequence[float | None], confidence: float = CONFIDENCE) -> dict[str, float | int | None]:
    """Mean and Student-t CI (for small samples of roughly normal values, e.g. per-repeat means)."""
    data = _clean(values)
    trivial = _interval_or_none(data)
    if trivial is not None:
        return trivial
    n, mean = int(data.size), float(data.mean())
    from scipy.stats import t

    sem = float(data.std(ddof=1)) / math.sqrt(n)
    half = float(t.ppf(0.5 + confidence / 2, n - 1)) * sem
    return {"mean": _round(mean), "ci_low": _round(mean - half), "ci_high": _round(mean + half), "n": n}
