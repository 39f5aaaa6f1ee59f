"""Transcript normalisation shared by training, labelling and scoring."""

from __future__ import annotations

import re
import unicodedata

from w2vlens.labelling.names import WORD_DELIMITER

_PUNCTUATION = re.compile(r"[^\w\s']|_")
_SPACES = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-cases, composes accents (NFC) and cleans a transcript as the paper's authors did:
    tokens starting with "." (annotation marks such as ".laugh") are dropped and hyphens removed
    ("linja-auto" becomes "linjaauto"); then other punctuation becomes a space and whitespace is
    collapsed. Apostrophes are kept."""
    text = unicodedata.normalize("NFC", text).lower()
    text = " ".join(word for word in text.split() if not word.startswith("."))
    text = _PUNCTUATION.sub(" ", text.replace("-", ""))
    return _SPACES.sub(" ", text).strip()


def characters_outside(text: str, vocabulary: set[str]) -> list[str]:
    """Characters of normalised `text` (spaces as the word delimiter) missing from `vocabulary`."""
    return sorted({ch for ch in text.replace(" ", WORD_DELIMITER) if ch not in vocabulary})
