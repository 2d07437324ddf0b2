"""Choosing the extractive answerer's refusal threshold (`generation.min_support`) from dev data.

A refusal threshold trades two errors: refusing a question the documents answer (a false refusal) and answering
one they do not (a false answer). Given the best evidence score of each dev question, answered with no threshold,
the curve gives both error rates at every threshold; the chosen threshold is the one with the fewest false answers
among those that keep false refusals within the target, the lowest such threshold when several tie.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CurvePoint:
    threshold: float
    false_refusals: float  # share of answerable questions whose best score is below the threshold
    false_answers: float  # share of unanswerable questions whose best score reaches it


def refusal_curve(answerable: list[float], unanswerable: list[float], thresholds: list[float]) -> list[CurvePoint]:
    """Both error rates per threshold (a question scoring exactly the threshold is answered, as in the answerer)."""
    if not answerable or not unanswerable:
        raise ValueError("calibration needs answerable and unanswerable questions")
    return [
        CurvePoint(
            t,
            sum(score < t for score in answerable) / len(answerable),
            sum(score >= t for score in unanswerable) / len(unanswerable),
        )
        for t in sorted(thresholds)
    ]


def choose_threshold(curve: list[CurvePoint], max_false_refusals: float) -> CurvePoint:
    """The point with the fewest false answers whose false refusals stay within `max_false_refusals`."""
    allowed = [p for p in curve if p.false_refusals <= max_false_refusals + 1e-12]
    if not allowed:
        raise ValueError(f"no threshold keeps false refusals within {max_false_refusals:.1%}")
    return min(allowed, key=lambda p: (p.false_answers, p.threshold))
