"""Intent matching (synonyms, fuzzy, numbers, ru+en) and per-state grammars."""

from __future__ import annotations

import pytest

from recognition.intents import grammar_for, match_intent, normalize, parse_number
from recognition.phrases import PHRASES, STATE_INTENTS


@pytest.mark.parametrize(("text", "lang", "intent"), [
    ("Записаться", "ru", "book"),
    ("хочу записаться к врачу пожалуйста", "ru", "book"),
    ("перенести", "ru", "reschedule"),
    ("Отменить запись", "ru", "cancel"),
    ("оператор", "ru", "operator"),
    ("Соедините с администратором!", "ru", "operator"),
    ("перезвоните мне", "ru", "callback"),
    ("да", "ru", "yes"),
    ("нет, спасибо", "ru", "no"),
    ("ещё раз", "ru", "repeat"),
    ("I want to book an appointment please", "en", "book"),
    ("reschedule my appointment", "en", "reschedule"),
    ("cancel", "en", "cancel"),
    ("talk to a person", "en", "operator"),
    ("could you call me back", "en", "callback"),
    ("yeah", "en", "yes"),
    ("nope", "en", "no"),
    ("say that again", "en", "repeat"),
])
def test_phrases_and_synonyms_find_their_intent(text: str, lang: str, intent: str) -> None:
    assert match_intent(text, lang).intent == intent


@pytest.mark.parametrize(("text", "lang", "intent"), [
    ("oprator", "en", "operator"),            # a recogniser's near miss
    ("cancell my apointment", "en", "cancel"),
    ("администратр", "ru", "operator"),
    ("перезвонити", "ru", "callback"),
    ("записатся", "ru", "book"),
])
def test_fuzzy_matching_forgives_small_errors(text: str, lang: str, intent: str) -> None:
    m = match_intent(text, lang)
    assert m.intent == intent and 0.72 <= m.score < 1.0


@pytest.mark.parametrize("text", ["blah blah blah", "the weather is nice today", "", "[unk]"])
def test_unrelated_or_empty_text_is_unknown(text: str) -> None:
    assert match_intent(text, "en").intent == "unknown"


@pytest.mark.parametrize(("text", "lang", "digits"), [
    ("one two three", "en", "123"),
    ("twenty five", "en", "25"),
    ("two hundred and five", "en", "205"),
    ("nineteen eighty four", "en", "1984"),
    ("oh seven", "en", "07"),
    ("один два три", "ru", "123"),
    ("двадцать пять", "ru", "25"),
    ("двести пять", "ru", "205"),
    ("ноль", "ru", "0"),
    ("42", "en", "42"),
])
def test_numbers_in_words_become_digits(text: str, lang: str, digits: str) -> None:
    m = match_intent(text, lang)
    assert (m.intent, m.digits) == ("digits", digits)
    assert parse_number(normalize(text), lang) == digits


def test_allowed_intents_restrict_the_match() -> None:
    assert match_intent("yes", "en", ["book", "cancel"]).intent == "unknown"
    assert match_intent("one", "en", ["yes", "no"]).intent == "unknown"  # no digits allowed


def test_normalize_handles_yo_case_punctuation_and_unk() -> None:
    assert normalize("  Ещё, РАЗ!! [unk] ") == "еще раз"
    assert len(normalize("a" * 10_000)) <= 200


@pytest.mark.parametrize("lang", ["ru", "en"])
@pytest.mark.parametrize("state", sorted(STATE_INTENTS))
def test_every_grammar_phrase_maps_back_to_an_intent_of_its_state(lang: str, state: str) -> None:
    grammar = grammar_for(state, lang)
    assert grammar.name == f"{lang}/{state}" and grammar.phrases
    allowed = STATE_INTENTS[state]
    for phrase in grammar.phrases:
        m = match_intent(phrase, lang, allowed)
        assert m.intent in allowed and m.score == 1.0, phrase


@pytest.mark.parametrize("lang", ["ru", "en"])
def test_no_phrase_belongs_to_two_intents(lang: str) -> None:
    seen: dict[str, str] = {}
    for intent, phrases in PHRASES[lang].items():
        for p in phrases:
            assert seen.setdefault(p, intent) == intent, p
            assert p == normalize(p), p
