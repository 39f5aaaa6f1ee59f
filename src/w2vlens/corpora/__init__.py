"""Corpora: a manifest, a Kaldi data dir or a Hugging Face dataset read into a `Corpus` of utterances
(`corpus`, `kaldi`, `hf`), audio reading (`audio`) and transcript normalisation (`text`)."""
