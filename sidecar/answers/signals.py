"""The text signals of a message, deterministic and documented (docs/answer-policy.md#signals).

vagueness in [0, 1]: how little the message says. Content words are words of 3+ letters that are not
stop words; a message with 4 or more content words starts at 0, with fewer at 1 - n/4. Each vague
marker ("something", "stuff", "help", "anything", "this", "that", "it", ...) as the whole of the
content adds 0.25. Capped at 1.

complexity in [0, 1]: the weighted sum of four parts, each in [0, 1]:
  0.30 * length (words / 40, capped), 0.20 * questions ((question marks - 1) / 2, capped),
  0.35 * reasoning markers (each of "why", "compare", "versus", "trade off", "strategy", "plan",
  "step by step", "pros and cons", "should i", "what if", "how would" counts 1/3, capped),
  0.15 * long words (share of words of 9+ letters * 4, capped).

confidence in [0, 1] = (1 - vagueness) * (0.5 + 0.5 * similarity): a clear message starts at 0.5 and
rises with how close it is to what the creator already answered.
"""

from __future__ import annotations

import functools
import unicodedata
from typing import Any

# letters and digits of every alphabet with the combining marks on them (Hindi's vowel signs and
# virama, Thai's vowels: a mark never splits a word), with inner apostrophes ("don't", "l'été");
# "trade-off" is two words: trade off. Scripts written without spaces (Chinese, Japanese, Thai) make
# one word of each run between spaces or punctuation.
_PART = r"[\p{L}\p{N}][\p{L}\p{N}\p{M}]*"


@functools.cache
def _word() -> Any:
    """The word pattern, compiled at the first message an agent decides on: `regex` (about 1.5 MB
    resident) is then imported, not by every sidecar that serves the escalation RPCs unconfigured."""
    import regex  # type: ignore[import-untyped]

    return regex.compile(rf"{_PART}(?:['\u2019]{_PART})*")


_STOP = frozenset(
    [
        "the",
        "and",
        "for",
        "are",
        "but",
        "not",
        "you",
        "your",
        "yours",
        "all",
        "any",
        "can",
        "had",
        "her",
        "was",
        "one",
        "our",
        "out",
        "has",
        "him",
        "his",
        "how",
        "man",
        "new",
        "now",
        "old",
        "see",
        "two",
        "way",
        "who",
        "boy",
        "did",
        "its",
        "let",
        "put",
        "say",
        "she",
        "too",
        "use",
        "i",
        "me",
        "my",
        "we",
        "us",
        "am",
        "is",
        "be",
        "do",
        "to",
        "of",
        "in",
        "on",
        "at",
        "it",
        "an",
        "a",
        "so",
        "or",
        "if",
        "up",
        "as",
        "by",
        "no",
        "yes",
        "hi",
        "hey",
        "hello",
        "please",
        "thanks",
        "thank",
        "ok",
        "okay",
        "just",
        "really",
        "very",
        "what",
        "when",
        "where",
        "which",
        "about",
        "with",
        "this",
        "that",
        "there",
        "their",
        "they",
        "them",
        "then",
        "than",
        "from",
        "have",
        "will",
        "would",
        "could",
        "should",
        "does",
        "into",
        "some",
        "more",
        "most",
        "also",
        "been",
        "were",
        "being",
        "like",
        "get",
        "got",
    ]
)
_VAGUE = frozenset(
    [
        "something",
        "stuff",
        "thing",
        "things",
        "help",
        "anything",
        "everything",
        "whatever",
        "idea",
        "question",
        "questions",
        "info",
        "sure",
        "hmm",
        "huh",
    ]
)
_REASONING = (
    "why",
    "compare",
    "versus",
    "trade off",
    "tradeoff",
    "strategy",
    "plan",
    "step by step",
    "pros and cons",
    "should i",
    "what if",
    "how would",
)


def words(text: str) -> list[str]:
    """The words of a text, lowercased, as a reader sees them: compatibility forms folded (fullwidth
    letters, ligatures) and invisible format characters (zero-width spaces, soft hyphens, joiners)
    dropped, so none of them splits or hides a word."""
    if not text.isascii():  # ASCII has neither
        text = unicodedata.normalize("NFKC", text)
        hidden = {ord(c): None for c in set(text) if unicodedata.category(c) == "Cf"}
        text = text.translate(hidden) if hidden else text
    found: list[str] = _word().findall(text.lower())
    return found


def content_words(text: str) -> list[str]:
    return [w for w in words(text) if len(w) >= 3 and w not in _STOP]


def vagueness(text: str) -> float:
    content = content_words(text)
    meaningful = [w for w in content if w not in _VAGUE]
    score = max(0.0, 1.0 - len(meaningful) / 4)
    if content and not meaningful:
        score += 0.25 * len(content)
    return min(1.0, score)


def complexity(text: str) -> float:
    ws = words(text)
    lowered = " " + " ".join(ws) + " "
    length = min(1.0, len(ws) / 40)
    questions = min(1.0, max(0, text.count("?") - 1) / 2)
    markers = sum(1 for m in _REASONING if f" {m} " in lowered)
    reasoning = min(1.0, markers / 3)
    long_words = min(1.0, 4 * sum(1 for w in ws if len(w) >= 9) / len(ws)) if ws else 0.0
    return round(0.30 * length + 0.20 * questions + 0.35 * reasoning + 0.15 * long_words, 4)


def confidence(vague: float, similarity: float) -> float:
    return round((1.0 - vague) * (0.5 + 0.5 * max(0.0, similarity)), 4)


def blocked_topic(text: str, topics: list[str]) -> str | None:
    """The first blocked topic the message mentions: a whole word or phrase, case-insensitively. A
    topic written without combining marks ("politics") also matches the message's words with theirs
    taken off ("POLİTİCS", whose İ lowercases to i and a dot above; a letter underlined or struck
    through by a mark; "pólitics"); one written with marks ("राजनीति") matches them as written."""
    found = words(text)
    lowered = " " + " ".join(found) + " "
    bare = " " + " ".join(map(_unmarked, found)) + " "
    for topic in topics:
        phrase = " ".join(words(topic))
        within = bare if phrase == _unmarked(phrase) else lowered
        if phrase and f" {phrase} " in within:
            return topic
    return None


def _unmarked(word: str) -> str:
    """The word without its combining marks (decomposed first: é is e and a mark)."""
    if word.isascii():
        return word
    return "".join(
        c for c in unicodedata.normalize("NFD", word) if not unicodedata.category(c).startswith("M")
    )
