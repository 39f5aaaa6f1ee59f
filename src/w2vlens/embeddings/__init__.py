"""The embedding layer: loading a wav2vec2-family checkpoint (`models`), extracting every frame's
representations (`extract`) into an atomic, resumable on-disk store (`store`)."""
