"""Choosing the extractive answerer's refusal threshold (`generation.min_support`) from dev data, and the one
evidence signal besides the score that tells a question the documents are silent on: names it asks about that
the best passage never mentions.

A refusal threshold trades two errors: refusing a question the documents answer (a false refusal) and answering
one they do not (a false answer). Given the best evidence score of each dev question, answered with no threshold,
the curve gives both error rates at every threshold; the chosen threshold is the one with the fewest false answers
among those that keep false refusals within the target, the lowest such threshold when several tie.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

_TOKEN = re.compile(r"[\w$][\w.,'’()$-]*")
_SENTENCE_END = re.compile(r"[.?!:]$")
_POSSESSIVE = re.compile(r"['’]s$")


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


def question_names(question: str) -> list[str]:
    """The names and figures a question asks about: capitalised words not opening a sentence ("Lisbon", "Wi-Fi"),
    and tokens with a digit ("5.0", "401(k)", "$2,000"). People rarely paraphrase these, unlike common words.
    Possessives are cut ("Shakespeare's"), contractions ("I'm") and short acronyms ("US", "PC", "API": often
    spelt out in the text) are left out."""
    names: list[str] = []
    opens_sentence = True
    for raw in _TOKEN.findall(question):
        token = _POSSESSIVE.sub("", raw.rstrip(".,?!")).strip(".,'\u2019-")
        token = token.strip("()") if token.count("(") != token.count(")") else token
        named = token and "'" not in token and "\u2019" not in token and not (token.isupper() and len(token) <= 4 and token.isalpha())
        if named and (any(c.isdigit() for c in token) or (token[0].isupper() and not opens_sentence)):
            names.append(token)
        opens_sentence = bool(_SENTENCE_END.search(raw))
    return list(dict.fromkeys(names))


def missing_names(question: str, text: str) -> list[str]:
    """The question's names and figures that `text` does not contain (case, accents and thousands separators
    ignored: "Topbas" is found in "Topba\u015f", "$2000" in "$2,000")."""
    folded = _fold(text)
    return [name for name in question_names(question) if _fold(name) not in folded]


def _fold(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).lower().replace(",", "")
