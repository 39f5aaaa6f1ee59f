"""w2vlens: look inside wav2vec2-family speech models and see what fine-tuning changed.

Importing it changes nothing in the process: entry points call `w2vlens.runtime.configure_process`."""
