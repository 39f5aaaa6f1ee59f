"""Simulated human annotators for the demo test split.

The paper's test set carries four annotator groups' transcripts that disagree with each other;
the demo imitates that with four annotators, each with its own error profile, applied to the
true sentence. Annotator 1 is by far the most accurate (the paper's "best transcriber").
"""

from __future__ import annotations

import random
from dataclasses import dataclass

CONFUSABLE = {
    "e": "ä", "ä": "e", "o": "ö", "ö": "o", "u": "y", "y": "u", "i": "j", "j": "i", "t": "d",
    "d": "t", "k": "g", "g": "k", "p": "b", "b": "p", "m": "n", "n": "m", "v": "w", "w": "v",
    "s": "z", "z": "s", "c": "k", "x": "s", "q": "k", "å": "o", "a": "ä", "f": "v", "h": "k",
    "l": "r", "r": "l",
}
FILLERS = ["öö", "tota", "niinku", "siis", "ai"]
VOWELS = set("aeiouyäöå")


@dataclass(frozen=True)
class AnnotatorProfile:
    """Error rates of one simulated annotator."""

    substitution: float  # per letter: a confusable letter, or a long/short vowel slip
    drop_short_word: float  # per word of at most three letters
    filler: float  # per word boundary: an inserted filler word


PROFILES = {
    "annotator_1": AnnotatorProfile(substitution=0.003, drop_short_word=0.0, filler=0.0),
    "annotator_2": AnnotatorProfile(substitution=0.04, drop_short_word=0.02, filler=0.0),
    "annotator_3": AnnotatorProfile(substitution=0.01, drop_short_word=0.35, filler=0.01),
    "annotator_4": AnnotatorProfile(substitution=0.015, drop_short_word=0.03, filler=0.12),
}


def _slip_word(word: str, rate: float, rng: random.Random) -> str:
    out: list[str] = []
    for index, letter in enumerate(word):
        if rng.random() >= rate:
            out.append(letter)
        elif letter in VOWELS and rng.random() < 0.4:
            doubled = index + 1 < len(word) and word[index + 1] == letter
            out.append("" if doubled else letter * 2)  # long vowel heard short, or the reverse
        else:
            out.append(CONFUSABLE.get(letter, letter))
    return "".join(out) or word


def annotate(text: str, profile: AnnotatorProfile, rng: random.Random) -> str:
    """The transcript an annotator with `profile` would write for the true `text`."""
    words: list[str] = []
    for word in text.split():
        if len(word) <= 3 and rng.random() < profile.drop_short_word:
            continue
        if words and rng.random() < profile.filler:
            words.append(rng.choice(FILLERS))
        words.append(_slip_word(word, profile.substitution, rng))
    return " ".join(words)
