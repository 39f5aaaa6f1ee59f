"""Sharded and resumable extraction: shards cover the corpus once, a killed run resumes where it
stopped, and the merged store equals one uninterrupted pass."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import write_corpus

from w2vlens.corpora.audio import audio_duration
from w2vlens.corpora.corpus import load_manifest
from w2vlens.embeddings.extract import Shard, extract, plan_batches
from w2vlens.embeddings.models import load_checkpoint
from w2vlens.embeddings.store import EmbeddingStore
from w2vlens.errors import W2VLensError

CPU = torch.device("cpu")


def assert_same_store(first: EmbeddingStore, second: EmbeddingStore) -> None:
    assert first.meta["arrays"] == second.meta["arrays"]  # the same bytes: sizes and checksums agree
    for name in first.meta["arrays"]:  # the same batch plan however the work was split: equal values
        assert np.array_equal(first.array(name), second.array(name)), name
    pd.testing.assert_frame_equal(first.frames(), second.frames())
    pd.testing.assert_frame_equal(first.utterances(), second.utterances())


@pytest.fixture()
def corpus_of_twelve(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "corpus", n=12)


def test_shards_split_the_plan_evenly_and_cover_every_batch_once(corpus_of_twelve: Path) -> None:
    corpus = load_manifest(corpus_of_twelve)
    durations = {utt.id: audio_duration(utt) for utt in corpus.utterances}
    plan = plan_batches(corpus.utterances, durations, batch_seconds=4, padded=True, alone=set())
    shards = [Shard(index, 3).select(plan, durations) for index in range(3)]
    assert [batch for shard in shards for batch in shard] == plan  # whole batches, in plan order, each once
    seconds = [sum(durations[utt.id] for batch in shard for utt in batch) for shard in shards]
    assert max(seconds) - min(seconds) < max(sum(durations[u.id] for u in batch) for batch in plan) + 1e-9
    with pytest.raises(W2VLensError, match="extract.shard=3 must lie in 0..2"):
        Shard(3, 3)


def test_shards_merge_into_the_store_of_one_pass(tiny_pair: tuple[Path, Path], corpus_of_twelve: Path,
                                                 tmp_path: Path) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    corpus = load_manifest(corpus_of_twelve)
    whole, _ = extract(checkpoint, corpus, tmp_path / "whole", torch.float32)
    first, hit = extract(checkpoint, corpus, tmp_path / "sharded", torch.float32, shard=Shard(1, 2))
    assert first is None and not hit  # the other shard is still missing
    merged, hit = extract(checkpoint, corpus, tmp_path / "sharded", torch.float32, shard=Shard(0, 2))
    assert merged is not None and not hit
    assert_same_store(whole, merged)
    assert [path.name for path in (tmp_path / "sharded" / "stores").iterdir()] == [merged.path.name]  # no parts left
    again, hit = extract(checkpoint, corpus, tmp_path / "sharded", torch.float32)
    assert hit and again.path == merged.path


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    import torch
    from w2vlens.corpora.corpus import load_manifest
    from w2vlens.embeddings.extract import extract
    from w2vlens.embeddings.models import load_checkpoint

    checkpoint = load_checkpoint(sys.argv[1], require_ctc=True, device=torch.device("cpu"), dtype=torch.float32)
    forward, calls = checkpoint.model.forward, []

    def forward_then_die(*args, **kwargs):
        calls.append(1)
        if len(calls) == 6:
            # the writer thread commits chunks on its own time: let it publish the first one, so the
            # kill lands after some work was saved (on a loaded machine it may not have yet)
            deadline = time.monotonic() + 60
            while not any(Path(sys.argv[3]).glob("stores/*.parts/chunk-*/meta.json")) and time.monotonic() < deadline:
                time.sleep(0.05)
            os.kill(os.getpid(), signal.SIGKILL)  # as the OOM killer or a preempted SLURM job would
        return forward(*args, **kwargs)

    checkpoint.model.forward = forward_then_die
    extract(checkpoint, load_manifest(Path(sys.argv[2])), Path(sys.argv[3]), torch.float32,
            batch_seconds=1, chunk_seconds=2)
""")


def test_killed_extraction_resumes_without_recomputing(tiny_pair: tuple[Path, Path], corpus_of_twelve: Path,
                                                       tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tiny_pair[1]), str(corpus_of_twelve), str(cache)],
                            env=env, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr
    (parts,) = (cache / "stores").glob("*.parts")
    assert not any((cache / "stores").glob("*/meta.json"))  # no store was published

    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    corpus = load_manifest(corpus_of_twelve)
    stored = {uid for chunk in parts.glob("chunk-*") if (chunk / "meta.json").is_file()
              for uid in pd.read_parquet(chunk / "utterances.parquet")["id"]}
    # chunks of >= 2 s: u0-u2, then u3-u4 (if the writer thread committed it before the kill) were
    # committed; u5 was being run when killed
    assert len(stored) in (3, 5)
    forward, seen = checkpoint.model.forward, []

    def counting_forward(input_values: torch.Tensor, **kwargs: object) -> object:
        seen.append(input_values.shape[0])
        return forward(input_values, **kwargs)

    checkpoint.model.forward = counting_forward
    resumed, hit = extract(checkpoint, corpus, cache, torch.float32, batch_seconds=1, chunk_seconds=2)
    assert not hit and sum(seen) == len(corpus.utterances) - len(stored)
    checkpoint.model.forward = forward
    whole, _ = extract(checkpoint, corpus, tmp_path / "whole", torch.float32, batch_seconds=1)
    assert_same_store(whole, resumed)
