"""From recognised text to an intent: exact phrase, phrase inside the utterance, then fuzzy.

``match_intent(text, lang, allowed)``:

1. normalise (lower case, «ё» → «е», punctuation and vosk's ``[unk]`` dropped);
2. an utterance made only of number words (or digits) is ``digits`` with ``digits`` set
   ("twenty five" → ``25``, "один два три" → ``123``, "двести пять" → ``205``);
3. an exact phrase of an allowed intent scores 1.0;
4. a phrase found as a whole-word run inside the utterance scores 0.85–0.95 (longer phrases win);
5. otherwise the best ``difflib`` ratio against every phrase, and word-by-word for one-word
   phrases (so "oprator" still finds "operator"); below ``threshold`` (0.72) → ``unknown``.

Pure: no I/O, safe on untrusted text (bounded to 200 characters).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from dataclasses import dataclass

from recognition.backends import Grammar
from recognition.phrases import (
    FILLER_WORDS,
    HUNDREDS,
    INTENTS,
    PHRASES,
    STATE_INTENTS,
    TEENS,
    TENS,
    UNITS,
    Intent,
)

_NOT_WORD = re.compile(r"[^\w' ]+")
MAX_TEXT = 200


@dataclass(frozen=True, slots=True)
class IntentMatch:
    """The intent found in ``text`` (normalised), its ``score`` in [0, 1], the phrase that matched
    (``''`` for digits/unknown) and, for ``digits``, the digit string."""

    intent: Intent
    score: float
    text: str
    phrase: str = ""
    digits: str = ""


def normalize(text: str) -> str:
    """Lower case, «ё» → «е», ``[unk]`` and punctuation removed, single spaces."""
    text = text[:MAX_TEXT].lower().replace("ё", "е").replace("[unk]", " ")
    return " ".join(_NOT_WORD.sub(" ", text).replace("_", " ").split())


def parse_number(text: str, lang: str) -> str | None:
    """The digits spoken in ``text`` if it is only number words (and fillers), else ``None``."""
    units, teens, tens = UNITS[lang], TEENS[lang], TENS[lang]
    hundreds, fillers = HUNDREDS[lang], FILLER_WORDS[lang]
    out: list[str] = []
    group: list[int] = []  # [hundreds, tens, units] filled left to right

    def flush() -> None:
        if group:
            out.append(str(sum(group)))
            group.clear()

    for word in text.split():
        if word in fillers:
            continue
        if word.isdigit():
            flush()
            out.append(word)
        elif word in hundreds or word == "hundred":
            if word == "hundred" and len(group) == 1 and group[0] < 10:
                group[0] *= 100
            else:
                flush()
                group.append(hundreds.get(word, 100))
        elif word in tens or word in teens:
            if group and (group[-1] % 100 != 0 or group[-1] == 0):
                flush()
            group.append(tens.get(word) or teens[word])
        elif word in units:
            if group and (group[-1] % 10 != 0 or group[-1] == 0 or group[-1] in teens.values()):
                flush()
            group.append(units[word])
        else:
            return None
    flush()
    return "".join(out) or None


def _contained(phrase: str, text: str) -> bool:
    return f" {phrase} " in f" {text} "


def _score(phrase: str, text: str) -> float:
    if phrase == text:
        return 1.0
    if _contained(phrase, text):
        return 0.85 + 0.1 * len(phrase) / len(text)
    best = difflib.SequenceMatcher(None, phrase, text).ratio()
    if " " not in phrase:
        for word in text.split():
            if len(word) >= 4:
                best = max(best, 0.9 * difflib.SequenceMatcher(None, phrase, word).ratio())
    return best


def match_intent(
    text: str, lang: str, allowed: Iterable[Intent] | None = None, *, threshold: float = 0.72
) -> IntentMatch:
    """The intent of ``text`` among ``allowed`` (default: all) for ``lang`` (``ru``/``en``)."""
    norm = normalize(text)
    allow = set(INTENTS if allowed is None else allowed)
    if not norm:
        return IntentMatch("unknown", 0.0, norm)
    if "digits" in allow:
        digits = parse_number(norm, lang)
        if digits is not None:
            return IntentMatch("digits", 1.0, norm, digits=digits)
    best = IntentMatch("unknown", 0.0, norm)
    for intent, phrases in PHRASES[lang].items():
        if intent not in allow:
            continue
        for phrase in phrases:
            score = _score(phrase, norm)
            if score > best.score or (score == best.score and len(phrase) > len(best.phrase)):
                best = IntentMatch(intent, score, norm, phrase)
    if best.score < threshold:
        return IntentMatch("unknown", best.score, norm)
    return best


def digit_words(lang: str) -> tuple[str, ...]:
    """The single-digit words of ``lang`` (one per digit, the first spelling)."""
    seen: dict[int, str] = {}
    for word, value in UNITS[lang].items():
        seen.setdefault(value, word)
    return tuple(seen[d] for d in sorted(seen))


def grammar_for(state: str, lang: str) -> Grammar:
    """The recognition grammar of a dialog state: every phrase of the state's intents (see
    ``phrases.STATE_INTENTS``) plus the digit words when it takes digits. Raises ``KeyError``
    for an unknown state or language."""
    intents = STATE_INTENTS[state]
    phrases: list[str] = []
    for intent in intents:
        phrases.extend(digit_words(lang) if intent == "digits" else PHRASES[lang].get(intent, ()))
    return Grammar(name=f"{lang}/{state}", phrases=tuple(dict.fromkeys(phrases)))
