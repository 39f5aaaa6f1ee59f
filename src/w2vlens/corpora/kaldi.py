"""Kaldi data directories as corpora: `wav.scp`, `text`, optional `segments`, `utt2*` and `spk2*` files.

Kaldi's table files are `<key> <value>` lines, read here by hand: the format is one split per line,
and the Python Kaldi readers (kaldiio, lhotse) bring far more than these few files need.

- `wav.scp`: `<recording-id> <path>`; relative paths are taken from the data directory, then from the
  working directory. A piped command (`<recording-id> <command> |`) is refused unless `run_commands`
  is set: then it runs once, in the data directory, and its output is kept as FLAC in the cache.
- `segments` (optional): `<utterance-id> <recording-id> <start> <end>` seconds, end -1 for the end of
  the recording; without it every recording is one utterance.
- `text` (optional): `<utterance-id> <transcript>`.
- `utt2spk` becomes the metadata column `speaker`, any other `utt2<name>` the column `<name>`, and
  `spk2<name>` (but `spk2utt`) the column `<name>` through `utt2spk` (e.g. `spk2gender`).

Like Kaldi's `extract-segments`, a segment that ends up to 0.5 s past its recording is cut at the
end, and one that starts or ends later is skipped with a warning; transcripts and segments whose
utterance or recording has no audio are skipped with a warning too (a subset of `wav.scp` is common).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import subprocess
from pathlib import Path

from w2vlens.corpora.audio import audio_duration, transcode_to_flac
from w2vlens.corpora.corpus import RESERVED_METADATA, Corpus, Utterance
from w2vlens.errors import W2VLensError
from w2vlens.paths import default_cache_dir

log = logging.getLogger(__name__)

MAX_OVERSHOOT = 0.5  # seconds a segment may run past its recording's end (Kaldi's --max-overshoot)
_SHOWN = 5  # ids named in one warning


def _read_table(path: Path) -> dict[str, tuple[int, str]]:
    """`<key> <value>` lines as {key: (line number, value)}; the value may be empty."""
    table: dict[str, tuple[int, str]] = {}
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as error:
        raise W2VLensError(f"{path}: not UTF-8 text ({error})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        key, *rest = line.split(maxsplit=1)
        value = rest[0].strip() if rest else ""
        if key in table:
            raise W2VLensError(f"{path}: line {number}: {key!r} appears more than once (first on line {table[key][0]})")
        table[key] = (number, value)
    return table


def _warn_skipped(path: Path, what: str, ids: list[str]) -> None:
    if ids:
        shown = ", ".join(ids[:_SHOWN]) + (", ..." if len(ids) > _SHOWN else "")
        log.warning("%s: %d %s skipped (%s)", path, len(ids), what, shown)


def _piped_audio(where: str, command: str, directory: Path, cache_dir: Path) -> Path:
    """Runs a wav.scp command once and keeps its output as FLAC in the cache (keyed by the command)."""
    key = hashlib.sha1(f"{directory.resolve()}\0{command}".encode()).hexdigest()[:20]
    target = cache_dir / "kaldi-pipes" / f"{key}.flac"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = target.with_name(f".{key}.{os.getpid()}.out")
    try:
        with raw.open("wb") as output:
            result = subprocess.run(command, shell=True, cwd=directory, stdout=output, stderr=subprocess.PIPE)
        if result.returncode != 0:
            reason = (result.stderr.decode(errors="replace").strip().splitlines() or ["no message"])[-1]
            raise W2VLensError(f"{where}: command failed (exit {result.returncode}): {reason}")
        try:
            transcode_to_flac(raw, target)
        except W2VLensError as error:
            raise W2VLensError(f"{where}: the command's output is not readable audio ({error})") from None
    finally:
        raw.unlink(missing_ok=True)
    return target


def _recordings(directory: Path, run_commands: bool, cache_dir: Path) -> dict[str, Path]:
    scp = directory / "wav.scp"
    recordings = {}
    for recording, (number, value) in _read_table(scp).items():
        where = f"{scp}: line {number}: recording {recording!r}"
        if not value:
            raise W2VLensError(f"{where} has no path")
        if value.endswith("|"):
            if not run_commands:
                raise W2VLensError(f"{where} is a piped command ({value}); set data.run_commands=true to run "
                                   "such commands (once; their output is cached), or point wav.scp at audio files")
            recordings[recording] = _piped_audio(where, value[:-1].strip(), directory, cache_dir)
            continue
        if len(value.split()) > 1:
            raise W2VLensError(f"{where}: expected one path, got {value!r} (a command must end with '|')")
        candidates = [directory / value, Path(value)] if not Path(value).is_absolute() else [Path(value)]
        found = next((c.resolve() for c in candidates if c.is_file()), None)
        if found is None:
            if re.search(r"\.ark:\d+$", value):
                raise W2VLensError(f"{where}: archive offsets ({value}) are not supported; write the audio out "
                                   "as files (e.g. with wav-copy) and list those")
            raise W2VLensError(f"{where}: audio file not found: {candidates[0].resolve()}")
        recordings[recording] = found
    if not recordings:
        raise W2VLensError(f"{scp}: lists no recordings")
    return recordings


def _segments(directory: Path, recordings: dict[str, Path]) -> list[Utterance]:
    path = directory / "segments"
    durations: dict[str, float] = {}
    utterances, no_recording, past_end = [], [], []
    for uid, (number, value) in _read_table(path).items():
        fields = value.split()
        try:
            if len(fields) != 3:
                raise ValueError
            recording, start, end = fields[0], float(fields[1]), float(fields[2])
        except ValueError:
            raise W2VLensError(f"{path}: line {number}: expected '<utterance-id> <recording-id> <start> <end>', "
                               f"got {uid} {value!r}") from None
        if start < 0 or (end != -1 and end <= start):
            raise W2VLensError(f"{path}: line {number}: utterance {uid!r} has start {start} and end {end}")
        if recording not in recordings:
            no_recording.append(uid)
            continue
        if recording not in durations:
            durations[recording] = audio_duration(recordings[recording])
        duration = durations[recording]
        if start >= duration or end > duration + MAX_OVERSHOOT:
            past_end.append(f"{uid} ({start:g}-{end:g} s of {duration:.2f} s)")
            continue
        utterances.append(Utterance(uid, recordings[recording], start=start,
                                    end=None if end == -1 or end >= duration else end,
                                    metadata={"recording": recording}))
    _warn_skipped(path, "segments whose recording is not in wav.scp were", no_recording)
    _warn_skipped(path, f"segments past the end of their recording (by more than {MAX_OVERSHOOT} s) were",
                  past_end)
    return utterances


def _metadata(directory: Path, ids: set[str]) -> dict[str, dict[str, str]]:
    """Per utterance: `utt2*` columns, then `spk2*` columns through `utt2spk`."""
    columns: dict[str, dict[str, str]] = {}
    for path in sorted(directory.glob("utt2*")):
        name = "speaker" if path.name == "utt2spk" else path.name.removeprefix("utt2")
        columns[path.name if name in RESERVED_METADATA else name] = {
            uid: value for uid, (_, value) in _read_table(path).items() if uid in ids}
    speakers = columns.get("speaker", {})
    for path in sorted(directory.glob("spk2*")):
        name = path.name.removeprefix("spk2")
        if path.name == "spk2utt" or name in columns:
            continue
        by_speaker = {spk: value for spk, (_, value) in _read_table(path).items()}
        columns[path.name if name in RESERVED_METADATA else name] = {
            uid: by_speaker[spk] for uid, spk in speakers.items() if spk in by_speaker}
    metadata: dict[str, dict[str, str]] = {uid: {} for uid in ids}
    for name, values in columns.items():
        for uid, value in values.items():
            metadata[uid][name] = value
    return metadata


def load_kaldi_dir(path: str | Path, name: str | None = None, run_commands: bool = False,
                   cache_dir: str | Path | None = None) -> Corpus:
    """Reads a Kaldi data directory (see the module docstring) as a corpus, in `segments` (or
    `wav.scp`) order; `cache_dir` keeps the output of piped commands when `run_commands` is set."""
    directory = Path(path).expanduser()
    if not (directory / "wav.scp").is_file():
        raise W2VLensError(f"{directory}: not a Kaldi data directory (no wav.scp)")
    recordings = _recordings(directory, run_commands, Path(cache_dir) if cache_dir else default_cache_dir())
    if (directory / "segments").is_file():
        utterances = _segments(directory, recordings)
    else:
        utterances = [Utterance(rid, audio) for rid, audio in recordings.items()]
    if not utterances:
        raise W2VLensError(f"{directory}: no utterance has audio")
    ids = {utt.id for utt in utterances}
    texts = {}
    if (directory / "text").is_file():
        table = _read_table(directory / "text")
        texts = {uid: value or None for uid, (_, value) in table.items() if uid in ids}
        _warn_skipped(directory / "text", "transcripts of utterances without audio were",
                      [uid for uid in table if uid not in ids])
    metadata = _metadata(directory, ids)
    return Corpus(name or directory.name, [
        Utterance(utt.id, utt.audio, texts.get(utt.id), metadata=utt.metadata | metadata[utt.id],
                  start=utt.start, end=utt.end)
        for utt in utterances
    ])
