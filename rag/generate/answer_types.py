"""What kind of answer a question expects, and the short spans of a sentence that could be it.

Heuristics on the question's wh-word and on the surface of the sentence (capitalised names, numbers with their
unit, dates, quoted or code-like terms), no model: they run in microseconds on 2 cores and need nothing installed.
The extractive answerer uses them twice: a sentence without a span of the expected kind is less likely to answer
("When ...?" needs a time), and the best span inside the chosen sentence leads the answer ("Timmy", "$750").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

from rag.text_units import content_terms


class Expected(str, Enum):
    YES_NO = "yes/no"
    PERSON = "person"
    TIME = "time"
    PLACE = "place"
    NUMBER = "number"
    REASON = "reason"
    ENTITY = "entity"  # what / which / how: a name, a term or a phrase

    @property
    def strict(self) -> bool:
        """A sentence without a span of this kind cannot be the answer."""
        return self in (Expected.PERSON, Expected.TIME, Expected.NUMBER)


_AUXILIARIES = frozenset("is are was were am do does did can could will would shall should has have had may might must".split())
_AUX = r"(?:is|are|was|were|am|do|does|did|can|could|will|would|shall|should|has|have|had|may|might|must)"
_YES_NO = re.compile(rf"^(?:{_AUX}|isn't|aren't|wasn't|weren't|don't|doesn't|didn't|can't|won't|hasn't|haven't)\b", re.I)
_MONTHS = "january|february|march|april|may|june|july|august|september|october|november|december"
_MONTH_ABBR = "jan|feb|mar|apr|jun|jul|aug|sep|sept|oct|nov|dec"
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|sixteen|seventeen|"
    "eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|hundred|thousand|million|billion|dozen|"
    "half|once|twice|several|single|both|first|second|third|fourth|fifth"
)
_TIME_WORDS = r"(?:seconds?|minutes?|hours?|days?|nights?|weeks?|months?|years?|decades?|centuries|century|quarters?|semesters?)"
_TIME_QUESTION = re.compile(
    rf"^(?:when|what time|(?:what|which|in what) (?:year|date|day|month|decade|century|season|time|period|era)s?\b"
    rf"|how long ago|since when|until when|by when)|\b(?:what|which) (?:year|date|day|month|decade)\b",
    re.I,
)
_NUMBER_QUESTION = re.compile(
    r"^(?:how (?:many|much|old|far|long|big|large|tall|high|fast|often|deep|wide|heavy|quickly|soon|late|early)"
    r"|(?:what|which) (?:is the |was the )?(?:number|percentage|percent|amount|price|cost|rate|size|age|share|total|"
    r"figure|limit|cap|budget|fee|salary|score|count|speed|length|duration|distance|temperature|value|port|version)\b)",
    re.I,
)
_QUANTITY_NOUN = re.compile(
    r"\b(?:rate|cost|price|cap|limit|fee|salary|budget|percentage|amount|allowance|number of|total|age|port|"
    r"population|temperature|distance|score|reimbursement|discount|deposit|charge)s?\b"
)
_DEFINITION = re.compile(
    r"^(?:what|which)\b.*\b(?:mean|means|stand for|stands for)\b|^what(?:'s| is| are| was| were) (?:a |an |the |our |my )?[\w\s-]+\??$", re.I
)
_DATE = re.compile(
    rf"\b(?:(?:{_MONTHS}|(?:{_MONTH_ABBR})\.?)\s+\d{{1,2}}(?:st|nd|rd|th)?(?:\s*[-\u2013]\s*\d{{1,2}})?(?:,?\s+\d{{4}})?"
    rf"|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?(?:{_MONTHS})(?:,?\s+\d{{4}})?"
    rf"|(?:early |late |mid-?)?(?:{_MONTHS})(?:\s+(?:of\s+)?\d{{4}})?"
    r"|(?:(?:in|since|by|until|from|during|before|after) )?(?:the )?(?:1[0-9]|20)\d\d(?:s|\s*[-\u2013]\s*\d{2,4})?"
    r"|\d{4}-\d{2}-\d{2}|\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?(?:\s*(?:to|-|\u2013)\s*\d{1,2}:\d{2}(?:\s*[ap]\.?m\.?)?)?"
    r"|(?:monday|tuesday|wednesday|thursday|friday|saturday|sunday)s?|(?:yesterday|today|tomorrow|tonight)"
    r"|(?:last|next|this|every) (?:week|month|year|night|morning|evening|summer|winter|spring|fall|autumn|weekend)"
    rf"|(?:the )?(?:{_NUMBER_WORDS}|\d+|a few|a couple of|several) {_TIME_WORDS}(?: (?:ago|later|earlier|before|after))?)\b",
    re.I,
)
_DURATION = re.compile(rf"\b(?:{_NUMBER_WORDS}|\d+|a few|a couple of|several) {_TIME_WORDS}\b", re.I)  # "30 days": how long, a count
_NUMBER = re.compile(
    rf"(?:[$\u20ac\u00a3]\s?\d[\d,]*(?:\.\d+)?(?:\s?(?:[kmb]n?|million|billion|thousand)\b)?|(?<![\w-])\d[\d,]*(?:\.\d+)?(?:st|nd|rd|th)?(?![\w-]*-\d)"
    rf"|\b(?:{_NUMBER_WORDS})\b(?:[- ](?:{_NUMBER_WORDS})\b)*)"
    r"(?:\s?(?:%|percent\b|per cent\b))?"
    r"(?:(?:[- ](?:[a-z][\w./-]*|[A-Z]{1,3}[a-z]?\b)){0,3}|(?<=\d)[A-Z][a-z]?\b)"  # the unit: "14 characters", "50 GB", "8Gi"
)
_NAME = re.compile(
    r"\b[A-Z][\w'\u2019.-]*(?:\s+(?:(?:of|de|da|van|von|the|and|du|del|la|le|al|bin|y)\s+)?[A-Z][\w'\u2019.-]*)*"
)
_CODE = re.compile(r"(?:[\"\u201c][^\"\u201c\u201d]{1,60}[\"\u201d]|`[^`]{1,60}`|(?<![\w/~])[/~]?[\w-]+(?:[./:][\w-]+)+\b|\b[A-Z]{2,}[-_]?\d+\b)")
_ROLE = re.compile(
    r"\b(?:(?:the|a|an|his|her|their|our|your|its|my) )?(?:(?!(?:the|a|an|his|her|their|our|your|its|my|is|was|are|were|be|met|to|by|of|for|with|and|or)\b)[A-Za-z-]+ ){0,2}(?:director|manager|head|officer|lead|president|vp|ceo|cfo|cto|coo|owner|chair|"
    r"committee|board|team|department|approver|administrator|admin|supervisor|founder|mother|father|wife|husband|"
    r"friend|brother|sister|son|daughter|teacher|doctor|author|police|king|queen)s?\b",
    re.I,
)
_CALENDAR_WORD = re.compile(rf"(?:{_MONTHS}|monday|tuesday|wednesday|thursday|friday|saturday|sunday)", re.I)
_REASON = re.compile(r"\b(?:because(?: of)?|since|due to|as a result of|so that|in order to|owing to|thanks to)\b", re.I)
_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot|without)\b|n't\b", re.I)
_CLAUSE_END = re.compile(r"[,;:()]|\s[\u2013\u2014-]\s|\.(?:\s|$)")
_PLACE_PREPOSITIONS = re.compile(r"\b(?:in|at|from|to|near|inside|outside|into|on|across|through)\s+$", re.I)
_LEADING = {"the", "a", "an", "and", "or", "but", "of", "in", "on", "at", "to", "for", "by", "with", "is", "was", "are",
            "were", "be", "been", "that", "which", "who", "it", "its", "their", "his", "her", "as", "from", "than", "then"}
_SENTENCE_STARTERS = {"The", "A", "An", "This", "That", "These", "Those", "It", "He", "She", "They", "We", "I", "You",
                      "There", "In", "On", "At", "For", "If", "When", "After", "Before", "But", "And", "As", "His", "Her",
                      "Their", "Our", "My", "Your", "Its", "One", "Some", "All", "Each", "Every", "No", "Yes", "So"}


@dataclass(frozen=True, slots=True)
class SpanCandidate:
    """A short span of a sentence: `sentence[start:end] == text`."""

    start: int
    end: int
    text: str
    kind: Expected


def expected_answer(question: str) -> Expected:
    q = " ".join(question.strip().split())
    q = re.sub(r"^(?:and|so|but|also|then|ok|okay)\b[,\s]*", "", q, flags=re.I)  # "and when ...?"
    q = re.sub(r"^(?:(?:please |can you |could you )?(?:tell me|do you know|i want to know|i'd like to know)|in your opinion)\b[,\s]*", "", q, flags=re.I)
    lowered = q.lower()
    if _YES_NO.match(q) and not re.search(r"\bor\b", lowered):
        return Expected.YES_NO
    if _TIME_QUESTION.search(q):
        return Expected.TIME
    if _NUMBER_QUESTION.search(q) or re.match(r"^(?:what|which)\b", lowered) and _QUANTITY_NOUN.search(lowered):
        return Expected.NUMBER
    if re.match(r"^(?:who|whom|whose)\b", lowered) or re.match(r"^(?:what|which) (?:person|man|woman|people|author|company|team|character)\b", lowered):
        return Expected.PERSON
    if re.match(r"^where\b", lowered) or re.match(r"^(?:what|which|in what|in which) (?:place|city|country|state|town|location|region|street|room|building|office)\b", lowered):
        return Expected.PLACE
    if re.match(r"^(?:why|for what reason|what (?:is|was) the reason|what (?:caused|causes)|how come)\b", lowered):
        return Expected.REASON
    for word in ("when", "where", "who", "how many", "how much"):  # the wh-word later in the question ("The dog was found where?")
        if re.search(rf"\b{word}\b", lowered):
            return {"when": Expected.TIME, "where": Expected.PLACE, "who": Expected.PERSON}.get(word, Expected.NUMBER)
    return Expected.ENTITY


def asks_duration(question: str) -> bool:
    """"How long / how quickly / how soon ...?", "how many (vacation) days ...?": a duration ("30 days") answers it,
    though it reads like a date."""
    return bool(re.search(rf"\bhow (?:(?:long|quickly|soon)\b(?! ago)|(?:many|much)(?: [\w-]+){{0,2}} {_TIME_WORDS}\b)", question, re.I))


def asked_unit(question: str) -> set[str]:
    """What a how-many/how-much question counts ("How many vacation days ..." -> vacation, days): a figure with
    that unit answers it, a figure of another unit in the same sentence ("5 years") does not."""
    match = re.search(r"\bhow (?:many|much)((?: [\w-]+){1,3})", question, re.I)
    if not match:
        return set()
    words = []
    for word in match.group(1).split():
        if word.lower() in _AUXILIARIES:
            break
        words.append(word)
    return set(content_terms(" ".join(words)))


def question_figures(question: str) -> set[str]:
    """The figures a question already states, number words as digits ("six years" -> 6)."""
    words = {w: str(v) for v, w in enumerate("zero one two three four five six seven eight nine ten eleven twelve".split())}
    found = {f.rstrip(".,").replace(",", "") for f in re.findall(r"\d[\d,.]*", question)}
    return found | {words[w] for w in re.findall(r"[a-z]+", question.lower()) if w in words}


def span_candidates(sentence: str, kind: Expected, durations: bool = False) -> list[SpanCandidate]:
    """Spans of `sentence` that could answer a question of this kind (possibly overlapping), in text order;
    `durations`: a count of days or hours is a figure (the question asks how long), not a date."""
    found: list[SpanCandidate] = []

    def add(start: int, end: int, as_kind: Expected) -> None:
        article = re.match(r"(?:the|a|an)\s+(?=\w)", sentence[start:end], re.I)
        start += article.end() if article else 0
        text = sentence[start:end].rstrip(" ,;:.")
        if text.strip():
            found.append(SpanCandidate(start, start + len(text), text, as_kind))

    if kind == Expected.TIME:
        for m in _DATE.finditer(sentence):
            add(m.start(), m.end(), kind)
    elif kind == Expected.NUMBER:
        dates = [(m.start(), m.end()) for m in _DATE.finditer(sentence) if re.search(r"[a-z]", m.group(0), re.I) and not (durations and _DURATION.search(m.group(0)))]
        for m in _NUMBER.finditer(sentence):
            if not any(start <= m.start() < end for start, end in dates):  # "March 12" is a date, not a count
                add(m.start(), _trim_unit(sentence, m.start(), m.end()), kind)
    elif kind in (Expected.PERSON, Expected.PLACE):
        if kind == Expected.PERSON:
            for m in _ROLE.finditer(sentence):
                add(m.start(), m.end(), kind)
        if kind == Expected.PLACE:
            for m in _CODE.finditer(sentence):
                add(m.start(), m.end(), kind)
        for m in _NAME.finditer(sentence):
            start, text = m.start(), m.group(0)
            first, _, rest = text.partition(" ")
            if _opens_clause(sentence, start) and (first in _SENTENCE_STARTERS or not rest):
                if not rest:
                    continue  # "Working with ..." at the start of a sentence or quote: not a name
                start, text = start + len(first) + 1, rest
            if text.isupper() and len(text) > 4 or _CALENDAR_WORD.fullmatch(text):
                continue  # a dateline ("ALMAR, Afghanistan"), a shouted heading, a month or a weekday
            add(start, start + len(text), kind)
        if kind == Expected.PLACE:
            for m in re.finditer(r"\b(?:in|at|on|near|inside|under|behind|into) ((?:the|a|an|his|her|their|my|our) [\w'-]+(?: [\w'-]+)?)", sentence, re.I):
                add(m.start(1), m.end(1), kind)
    elif kind == Expected.REASON:
        for m in _REASON.finditer(sentence):
            end = _CLAUSE_END.search(sentence, m.end())
            add(m.start(), end.start() if end else len(sentence), kind)
    elif kind == Expected.ENTITY:
        for pattern in (_CODE, _NAME, _NUMBER):
            for m in pattern.finditer(sentence):
                if pattern is _NAME and " " not in m.group(0) and _opens_clause(sentence, m.start()):
                    continue  # "Grants vest over ...": a capitalised first word, not a name
                add(m.start(), m.end(), kind)
    return sorted(found, key=lambda c: (c.start, -c.end))


def best_span(question: str, sentence: str, kind: Expected | None = None) -> SpanCandidate | None:
    """The short span of `sentence` that answers `question`: a candidate of the expected kind that repeats none of
    the question's words, nearest to where the sentence matches the question; for what/which/how questions without
    such a candidate, the phrase that follows the matched words up to the next clause break. None when unsure."""
    kind = kind or expected_answer(question)
    if kind == Expected.YES_NO:
        return None
    asked = set(content_terms(question))
    anchors = [m.start() for m in re.finditer(r"\w+", sentence) if set(content_terms(m.group(0))) & asked] or [0]
    if kind == Expected.ENTITY and _DEFINITION.search(question.strip()):
        phrase = _phrase_after_anchor(sentence, asked)
        if phrase is not None:
            return phrase
    unit = asked_unit(question) if kind == Expected.NUMBER else set()
    stated = question_figures(question)
    # the unit words ("days") mark every figure of a table row; the other question words ("years") say which one
    keyed = [m.start() for m in re.finditer(r"\w+", sentence) if set(content_terms(m.group(0))) & (asked - unit)] or anchors
    candidates = [
        c for c in span_candidates(sentence, kind, asks_duration(question))
        if (set(content_terms(c.text)) - asked or _is_figure(c)) and not _repeats_figure(c, stated)
    ]
    if candidates:
        return min(candidates, key=lambda c: (
            kind == Expected.PLACE and not _PLACE_PREPOSITIONS.search(sentence[: c.start]),
            bool(unit) and not _has_unit(c, unit),  # "how many days": "25 days", not "5 years"
            bool(set(content_terms(c.text)) & asked - unit),  # a span repeating the question's words is a weaker answer
            _distance(c, [a for a in keyed if not c.start <= a < c.end] or anchors),  # nearest the row's key, not its own unit
            -len(set(content_terms(c.text)) - asked),  # at the same place, the span that says more
        ))
    if kind in (Expected.ENTITY, Expected.PLACE):
        return _phrase_after_anchor(sentence, asked)
    return None


def yes_or_no(question: str, sentence: str) -> str:
    """"No" when the evidence negates what the question asks (a negation the question does not have), else "Yes"."""
    return "No" if len(_NEGATION.findall(sentence)) > len(_NEGATION.findall(question)) else "Yes"


def _trim_unit(sentence: str, start: int, end: int) -> int:
    """Keep a unit word after a figure ("14 characters") but not a following verb or article ("14 and the")."""
    words = list(re.finditer(r"\S+", sentence[start:end]))
    keep = start + words[0].end() if words else end
    kept_words = words[:1]
    for word in words[1:]:
        token = word.group(0).lower().strip(",.;:")
        if token in _LEADING or not token or not re.match(r"[a-z%$]", token[0]) and not token[0].isdigit():
            break
        keep = start + word.end()
        kept_words.append(word)
    if len(kept_words) > 1 and kept_words[-1].group(0).lower() in ("per", "a", "each", "every"):
        keep = start + kept_words[-2].end()  # "20 vacation days per" -> "20 vacation days"
    return keep


def _opens_clause(sentence: str, start: int) -> bool:
    before = sentence[:start]
    return not before.strip(" \"'\u201c\u2018([\u2014\u2013-") or before.rstrip().endswith((":", "\u201c", '"'))



def _is_figure(candidate: SpanCandidate) -> bool:
    return candidate.kind in (Expected.NUMBER, Expected.TIME) and any(ch.isdigit() for ch in candidate.text)


def _repeats_figure(candidate: SpanCandidate, stated: set[str]) -> bool:
    """A figure the question already states ("after 5 years" asked, "5 years" found) is not its answer."""
    figures = [f.rstrip(".,").replace(",", "") for f in re.findall(r"\d[\d,.]*", candidate.text)]
    return bool(figures) and all(f in stated for f in figures)


def _has_unit(candidate: SpanCandidate, unit: set[str]) -> bool:
    return bool(set(content_terms(candidate.text)) & unit)


def _distance(candidate: SpanCandidate, anchors: list[int]) -> int:
    return min(candidate.start - a if a < candidate.start else max(0, a - candidate.end) for a in anchors)


def _phrase_after_anchor(sentence: str, asked: set[str]) -> SpanCandidate | None:
    """The words after the first question word the sentence repeats, up to a clause break (at most 8 words)."""
    words = list(re.finditer(r"[\w'\u2019$%.-]+", sentence))
    matched = [i for i, w in enumerate(words) if set(content_terms(w.group(0))) & asked]
    if not matched:
        return None
    for index in matched:
        phrase: list[re.Match[str]] = []
        for word in words[index + 1 :]:
            gap = sentence[(phrase[-1] if phrase else words[index]).end() : word.start()]
            if phrase and _CLAUSE_END.search(gap + " ") or set(content_terms(word.group(0))) & asked or len(phrase) >= 8:
                break
            phrase.append(word)
        while phrase and phrase[0].group(0).lower() in _LEADING:
            phrase.pop(0)
        while phrase and phrase[-1].group(0).lower() in _LEADING:
            phrase.pop()
        if phrase and content_terms(" ".join(w.group(0) for w in phrase)):
            start, end = phrase[0].start(), phrase[-1].end()
            text = sentence[start:end].rstrip(".")
            return SpanCandidate(start, start + len(text), text, Expected.ENTITY)
    return None
