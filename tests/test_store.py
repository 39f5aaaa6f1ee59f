"""The embedding store: kept layers and their extension, float16 storage, a key that covers what
changes values and nothing else, transcripts joined at open, damaged or concurrent stores, and
one-line errors for bad audio, bad options and an unwritable or full cache."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch

from w2vlens.corpora.audio import audio_duration, load_audio
from w2vlens.corpora.corpus import load_manifest
from w2vlens.embeddings import extract as extract_module
from w2vlens.embeddings.extract import extract, plan_batches, store_key
from w2vlens.embeddings.models import load_checkpoint, resolve_device, resolve_dtype
from w2vlens.embeddings.store import ArrayFile
from w2vlens.errors import W2VLensError

CPU = torch.device("cpu")


@pytest.fixture()
def finetuned(tiny_pair: tuple[Path, Path]) -> object:
    return load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)


def count_forwards(checkpoint: object) -> list[int]:
    """Patches the model to record the batch size of every forward pass."""
    forward, seen = checkpoint.model.forward, []

    def counting(input_values: torch.Tensor, **kwargs: object) -> object:
        seen.append(input_values.shape[0])
        return forward(input_values, **kwargs)

    checkpoint.model.forward = counting
    return seen


def reference_views(checkpoint: object, corpus: object, batch_seconds: float) -> dict[str, np.ndarray]:
    """Every view in corpus order from a plain loop over the same batches: no threads, no streams."""
    durations = {u.id: audio_duration(u) for u in corpus.utterances}
    batches = plan_batches(corpus.utterances, durations, batch_seconds, True, set())
    cnn: list[torch.Tensor] = []
    hook = checkpoint.model.base_model.feature_extractor.register_forward_hook(lambda _m, _i, out: cnn.append(out))
    per_utterance: dict[str, dict[str, np.ndarray]] = {}
    with torch.inference_mode():
        for batch in batches:
            audio = [load_audio(u, 16000) for u in batch]
            inputs = checkpoint.feature_extractor(audio, sampling_rate=16000, padding=True, return_tensors="pt",
                                                  return_attention_mask=True)
            cnn.clear()
            out = checkpoint.model(inputs.input_values, attention_mask=inputs["attention_mask"],
                                   output_hidden_states=True)
            counts = checkpoint.model.base_model._get_feat_extract_output_lengths(
                torch.tensor([len(a) for a in audio])).tolist()
            for index, (utt, count) in enumerate(zip(batch, counts, strict=True)):
                views = {"cnn": cnn[0].transpose(1, 2)[index, :count], "logits": out.logits[index, :count]}
                views |= {f"layer_{i:02d}": h[index, :count] for i, h in enumerate(out.hidden_states)}
                per_utterance[utt.id] = {name: values.numpy() for name, values in views.items()}
    hook.remove()
    return {name: np.concatenate([per_utterance[u.id][name] for u in corpus.utterances])
            for name in per_utterance[corpus.utterances[0].id]}


def test_pipelined_extractor_stores_exactly_what_a_plain_loop_computes(finetuned: object, corpus_manifest: Path,
                                                                       tmp_path: Path) -> None:
    corpus = load_manifest(corpus_manifest)
    store, _ = extract(finetuned, corpus, tmp_path, torch.float32, batch_seconds=3, loader_workers=2)
    reference = reference_views(finetuned, corpus, batch_seconds=3)
    assert store.array_names == set(reference)
    for name, values in reference.items():
        assert np.array_equal(store.array(name), values), name


def test_only_the_asked_layers_are_kept_and_a_later_run_adds_the_missing_ones(finetuned: object,
                                                                             corpus_manifest: Path,
                                                                             tmp_path: Path) -> None:
    corpus = load_manifest(corpus_manifest)
    seen = count_forwards(finetuned)
    first, hit = extract(finetuned, corpus, tmp_path, torch.float32, arrays=["layer_02", "logits"])
    assert not hit and first.array_names == {"layer_02", "logits"}
    assert {p.name for p in first.path.iterdir()} == {"meta.json", "utterances.parquet", "layer_02.bin", "logits.bin"}
    with pytest.raises(W2VLensError, match="does not keep 'cnn'.*extract.layers"):
        first.array("cnn")
    layer = np.array(first.array("layer_02"))
    again, hit = extract(finetuned, corpus, tmp_path, torch.float32, arrays=["logits"])
    assert hit and again.path == first.path
    forwards = len(seen)
    extended, hit = extract(finetuned, corpus, tmp_path, torch.float32, arrays=["cnn", "layer_02", "logits"])
    assert not hit and extended.path == first.path and len(seen) == 2 * forwards  # one more pass, not a new store
    assert extended.array_names == {"cnn", "layer_02", "logits"}
    assert np.array_equal(extended.array("layer_02"), layer)  # the existing arrays are untouched
    whole, _ = extract(finetuned, corpus, tmp_path / "whole", torch.float32)
    assert np.array_equal(extended.array("cnn"), whole.array("cnn"))
    assert [p.name for p in (tmp_path / "stores").iterdir()] == [first.path.name]  # no parts or temp files left


def test_float16_storage_holds_the_float32_values_rounded(finetuned: object, corpus_manifest: Path,
                                                          tmp_path: Path) -> None:
    corpus = load_manifest(corpus_manifest)
    wide, _ = extract(finetuned, corpus, tmp_path, torch.float32)  # auto: float32 for float32 compute
    narrow, _ = extract(finetuned, corpus, tmp_path, torch.float32, storage_dtype="float16")
    assert wide.meta["storage_dtype"] == "float32" and narrow.path != wide.path
    assert narrow.array("layer_02").dtype == np.float16
    assert np.array_equal(narrow.array("layer_02"), wide.array("layer_02").astype(np.float16))
    assert narrow.array("layer_02").nbytes * 2 == wide.array("layer_02").nbytes
    assert extract_module.resolve_storage_dtype("auto", torch.bfloat16) == "float16"


@pytest.mark.parametrize("storage", ["int8", "foo", "bfloat16"])
def test_non_float_storage_dtypes_are_refused(finetuned: object, corpus_manifest: Path, tmp_path: Path,
                                              storage: str) -> None:
    with pytest.raises(W2VLensError, match=f"extract.storage_dtype='{storage}': use auto, float16 or float32"):
        extract(finetuned, load_manifest(corpus_manifest), tmp_path, torch.float32, storage_dtype=storage)


def test_edited_transcripts_and_metadata_are_read_from_the_current_manifest(finetuned: object,
                                                                            corpus_manifest: Path,
                                                                            tmp_path: Path) -> None:
    extract(finetuned, load_manifest(corpus_manifest), tmp_path, torch.float32)
    table = pd.read_csv(corpus_manifest, sep="\t")
    table.loc[table.id == "u1", "text"] = "sade on märkä"
    table.loc[table.id == "u1", "annotator_1"] = "sade on marka"
    table["speaker"] = "s9"
    table.to_csv(corpus_manifest, sep="\t", index=False)
    store, hit = extract(finetuned, load_manifest(corpus_manifest), tmp_path, torch.float32)
    assert hit  # the audio did not change: the embeddings are reused
    utterances = store.utterances().set_index("id")
    assert utterances.loc["u1", "text"] == "sade on märkä" and utterances.loc["u1", "annotator_1"] == "sade on marka"
    assert set(store.frames()["speaker"]) == {"s9"}


def test_the_batch_plan_is_in_the_key(finetuned: object, corpus_manifest: Path) -> None:
    corpus = load_manifest(corpus_manifest)
    keys = {store_key(finetuned, corpus, torch.float32, "float32", 30, 1.0, seconds) for seconds in (1, 120)}
    assert len(keys) == 2  # padding changes values, so another batch plan is another store


def test_a_resumed_run_completes_the_same_batches(finetuned: object, tmp_path: Path) -> None:
    from helpers import write_corpus

    corpus = load_manifest(write_corpus(tmp_path / "corpus", n=12))
    forward, calls = finetuned.model.forward, []

    def crash_on_third(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("CUDA out of memory (simulated)")
        return forward(*args, **kwargs)

    finetuned.model.forward = crash_on_third
    with pytest.raises(RuntimeError, match="simulated"):
        extract(finetuned, corpus, tmp_path / "cache", torch.float32, batch_seconds=8, chunk_seconds=1)
    finetuned.model.forward = forward
    assert len(list((tmp_path / "cache" / "stores").glob("*.parts/chunk-*/meta.json"))) == 2  # two batches kept
    resumed, _ = extract(finetuned, corpus, tmp_path / "cache", torch.float32, batch_seconds=8, chunk_seconds=1)
    whole, _ = extract(finetuned, corpus, tmp_path / "whole", torch.float32, batch_seconds=8)
    assert resumed.meta["arrays"] == whole.meta["arrays"]  # the same bytes: batches of several utterances each
    for name in whole.array_names:
        assert np.array_equal(resumed.array(name), whole.array(name)), name


def test_non_finite_audio_is_refused_before_anything_is_stored(finetuned: object, corpus_manifest: Path,
                                                               tmp_path: Path) -> None:
    bad = corpus_manifest.parent / "wav" / "u3.wav"
    audio, rate = sf.read(bad, dtype="float32")
    audio[100:200] = np.nan
    sf.write(bad, audio, rate, subtype="FLOAT")
    with pytest.raises(W2VLensError, match=rf"^{bad}: audio of 'u3' has non-finite samples \(NaN or inf\)$"):
        extract(finetuned, load_manifest(corpus_manifest), tmp_path, torch.float32, batch_seconds=1, chunk_seconds=1)
    assert list((tmp_path / "stores").iterdir()) == []


def test_non_finite_model_outputs_are_refused(finetuned: object, corpus_manifest: Path, tmp_path: Path) -> None:
    forward = finetuned.model.forward

    def overflowing(*args: object, **kwargs: object) -> object:
        outputs = forward(*args, **kwargs)
        outputs.logits = outputs.logits * np.inf
        return outputs

    finetuned.model.forward = overflowing
    with pytest.raises(W2VLensError, match="the model's outputs are not finite"):
        extract(finetuned, load_manifest(corpus_manifest), tmp_path, torch.float32)
    assert list((tmp_path / "stores").iterdir()) == []


def test_damaged_stores_are_reported_and_extracted_again(finetuned: object, corpus_manifest: Path, tmp_path: Path,
                                                         caplog: pytest.LogCaptureFixture) -> None:
    corpus = load_manifest(corpus_manifest)
    store, _ = extract(finetuned, corpus, tmp_path, torch.float32)
    logits = np.array(store.array("logits"))
    (store.path / "logits.bin").write_bytes(bytes((store.path / "logits.bin").stat().st_size))  # zeroed, same size
    zeroed, hit = extract(finetuned, corpus, tmp_path, torch.float32)
    assert hit  # sizes are checked on every open, checksums when asked
    repaired, hit = extract(finetuned, corpus, tmp_path, torch.float32, verify=True)
    assert not hit and np.array_equal(repaired.array("logits"), logits)
    assert f"damaged store {store.path}" in caplog.text and "checksum" in caplog.text
    with open(store.path / "layer_01.bin", "r+b") as handle:
        handle.truncate(100)
    caplog.clear()
    again, hit = extract(finetuned, corpus, tmp_path, torch.float32)
    assert not hit and np.array_equal(again.array("logits"), logits)
    assert "layer_01.bin: 100 bytes on disk" in caplog.text


RACING_RUN = textwrap.dedent("""
    import sys
    from pathlib import Path
    import torch
    from w2vlens.corpora.corpus import load_manifest
    from w2vlens.embeddings.extract import extract
    from w2vlens.embeddings.models import load_checkpoint

    checkpoint = load_checkpoint(sys.argv[1], require_ctc=True, device=torch.device("cpu"), dtype=torch.float32)
    forward, calls = checkpoint.model.forward, []
    checkpoint.model.forward = lambda *a, **k: calls.append(1) or forward(*a, **k)
    store, hit = extract(checkpoint, load_manifest(Path(sys.argv[2])), Path(sys.argv[3]), torch.float32,
                         batch_seconds=1)
    print(len(calls), hit, store.n_frames)
