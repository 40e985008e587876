"""Features the model reads, and the cold-start prior that needs no labels.

Numpy only: the learned heads sit on top of these in `core.backends.heads`.
The prior makes a fresh install useful before anyone has validated anything: similarity
to the taxonomy's descriptions and examples, the taxonomy's lexical cues, the website
form type, and cheap noise signals.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import numpy as np

from core.governance import noise_signals
from core.ports import Encoder
from core.taxonomy import Taxonomy

_TOKEN = re.compile(r"[a-z0-9][a-z0-9_'+#.-]*[a-z0-9+#]|[a-z0-9]")
# How much each prior component moves a logit; tuned on examples/feedback.jsonl.
SIMILARITY_SCALE = 12.0
CUE_WEIGHT = 0.9
FORM_WEIGHT = 2.0
NOISE_SIGNAL_WEIGHT = 1.2


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower())


def lexical_counts(text: str, buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashed n-gram ids (unique, sorted) and their counts: a linear model over them is a
    bag-of-n-grams model, which beats frozen sentence embeddings on technical text.

    The first half of the id space holds words and word pairs, the second half character
    2-5-grams inside words (robust to typos, inflections, identifiers like `npm` or `0x80`).
    crc32 (not hash()) so ids are the same in every process and in saved models.
    """
    half = buckets // 2
    words = tokens(text)
    grams = words + [f"{a} {b}" for a, b in zip(words, words[1:], strict=False)]
    ids = [zlib.crc32(g.encode("utf-8")) % half for g in grams]
    for word in words:
        padded = f" {word} "
        for n in range(2, 6):
            for i in range(len(padded) - n + 1):
                ids.append(half + zlib.crc32(padded[i : i + n].encode("utf-8")) % half)
    if not ids:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
    unique, counts = np.unique(np.array(ids, dtype=np.int64), return_counts=True)
    return unique, counts.astype(np.float32)


# What a sentence encoder should not spend its few hundred tokens on (see `encoder_view`).
_HTML_COMMENT = re.compile(r"<!--.*?(?:-->|$)", re.S)
_CODE_FENCE = re.compile(r"```[^\n]*\n?(.*?)(?:```|$)", re.S)
_IMAGE = re.compile(r"!\[[^\]]*\]\([^)]*\)")
_LINK = re.compile(r"\[([^\]]*)\]\((?:https?://)?[^)]*\)")
_URL = re.compile(r"https?://([^/\s)>\]]+)[^\s)>\]]*")
_HTML_TAG = re.compile(r"</?[a-zA-Z][^>\n]*>")
_NO_RESPONSE = re.compile(r"^\s*#{1,6}[^\n]*\n+\s*_No response_\s*$|_No response_", re.M)
_HEADING = re.compile(r"^[ \t]{0,3}#{1,6}[ \t]*", re.M)
_EMPHASIS = re.compile(r"\*\*|`")
_BLANKS = re.compile(r"[ \t\r\f\v]+")
_EMPTY_LINES = re.compile(r" ?\n\s*")


def _code_stub(match: re.Match[str]) -> str:
    first = match.group(1).strip().split("\n", 1)[0][:80].strip()
    return f"\n[code: {first}]\n"


def encoder_view(text: str) -> str:
    """The text as the sentence encoder reads it: markup and template boilerplate out.

    The encoder reads only the first few hundred tokens, and issue templates, form HTML and
    pasted logs spend them on nothing (a VS Code bug report opens with eight HTML comments).
    HTML comments, images and tags go; code blocks shrink to their first line; links keep
    their text and host; empty template sections and markdown markup go. The lexical
    features keep reading the raw text, where a template's name is a useful signal.
    Plain feedback comes back as it was (whitespace aside).
    """
    view = _HTML_COMMENT.sub(" ", text)
    view = _CODE_FENCE.sub(_code_stub, view)
    view = _IMAGE.sub(" [image] ", view)
    view = _LINK.sub(r"\1", view)
    view = _URL.sub(r"\1", view)
    view = _HTML_TAG.sub(" ", view)
    view = _NO_RESPONSE.sub("", view)
    view = _HEADING.sub("", view)
    view = _EMPHASIS.sub("", view)
    view = _BLANKS.sub(" ", view)
    view = _EMPTY_LINES.sub("\n", view).strip()
    return view or " ".join(text.split())


