"""w2vlens: look inside wav2vec2-family speech models and see what fine-tuning changed."""

import os

# FAISS and PyTorch each bring their own OpenMP runtime. With the default (active) wait policy the
# idle threads of one keep spinning while the other computes: on 2 cores that made FAISS K-means
# about 5x slower. Passive waiting costs nothing measurable here. It takes effect when w2vlens is
# imported before torch and faiss (as `python -m run` does); set OMP_WAIT_POLICY to override.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
