"""Follow-up questions made standalone without an LLM.

A chat turn is one of three things, told apart by its surface:
- a fragment that leans on the previous question ("And after five years?", "What about managers?", "And in New
  York?"): the previous standalone question is repeated with the fragment in place of the phrase it replaces
  (the same preposition: "in Toronto" -> "in New York"; else the fragment is appended);
- a question with a word that points back ("When do employees become eligible for it?", "How long did it last?")
  and few words of its own: it keeps its own wording (which decides the kind of answer expected) and the previous
  question's topic words are added;
- anything else is a new topic and is asked alone, so an earlier question cannot pull the search elsewhere.
"""

from __future__ import annotations

import re

from rag.text_units import content_terms

_FRAGMENT_LEAD = re.compile(
    r"^(?:(?:and|but|also|so|ok|okay|then)\b[,\s]*)?(?:(?:what|how) about|and (?:what|how) about|what if|how about|and for|and in|and on|and at|"
    r"and after|and before|and with|and without|and the|and a|and an|and)\b[,\s]*",
    re.I,
)
_WH = re.compile(r"\b(?:who|whom|whose|what|when|where|which|why|how)\b", re.I)
_AUX_START = re.compile(
    r"^(?:is|are|was|were|do|does|did|can|could|will|would|should|has|have|had|may|might|must)\b", re.I
)
_POINTS_BACK = re.compile(r"\b(?:it|its|they|them|their|theirs|this|that|these|those|he|him|his|she|her|hers|there|one|ones|the same)\b", re.I)
_PREPOSITION = re.compile(r"^(in|for|on|at|after|before|with|without|during|from|to|under|over|above|below|within|per|by)\s+(.+)$", re.I)
MAX_OWN_TERMS = 3  # a question pointing back with at most this many words of its own is a follow-up


def condense(question: str, previous: str) -> tuple[str, str]:
    """(standalone question, how it was made: "fragment", "points back" or "new topic")."""
    asked = " ".join(question.strip().split())
    core, fragment, lead_removed = _parse(asked)
    own_terms = content_terms(lead_removed)
    is_question = bool(_WH.search(lead_removed)) or bool(_AUX_START.match(lead_removed))
    if fragment and not is_question or not is_question and len(own_terms) <= MAX_OWN_TERMS:
        return _substitute(previous, fragment_text(core, fragment)), "fragment"
    if _POINTS_BACK.search(lead_removed) and len(own_terms) <= MAX_OWN_TERMS:
        topic = [w for w in _topic_words(previous) if w.lower() not in lead_removed.lower()]
        return (f"{lead_removed.rstrip('?')} ({' '.join(topic)})?" if topic else asked), "points back"
    return asked, "new topic"


def fragment_of(question: str) -> str:
    """What a fragment follow-up asks anew ("And after five years?" -> "after five years"): the answer must be
    about it, not about the part repeated from the previous question."""
    core, fragment, _ = _parse(" ".join(question.strip().split()))
    return fragment_text(core, fragment)


def _parse(asked: str) -> tuple[str, re.Match[str] | None, str]:
    """The question without its end punctuation, its fragment lead ("and what about"), and the rest."""
    core = asked.rstrip("?.! ")
    fragment = _FRAGMENT_LEAD.match(core)
    lead_removed = core[fragment.end() :] if fragment else core
    return core, fragment, re.sub(r"^(?:and|but|also)\b[,\s]*", "", lead_removed, flags=re.I)


def condense_history(question: str, earlier: list[str]) -> tuple[str, str]:
    """Condense `question` against the standalone form of the earlier user turns (oldest first)."""
    previous = ""
    for turn in earlier:
        previous = condense(turn, previous)[0] if previous else turn
    if not previous:
        return question, "new topic"
    return condense(question, previous)


def fragment_text(core: str, fragment: re.Match[str] | None) -> str:
    """What the fragment adds, keeping a leading preposition the lead swallowed ("and in New York" -> "in New York")."""
    if fragment is None:
        return core
    lead = fragment.group(0).lower().split()
    rest = core[fragment.end() :]
    preposition = lead[-1] if lead and _PREPOSITION.match(f"{lead[-1]} x") else ""
    return f"{preposition} {rest}".strip()


def _substitute(previous: str, fragment: str) -> str:
    base = previous.strip().rstrip("?.! ")
    if not base:
        return fragment
    match = _PREPOSITION.match(fragment)
    if match:
        preposition = match.group(1).lower()
        same = list(re.finditer(rf"\b{preposition}\s+[^,;?.]+?(?=\s+(?:in|for|on|at|after|before|with|during|from|to|per|by)\b|[,;?.]|$)", base, re.I))
        if same:
            last = same[-1]
            return f"{base[: last.start()]}{fragment}{base[last.end():]}?"
    return f"{base} {fragment}?"


def _topic_words(question: str) -> list[str]:
    """The words of a question that carry its topic (no question words, stopwords or auxiliaries)."""
    words = re.findall(r"[\w$%.,'-]+", question)
    kept = [w.strip(".,") for w in words if content_terms(w) and not _WH.fullmatch(w) and not _AUX_START.fullmatch(w)]
    return list(dict.fromkeys(kept))