def _cue_pattern(cues: list[str]) -> re.Pattern[str] | None:
    if not cues:
        return None
    alternatives = "|".join(re.escape(c.lower()) for c in sorted(cues, key=len, reverse=True))
    return re.compile(rf"(?<![a-z0-9])(?:{alternatives})")


@dataclass(frozen=True)
class PriorOutput:
    category_logits: np.ndarray  # (n, C)
    severity_logits: np.ndarray  # (n, S)
    evidence: list[list[str]]


class ColdStartPrior:
    """Scores texts against the taxonomy without any labels."""

    def __init__(self, taxonomy: Taxonomy, encoder: Encoder) -> None:
        self.taxonomy = taxonomy
        self._cat_cues = [_cue_pattern(c.cues) for c in taxonomy.categories]
        self._sev_cues = [_cue_pattern(s.cues) for s in taxonomy.severities]
        self._cat_protos = self._prototypes(
            encoder, [(c.description, c.examples) for c in taxonomy.categories]
        )
        self._sev_protos = self._prototypes(
            encoder, [(s.description, s.examples) for s in taxonomy.severities]
        )
        names = taxonomy.category_names
        self._noise_index = names.index("noise") if "noise" in names else None
        self._positive_index = names.index("positive") if "positive" in names else None

    @staticmethod
    def _prototypes(
        encoder: Encoder, specs: list[tuple[str, list[str]]]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per class: the description's vector and the examples' vectors."""
        texts = [t for desc, examples in specs for t in [desc, *examples]]
        vectors = encoder.encode(texts)
        out, start = [], 0
        for _desc, examples in specs:
            out.append((vectors[start], vectors[start + 1 : start + 1 + len(examples)]))
            start += 1 + len(examples)
        return out

    @staticmethod
    def _similarity(emb: np.ndarray, protos: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        cols = []
        for desc, examples in protos:
            sim_desc = emb @ desc
            sim_ex = (emb @ examples.T).max(axis=1) if len(examples) else sim_desc
            cols.append(0.4 * sim_desc + 0.6 * sim_ex)
        return np.stack(cols, axis=1)

    def score(
        self, texts: list[str], embeddings: np.ndarray, form_types: list[str | None]
    ) -> PriorOutput:
        n = len(texts)
        cat = SIMILARITY_SCALE * self._similarity(embeddings, self._cat_protos)
        sev = SIMILARITY_SCALE * self._similarity(embeddings, self._sev_protos)
        evidence: list[list[str]] = [[] for _ in range(n)]
        cats, sevs = self.taxonomy.categories, self.taxonomy.severities
        for i, text in enumerate(texts):
            lowered = text.lower()
            for j, pattern in enumerate(self._cat_cues):
                hits = pattern.findall(lowered) if pattern else []
                if hits:
                    cat[i, j] += CUE_WEIGHT * min(len(hits), 3)
                    evidence[i].append(
                        f"cue for {cats[j].name}: " + ", ".join(sorted(set(hits))[:3])
                    )
            for j, pattern in enumerate(self._sev_cues):
                hits = pattern.findall(lowered) if pattern else []
                if hits:
                    sev[i, j] += CUE_WEIGHT * min(len(hits), 3)
                    evidence[i].append(
                        f"cue for {sevs[j].name}: " + ", ".join(sorted(set(hits))[:3])
                    )
            form = form_types[i]
            priors = self.taxonomy.form_types.get(form or "", {})
            for j, spec in enumerate(cats):
                if spec.name in priors:
                    cat[i, j] += FORM_WEIGHT * priors[spec.name]
            if priors:
                evidence[i].append(f"form type {form!r}")
            signals = noise_signals(text)
            if signals and self._noise_index is not None:
                cat[i, self._noise_index] += NOISE_SIGNAL_WEIGHT * len(signals)
                evidence[i].append("noise signals: " + ", ".join(signals))
        # Praise and noise carry no work: pull their severity towards the lowest.
        probs = softmax(cat)
        low = len(sevs) - 1
        for index in (self._noise_index, self._positive_index):
            if index is not None:
                sev[:, low] += 4.0 * probs[:, index]
        return PriorOutput(cat, sev, evidence)


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=-1, keepdims=True)
