"""The signals and the decision among the six paths: deterministic, in the documented order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from sidecar.answers import signals
from sidecar.answers.decide import Escalate, classify, escalation, gate, measure
from sidecar.answers.model import CanonicalAnswer, Path
from sidecar.answers.windows import available, buckets, next_window
from sidecar.config.answers import AgentPolicy

CANON = CanonicalAnswer("can_1", "acme", "maya", "public", "What flour?", "Bread flour.", 0.0)


def at(iso: str) -> float:
    return datetime.fromisoformat(iso).replace(tzinfo=UTC).timestamp()


def test_vagueness_complexity_and_confidence_are_deterministic() -> None:
    assert signals.vagueness("help") == 1.0
    assert signals.vagueness("something?") == 1.0
    assert signals.vagueness("How do I keep my sourdough starter alive?") == 0.0
    long = "Why does my bread collapse, and should I compare a cold proof versus a warm one step by step?"
    assert signals.complexity(long) > signals.complexity("Can I freeze basil?")
    assert signals.complexity(long) == signals.complexity(long)
    assert signals.confidence(0.0, 0.0) == 0.5 and signals.confidence(0.0, 1.0) == 1.0
    assert signals.confidence(1.0, 1.0) == 0.0


def test_blocked_topics_match_whole_words_and_phrases() -> None:
    topics = ["politics", "home address"]
    assert signals.blocked_topic("What about POLITICS today?", topics) == "politics"
    assert signals.blocked_topic("what is your home  address", topics) == "home address"
    assert signals.blocked_topic("geopolitics of bread", topics) is None
    assert signals.blocked_topic("my address book", topics) is None


def test_words_of_every_alphabet_count() -> None:
    """Words were [a-z0-9']: a clear question in Cyrillic or Greek had no word at all, so it scored
    vagueness 1 and confidence 0, and every such user got the clarifying questions (path B) in
    place of an answer; a blocked topic written in those alphabets never matched."""
    russian = "Сколько соли нужно класть в воду для пасты?"
    greek = "Πόσο αλάτι βάζω στο νερό για τα ζυμαρικά;"  # noqa: RUF001
    assert signals.vagueness(russian) == 0.0 and signals.vagueness(greek) == 0.0
    assert signals.complexity(russian) == signals.complexity("How much salt goes in the pasta water?")
    assert signals.blocked_topic("Что вы думаете про ПОЛИТИКУ?", ["политику"]) == "политику"
    assert signals.blocked_topic("геополитику хлеба", ["политику"]) is None
    assert signals.words("Don\u2019t stop, l'été") == ["don\u2019t", "stop", "l'été"]
    choice = classify(AgentPolicy(), measure(russian, 0.5), CANON)
    assert not isinstance(choice, Escalate) and choice.path is Path.AUTO_ANSWER


@pytest.mark.parametrize(
    "text",
    [
        "Tell me about p\u200bolitics",  # a zero-width space inside the word
        "POLI\u00adTICS now",  # a soft hyphen
        "poli\u2060tics",  # a word joiner
        "\uff50\uff4f\uff4c\uff49\uff54\uff49\uff43\uff53 please",  # fullwidth letters
    ],
)
def test_a_blocked_topic_is_not_hidden_by_invisible_or_fullwidth_characters(text: str) -> None:
    """The model reads these as the word itself (path A answers them); the topic check split the word
    at the invisible character, or did not know the fullwidth letters, and let the message through."""
    assert signals.blocked_topic(text, ["politics"]) == "politics"


def test_a_combining_mark_does_not_split_a_word() -> None:
    """Words were runs of letters or digits, so a combining mark (category M) split them: Hindi's
    vowel signs and virama, Thai's vowels, cut every word into pieces ("नमस्ते" was "नमस" and "त"),
    and a clear Hindi or Thai question scored as vague (path B in place of an answer)."""
    hindi = "नमस्ते, क्या आप बता सकते हैं कि पास्ता के पानी में कितना नमक डालना चाहिए?"
    assert signals.words("नमस्ते दुनिया") == ["नमस्ते", "दुनिया"]
    assert signals.words("สวัสดีครับ") == ["สวัสดีครับ"]
    assert signals.vagueness(hindi) == 0.0
    assert signals.blocked_topic("क्या आप राजनीति पर बात करेंगे?", ["राजनीति"]) == "राजनीति"
    assert signals.blocked_topic("यह राजनीतिक है", ["राजनीति"]) is None  # another word
    assert signals.blocked_topic("कम पैसे", ["काम"]) is None  # a topic written with marks matches them


@pytest.mark.parametrize(
    "text",
    [
        "What about POL\u0130T\u0130CS?",  # Turkish capital I with dot: lowercased to i + U+0307
        "poli\u0332tics please",  # a combining low line under one letter
        "p\u0336o\u0336litics",  # combining strokes through letters
        "p\u00f3litics",  # a letter written with an accent
    ],
)
def test_a_blocked_topic_written_without_marks_is_not_hidden_by_combining_marks(text: str) -> None:
    """A reader (and the model) sees the word; a mark split it in two, or made it another word."""
    assert signals.blocked_topic(text, ["politics"]) == "politics"


def test_tier_and_topic_refuse_before_anything_is_measured() -> None:
    p = AgentPolicy(allowed_tiers=["pro"], blocked_topics=["politics"])
    tier = gate(p, "Can I freeze basil?", "free")
    assert tier is not None and (tier.path, tier.reason) == (Path.REFUSE, "tier_not_allowed")
    assert tier.alternatives and "plan" in tier.text
    topic = gate(p, "politics?", "pro")
    assert topic is not None and (topic.path, topic.reason) == (Path.REFUSE, "blocked_topic")
    assert gate(p, "Can I freeze basil?", "pro") is None


@pytest.mark.parametrize(
    ("text", "similarity", "path", "reason"),
    [
        ("Which flour do you use for sourdough?", 0.9, Path.CANONICAL, "canonical_match"),
        ("Which flour do you use for sourdough?", 0.85, Path.CANONICAL, "canonical_match"),
        ("help", 0.2, Path.CLARIFY, "vague"),
        ("How much salt goes in pasta water?", 0.5, Path.AUTO_ANSWER, "high_confidence"),
        ("How do I make khachapuri with Imeretian cheese?", 0.25, None, "novel"),
    ],
)
def test_the_path_of_a_message(text: str, similarity: float, path: Path | None, reason: str) -> None:
    choice = classify(AgentPolicy(), measure(text, similarity), CANON)
    if path is None:
        assert isinstance(choice, Escalate) and choice.reason == reason
    else:
        assert not isinstance(choice, Escalate) and (choice.path, choice.reason) == (path, reason)
        if path is Path.CANONICAL:
            assert choice.text == "Bread flour." and choice.canonical_id == "can_1"


def test_a_complex_message_is_escalated_even_when_known() -> None:
    text = (
        "Should I open a bakery? What if I fail, and how would I plan the finances and the trade-off "
        "between a shop and a market stall, step by step, with pros and cons?"
    )
    sig = measure(text, 0.5)
    assert sig.complexity >= 0.6
    choice = classify(AgentPolicy(), sig, CANON)
    assert isinstance(choice, Escalate) and choice.reason == "complex"


def test_clarification_off_lets_a_vague_message_through() -> None:
    choice = classify(AgentPolicy(clarification=False), measure("help", 0.2), CANON)
    assert isinstance(choice, Escalate)


def test_the_escalation_step() -> None:
    want = Escalate("novel", measure("khachapuri?", 0.1))
    now = at("2026-12-02T10:00:00")  # a Wednesday
    offer = escalation(AgentPolicy(), want, over_limit=False, available_from=now, now=now)
    assert offer.path is Path.OFFER_ESCALATION
    off = escalation(AgentPolicy(escalations=False), want, over_limit=False, available_from=now, now=now)
    assert (off.path, off.reason) == (Path.REFUSE, "escalations_disabled")
    full = escalation(AgentPolicy(), want, over_limit=True, available_from=now, now=now)
    assert (full.path, full.reason) == (Path.REFUSE, "escalation_limit")
    later = now + 3600
    away = escalation(AgentPolicy(), want, over_limit=False, available_from=later, now=now)
    assert (away.path, away.reason, away.available_from) == (Path.AUTO_ANSWER, "creator_unavailable", later)
    strict = AgentPolicy(outside_availability="refuse")
    refused = escalation(strict, want, over_limit=False, available_from=later, now=now)
    assert (refused.path, refused.reason) == (Path.REFUSE, "creator_unavailable")


@pytest.mark.parametrize(
    ("now", "opens"),
    [
        # New York springs forward on 2026-03-08 at 02:00 EST (07:00 UTC) to 03:00 EDT: a window
        # from 02:30 to 03:30 opens as the clocks jump (its 02:30 never comes) and closes at 03:30 EDT
        ("2026-03-08T06:59:00", "2026-03-08T07:00:00"),
        ("2026-03-07T12:00:00", "2026-03-08T07:00:00"),
        # it falls back on 2026-11-01 at 02:00 EDT (06:00 UTC) to 01:00 EST; 02:30 comes once
        ("2026-11-01T06:59:00", "2026-11-01T07:30:00"),
        ("2026-03-15T06:00:00", "2026-03-15T06:30:00"),  # an ordinary Sunday (EDT): 02:30 is 06:30 UTC
    ],
)
def test_the_next_window_across_daylight_saving_changes(now: str, opens: str) -> None:
    """A window starting at a local time the clocks skip was said to open at that time read in the
    old offset (03:30 EDT, 07:30 UTC), when the window had already closed: a user told to come back
    then found the creator away, though the window had been open since the jump (07:00 UTC)."""
    p = AgentPolicy.model_validate(
        {
            "timezone": "America/New_York",
            "availability": [{"days": ["sun"], "start": "02:30", "end": "03:30"}],
        }
    )
    assert not available(p, at(now))
    assert next_window(p, at(now)) == at(opens)
    assert available(p, at(opens)) and not available(p, at(opens) - 1)


def test_availability_windows_in_the_agent_s_time_zone() -> None:
    p = AgentPolicy.model_validate(
        {
            "timezone": "Europe/Paris",
            "availability": [{"days": ["mon", "wed"], "start": "09:00", "end": "12:00"}],
        }
    )
    assert available(p, at("2026-12-02T08:30:00"))  # Wednesday 09:30 in Paris (UTC+1)
    assert not available(p, at("2026-12-02T11:00:00"))  # 12:00 in Paris: the window is over
    assert next_window(p, at("2026-12-02T11:00:00")) == at("2026-12-07T08:00:00")  # Monday 09:00 Paris
    assert next_window(p, at("2026-12-02T08:30:00")) == at("2026-12-02T08:30:00")
    assert available(AgentPolicy(), at("2026-12-06T03:00:00"))  # no windows: always
    assert buckets(p, at("2026-12-02T23:30:00")) == ("2026-12-03", "2026-W49")  # already Thursday in Paris
