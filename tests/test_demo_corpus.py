"""The synthetic demo corpus: deterministic, complete alphabet, known pauses, four annotators."""

import json
import random
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf

from w2vlens.analysis.metrics import character_error_rate
from w2vlens.demo.annotators import PROFILES, annotate
from w2vlens.demo.corpus import build_demo_corpus, build_demo_split
from w2vlens.demo.sentences import FINNISH_ALPHABET, all_letters, make_utterance


def test_sentences_cover_every_finnish_letter() -> None:
    assert all_letters() == set(FINNISH_ALPHABET)
    rng = random.Random(0)
    produced = {ch for _ in range(1500) for phrase in make_utterance(rng) for ch in phrase if ch != " "}
    assert produced == set(FINNISH_ALPHABET)


def test_annotator_one_is_clearly_the_most_accurate() -> None:
    rng = random.Random(1)
    texts = [" ".join(make_utterance(rng)) for _ in range(400)]
    cer = {name: character_error_rate(texts, [annotate(t, profile, rng) for t in texts])
           for name, profile in PROFILES.items()}
    best = min(cer, key=cer.get)
    assert best == "annotator_1"
    assert all(cer[name] > 3 * cer["annotator_1"] for name in cer if name != best)
    assert all(0 < value < 0.15 for value in cer.values())


def test_build_is_deterministic_and_records_pauses(tmp_path: Path) -> None:
    first = build_demo_corpus(tmp_path / "a", seed=5, n_train=2, n_test=4)
    second = build_demo_corpus(tmp_path / "b", seed=5, n_train=2, n_test=4)
    assert first.test_manifest.read_bytes() == second.test_manifest.read_bytes()
    test = pd.read_csv(first.test_manifest, sep="\t")
    assert set(test.columns) >= {"audio", "text", "speaker", "gender", "snr_db", "pauses",
                                 "annotator_1", "annotator_2", "annotator_3", "annotator_4"}
    for row in test.itertuples():
        audio, rate = sf.read(first.test_manifest.parent / row.audio)
        assert rate == 16000
        assert np.array_equal(audio, sf.read(second.test_manifest.parent / row.audio)[0])
        pauses = json.loads(row.pauses)
        assert pauses[0][0] == 0.0 and abs(pauses[-1][1] - len(audio) / rate) < 0.01
        in_pause = np.zeros(len(audio), bool)
        for start, end in pauses:
            in_pause[int(start * rate) : int(end * rate)] = True
        pause_power = np.mean(audio[in_pause] ** 2)
        speech_power = np.mean(audio[~in_pause] ** 2)
        assert 10 * np.log10(speech_power / pause_power) > row.snr_db - 3  # pauses hold only the noise


def test_cached_corpus_is_reused(tmp_path: Path) -> None:
    first = build_demo_corpus(tmp_path, seed=0, n_train=1, n_test=1)
    stamp = first.test_manifest.stat().st_mtime_ns
    assert build_demo_corpus(tmp_path, seed=0, n_train=1, n_test=1).test_manifest.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in (tmp_path / "demo-corpus").iterdir()) == sorted(
        [first.train_manifest.parent.name, first.test_manifest.parent.name])


def test_one_split_is_built_alone_and_equals_the_pair_build(tmp_path: Path) -> None:
    """A run reads the test split only: building it must not build train, nor change its audio."""
    alone = build_demo_split(tmp_path / "alone", "test", seed=3, count=2)
    assert [p.name for p in (tmp_path / "alone" / "demo-corpus").iterdir()] == [alone.parent.name]
    both = build_demo_corpus(tmp_path / "both", seed=3, n_train=1, n_test=2)
    assert alone.read_bytes() == both.test_manifest.read_bytes()
    for row in pd.read_csv(alone, sep="\t").itertuples():
        assert (alone.parent / row.audio).read_bytes() == (both.test_manifest.parent / row.audio).read_bytes()
