"""Speech synthesis with the libespeak-ng that the `espeakng-loader` wheel ships.

Written by hand over ctypes because no maintained Python binding drives that bundled library
in memory: the wrappers on PyPI either shell out to an `espeak-ng` executable (not installed)
or only phonemize. Synthesis runs synchronously and collects the samples from the callback.
"""

from __future__ import annotations

import ctypes
import threading

import numpy as np

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_ESPEAK_CHARS_UTF8 = 1
_PARAM_RATE = 1
_PARAM_PITCH = 3
_PARAM_RANGE = 4

_CALLBACK = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p
)


class EspeakSynthesizer:
    """Synthesises text to float32 audio with a given eSpeak NG voice, rate and pitch.

    libespeak-ng keeps global state, so one instance per process is shared through a lock.
    """

    _lock = threading.Lock()
    _instance: EspeakSynthesizer | None = None

    def __new__(cls) -> EspeakSynthesizer:
        with cls._lock:
            if cls._instance is None:
                cls._instance = super().__new__(cls)
                cls._instance._load()
            return cls._instance

    def _load(self) -> None:
        import espeakng_loader

        self._lib = ctypes.CDLL(espeakng_loader.get_library_path())
        data_path = espeakng_loader.get_data_path().encode()
        self.sample_rate: int = self._lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path, 0
        )
        if self.sample_rate <= 0:
            raise RuntimeError(f"libespeak-ng failed to initialise with data at {data_path!r}")
        self._chunks: list[np.ndarray] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced for the library's lifetime
        self._lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: ctypes.POINTER(ctypes.c_short), num_samples: int, _events: int) -> int:
        if num_samples > 0:
            self._chunks.append(np.ctypeslib.as_array(wav, shape=(num_samples,)).copy())
        return 0

    def synthesize(self, text: str, voice: str, rate: int, pitch: int, pitch_range: int = 50) -> np.ndarray:
        """Returns the audio of `text` in [-1, 1] at `self.sample_rate`, edge silence trimmed."""
        with self._lock:
            if self._lib.espeak_SetVoiceByName(voice.encode()) != 0:
                raise ValueError(f"eSpeak NG has no voice {voice!r}")
            self._lib.espeak_SetParameter(_PARAM_RATE, rate, 0)
            self._lib.espeak_SetParameter(_PARAM_PITCH, pitch, 0)
            self._lib.espeak_SetParameter(_PARAM_RANGE, pitch_range, 0)
            self._chunks = []
            encoded = text.encode("utf-8") + b"\0"
            self._lib.espeak_Synth(
                encoded, len(encoded), 0, _POS_CHARACTER, 0, _ESPEAK_CHARS_UTF8, None, None
            )
            self._lib.espeak_Synchronize()
            chunks, self._chunks = self._chunks, []
        if not chunks:
            raise RuntimeError(f"eSpeak NG produced no audio for {text!r}")
        audio = np.concatenate(chunks).astype(np.float32) / 32768.0
        voiced = np.flatnonzero(np.abs(audio) > 1e-4)
        return audio[voiced[0] : voiced[-1] + 1] if voiced.size else audio
