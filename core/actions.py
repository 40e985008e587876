"""Suggested actions that name what to do and where, taken from the item's own words."""

from __future__ import annotations

import re

from core.taxonomy import CategorySpec

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_FILLER = re.compile(
    r"^(?:(?:hi|hello|hey|hiya|dear team|team|so|well|ok|okay|um|also|btw|fyi|just|"
    r"i think|i guess|i noticed that|i noticed|i found that|i found|it seems that|it seems|"
    r"please|pls|plz|hi there|hello there)[,!:.\s]+)+",
    re.IGNORECASE,
)
_PATH = re.compile(r"(?:https?://[^\s)\"']+|(?<![\w/])/[a-z0-9][\w./-]*[a-z0-9/])", re.IGNORECASE)
MAX_SUBJECT_WORDS = 14


def _best_sentence(text: str, spec: CategorySpec) -> str:
    sentences = [s.strip() for s in _SENTENCE.split(text) if len(s.strip()) > 2]
    if not sentences:
        return text.strip()
    cues = [c.lower() for c in spec.cues]

    def hits(sentence: str) -> int:
        lowered = sentence.lower()
        return sum(1 for cue in cues if cue in lowered)

    # First sentence wins ties: people usually lead with the point.
    return max(sentences, key=lambda s: (hits(s), -sentences.index(s)))


def subject_of(text: str, spec: CategorySpec) -> str:
    """The phrase an action is about: the sentence that best matches the category, trimmed."""
    sentence = _FILLER.sub("", _best_sentence(text, spec)).strip(" .!?,;:-")
    words = sentence.split()
    clipped = " ".join(words[:MAX_SUBJECT_WORDS])
    if len(words) > MAX_SUBJECT_WORDS:
        clipped += "…"
    if not clipped:
        return "this report"
    return f"“{clipped[0].lower() + clipped[1:] if clipped[:2].istitle() else clipped}”"


def location_of(text: str, page: str | None) -> str:
    if page:
        return page
    found = _PATH.search(text)
    return found.group(0).rstrip(".,;") if found else ""


def suggest_action(spec: CategorySpec, text: str, page: str | None) -> str:
    where = location_of(text, page)
    return spec.action.format(subject=subject_of(text, spec), where=f" on {where}" if where else "")


LEARNED_EVIDENCE = "action as reviewers wrote it for"  # how a card names the look-alike
LEARNED_SIMILARITY = 0.75  # how close a look-alike must be for its edited action to carry over


def _bare(subject: str) -> str:
    return subject.strip("“”")


def adapt_action(
    edited: str,
    spec: CategorySpec,
    lookalike_text: str,
    lookalike_page: str | None,
    text: str,
    page: str | None,
) -> str:
    """A reviewer's action for a look-alike, said of this item: where the edit quotes the
    look-alike's subject or names its page, this item's subject and page take their place
    (the rest of the edit, the team's own words, stays as it was)."""
    adapted = edited
    theirs, mine = _bare(subject_of(lookalike_text, spec)), _bare(subject_of(text, spec))
    if theirs and theirs != "this report" and theirs in adapted:
        adapted = adapted.replace(theirs, mine)
    where_then, where_now = location_of(lookalike_text, lookalike_page), location_of(text, page)
    if where_then and where_now and where_then != where_now and where_then in adapted:
        adapted = adapted.replace(where_then, where_now)
    return adapted


def learned_from(evidence: list[str]) -> str | None:
    """The evidence line that says whose edited action a triage took, if it took one."""
    return next((line for line in evidence if line.startswith(LEARNED_EVIDENCE)), None)
