"""Exact-match evidence for the names and numbers a question spells out, as a small boost of the fused top.

BM25 scores stemmed, lower-cased single words: "Kris Brown" matches a chunk about the Cleveland Browns and
one that names a Kris elsewhere as well as the chunk that names Kris Brown; "7" is no word at all once
tokenised with stopwords. Dense vectors barely see either. A question's multi-word capitalised names
("Kris Brown", "New York Times") and its numbers are the cues a reader would scan for, so each of the first
`CUE_DEPTH` fused chunks gets `weight` x (the share of the question's cues it contains verbatim, at word
boundaries, case-sensitive). A question without such cues keeps its fused ranking untouched.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

CUE_DEPTH = 30  # fused chunks re-scored: as many as a second-stage reranker looks at by default
_NAME = re.compile(r"\b[A-Z][\w'-]*(?:\s+[A-Z][\w'-]*)+")
_NUMBER = re.compile(r"(?<![\w.,])\d+(?:[.,]\d+)*(?![\w])")
# capitalised only because they start the question or are function words: not part of a name
_NOT_NAME = frozenset(
    "How What Which Who Whom Whose When Where Why Did Does Do Is Was Were Are Can Could Should Would Will "
    "In On At Of The A An And Or After Before From To For By With Than".split()
)


def query_cues(query: str) -> list[str]:
    """The question's multi-word capitalised names and its numbers, each once, in order of appearance."""
    names = []
    for match in _NAME.finditer(query):
        words = [word for word in match.group(0).split() if word not in _NOT_NAME]
        if len(words) > 1:
            names.append(" ".join(words))
    return list(dict.fromkeys(names + _NUMBER.findall(query)))


def boost_by_cues(
    fused: Sequence[tuple[str, float]], cues: list[str], texts: Callable[[list[str]], dict[str, str]], weight: float
) -> list[tuple[str, float]]:
    """`fused` (best first) with its first `CUE_DEPTH` items re-scored by the share of `cues` their text holds.

    `texts` maps chunk ids to their text; it is called only when there is something to look for.
    Ties keep the usual order (score, then id); items past the depth follow unchanged.
    """
    if not cues or weight <= 0 or not fused:
        return list(fused)
    head = list(fused[:CUE_DEPTH])
    found = texts([item for item, _ in head])
    patterns = [re.compile(r"(?<!\w)" + re.escape(cue) + r"(?!\w)") for cue in cues]
    rescored = [
        (item, score + weight * sum(1 for pattern in patterns if pattern.search(found.get(item, ""))) / len(patterns))
        for item, score in head
    ]
    return sorted(rescored, key=lambda kv: (-kv[1], kv[0])) + list(fused[CUE_DEPTH:])
