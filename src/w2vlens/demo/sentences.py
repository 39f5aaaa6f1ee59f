"""A seeded generator of Finnish sentences for the synthetic demo corpus.

The word lists are small on purpose, but together they contain every letter of the Finnish
alphabet: the vowels ä, ö and y, long vowels and double consonants, the loan-word letters
b, d, f, g, and the rare c, q, w, x, z and å, which appear in foreign names only (as in real
Finnish speech, where they are rare).
"""

from __future__ import annotations

import random

FINNISH_ALPHABET = "abcdefghijklmnopqrstuvwxyzåäö"

SUBJECTS = [
    "minä", "sinä", "hän", "me", "te", "he", "äiti", "isä", "mummo", "pappa", "tyttö", "poika",
    "naapuri", "opettaja", "lääkäri", "kissa", "koira", "ystävä", "sisko", "veli", "kapteeni",
    "tuuli", "myyjä", "kuski", "tuomari", "näyttelijä", "lentäjä", "isoäiti", "kalastaja",
]
FOREIGN_NAMES = [
    "cecilia", "carl", "oscar", "celsius", "quentin", "qatar", "wilhelm", "walter", "wikström",
    "xavier", "max", "alex", "felix", "zacharias", "zeus", "elza", "liza", "åsa", "åke",
    "ålands", "åbo", "greta", "bruno", "diana", "frida", "gabriel",
]
FINNISH_NAMES = [
    "matti", "liisa", "pekka", "aino", "jussi", "sanna", "ville", "kaisa", "yrjö", "hyvönen",
    "väinö", "tyyne", "heikki", "eero", "riikka", "pirjo", "jyrki", "seppo", "tuula", "mikko",
]
VERBS = [
    "näki", "osti", "söi", "joi", "kantoi", "etsi", "löysi", "myi", "korjasi", "maalasi",
    "lukee", "kirjoittaa", "rakentaa", "kuuntelee", "katsoo", "tuntee", "muistaa", "pesee",
    "ajaa", "vie", "tuo", "odottaa", "haluaa", "tarvitsee", "keitti", "leikkasi", "hakee",
]
ADJECTIVES = [
    "punaisen", "vihreän", "pienen", "ison", "uuden", "vanhan", "kauniin", "hyvän", "pitkän",
    "lyhyen", "kylmän", "lämpimän", "märän", "kuivan", "tyhjän", "täyden", "hitaan", "nopean",
    "keltaisen", "sinisen", "mustan", "valkoisen", "ruskean", "pehmeän", "kovan", "rauhallisen",
]
OBJECTS = [
    "talon", "auton", "kirjan", "omenan", "leivän", "kahvin", "maidon", "veneen", "pyörän",
    "tuolin", "pöydän", "ikkunan", "oven", "kengän", "takin", "lampun", "kellon", "puhelimen",
    "jäätelön", "mökin", "saunan", "järven", "metsän", "kukan", "linnun", "sienen", "marjan",
    "bussin", "filmin", "galleriaan", "dokumentin", "baarin", "farmin", "kitaran", "pizzan",
]
PLACES = [
    "kotona", "kaupassa", "koulussa", "töissä", "metsässä", "järvellä", "saunassa", "mökillä",
    "kirjastossa", "torilla", "satamassa", "asemalla", "pihalla", "keittiössä", "yöllä",
    "aamulla", "illalla", "kesällä", "talvella", "syksyllä", "keväällä", "helsingissä",
    "turussa", "oulussa", "tampereella", "jyväskylässä", "zagrebissa", "washingtonissa",
]
ADVERBS = [
    "nopeasti", "hitaasti", "hiljaa", "usein", "aina", "joskus", "taas", "vielä", "jo", "heti",
    "yhdessä", "yksin", "mielellään", "tänään", "eilen", "huomenna", "melkein", "ehkä",
]
SHORT_PHRASES = [
    "no niin", "hyvää huomenta", "kiitos paljon", "ei se mitään", "ihan totta", "ole hyvä",
    "nähdään huomenna", "hyvää yötä", "tervetuloa", "anteeksi", "onnea matkaan", "hei vaan",
    "kuka siellä", "mitä kuuluu", "kyllä vain", "missä olet", "mennään jo",
]


def _subject(rng: random.Random) -> str:
    pool = rng.choices([SUBJECTS, FINNISH_NAMES, FOREIGN_NAMES], weights=[5, 3, 2])[0]
    return rng.choice(pool)


def _clause(rng: random.Random) -> str:
    words = [_subject(rng), rng.choice(VERBS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADVERBS))
    if rng.random() < 0.6:
        words.append(rng.choice(ADJECTIVES))
    words.append(rng.choice(OBJECTS))
    if rng.random() < 0.5:
        words.append(rng.choice(PLACES))
    return " ".join(words)


def make_utterance(rng: random.Random) -> list[str]:
    """One utterance as a list of 1-3 phrases; the corpus puts a pause between phrases."""
    phrases = [_clause(rng) for _ in range(rng.choice([1, 1, 2, 2, 3]))]
    if rng.random() < 0.25:
        phrases.insert(0, rng.choice(SHORT_PHRASES))
    return phrases


def all_letters() -> set[str]:
    """Letters that the word lists can produce (a test checks it is the whole alphabet)."""
    pools = [SUBJECTS, FOREIGN_NAMES, FINNISH_NAMES, VERBS, ADJECTIVES, OBJECTS, PLACES, ADVERBS,
             SHORT_PHRASES]
    return {ch for pool in pools for word in pool for ch in word if ch != " "}