""")


def test_two_runs_on_a_fresh_cache_extract_once(tiny_pair: tuple[Path, Path], corpus_manifest: Path,
                                                tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    command = [sys.executable, "-c", RACING_RUN, str(tiny_pair[1]), str(corpus_manifest), str(tmp_path / "cache")]
    jobs = [subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for _ in range(2)]
    results = []
    for job in jobs:
        out, err = job.communicate(timeout=300)
        assert job.returncode == 0, err[-2000:]
        results.append(out.split())
    forwards = sorted(int(r[0]) for r in results)
    assert forwards == [0, 6]  # batches of one utterance: the second run waited, then reused the store
    assert {r[1] for r in results} == {"False", "True"} and results[0][2] == results[1][2]


def test_an_unwritable_cache_is_one_line(finetuned: object, corpus_manifest: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(self: Path, *args: object, **kwargs: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", str(self))

    monkeypatch.setattr(Path, "mkdir", refuse)
    with pytest.raises(W2VLensError, match=rf"^{tmp_path}: embedding cache not writable \(Permission denied\)"):
        extract(finetuned, load_manifest(corpus_manifest), tmp_path, torch.float32)


def test_a_full_disk_is_one_line_and_keeps_the_extracted_parts(finetuned: object, corpus_manifest: Path,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = load_manifest(corpus_manifest)
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(extract_module.shutil, "disk_usage", lambda _path: usage(10**9, 10**9 - 10**6, 10**6))
    with pytest.raises(W2VLensError, match=r"stores: 1 MB free, merging the store needs \d+ MB; free some space"):
        extract(finetuned, corpus, tmp_path, torch.float32)
    monkeypatch.undo()
    seen = count_forwards(finetuned)
    store, hit = extract(finetuned, corpus, tmp_path, torch.float32)
    assert not hit and seen == [] and store.n_frames > 0  # the merge reused the parts

    def no_space(self: ArrayFile, rows: np.ndarray) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(ArrayFile, "write", no_space)
    with pytest.raises(W2VLensError, match="embedding cache disk full"):
        extract(finetuned, corpus, tmp_path / "other", torch.float32)


def test_bad_extract_options_are_one_line(tiny_pair: tuple[Path, Path]) -> None:
    with pytest.raises(W2VLensError, match=r"^extract.dtype='fp16': use auto, float32, bfloat16, float16$"):
        resolve_dtype("fp16", CPU)
    if not torch.cuda.is_available():
        with pytest.raises(W2VLensError, match="^extract.device=cuda: no such CUDA GPU on this machine"):
            resolve_device("cuda")
    with pytest.raises(W2VLensError, match="^extract.device='tpu'"):
        resolve_device("tpu")


def test_ctc_checkpoint_without_a_tokenizer_is_one_line(tmp_path: Path) -> None:
    from helpers import save_tiny_pair

    _, finetuned_dir = save_tiny_pair(tmp_path)
    for name in ("vocab.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json"):
        (finetuned_dir / name).unlink(missing_ok=True)
    with pytest.raises(W2VLensError, match="CTC checkpoint without a usable tokenizer") as error:
        load_checkpoint(str(finetuned_dir), require_ctc=True, device=CPU, dtype=torch.float32)
    assert "\n" not in str(error.value)


@pytest.mark.slow
def test_float16_storage_keeps_the_demo_ami(tmp_path: Path) -> None:
    """Table 1's fine-tuned AMI on the demo with float16 storage within 0.002 of float32 storage.

    Averaged over four K-means seeds: one clustering is chaotic in its input (a single seed moved
    by 0.003 when measured, the other three by at most 0.0002), the expected AMI is what storage
    must not change."""
    from w2vlens.analysis.cluster import KMeans
    from w2vlens.analysis.metrics import clustering_scores
    from w2vlens.corpora.corpus import demo_corpus
    from w2vlens.labelling.frames import label_frames
    from w2vlens.paths import DEMO_PAIR_DIR

    checkpoint = load_checkpoint(str(DEMO_PAIR_DIR / "finetuned"), require_ctc=True, device=CPU, dtype=torch.float32)
    corpus = demo_corpus("test")
    ami = {}
    for storage in ("float32", "float16"):
        store, _ = extract(checkpoint, corpus, tmp_path, torch.float32, storage_dtype=storage,
                           arrays=[f"layer_{checkpoint.num_layers:02d}", "logits"])
        labels = label_frames(np.asarray(store.array("logits"), np.float32), store.utterances(), store.vocabulary, 10)
        embeddings = np.asarray(store.array(store.layer_name(-1)), np.float32)
        k = len(store.vocabulary) + 1
        ami[storage] = np.mean([clustering_scores(labels.pseudo, KMeans(k, seed=seed).fit(embeddings).labels_)["ami"]
                                for seed in range(4)])
    print("demo fine-tuned AMI (mean of 4 seeds) by storage dtype:", ami)
    assert abs(ami["float16"] - ami["float32"]) <= 0.002


def test_spans_give_each_utterances_rows(tiny_pair: tuple[Path, Path], corpus_manifest: Path, tmp_path: Path) -> None:
    checkpoint = load_checkpoint(str(tiny_pair[1]), require_ctc=True, device=CPU, dtype=torch.float32)
    store, _ = extract(checkpoint, load_manifest(corpus_manifest), tmp_path, torch.float32, arrays=["logits"])
    spans = list(store.spans())
    assert [utt.id for utt, _ in spans] == store.utterances()["id"].tolist()
    assert spans[0][1].start == 0 and spans[-1][1].stop == store.n_frames
    assert all(a.stop == b.start for (_, a), (_, b) in zip(spans[:-1], spans[1:], strict=True))  # in order
