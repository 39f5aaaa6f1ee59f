"""Rebuilds the embedded demo model pair: pre-training, CTC fine-tuning, test CER and report.

Usage: python scripts/build_demo.py [--out DIR] [--cache-dir DIR] [--seed N] [--figure PNG]
(`make demo`). About 16 minutes on 2 CPU cores, plus 1.5 for the demo corpus if not cached.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

from w2vlens.paths import DEMO_PAIR_DIR, default_cache_dir
from w2vlens.runtime import configure_process

# Training uses torch's thread pool alone, which runs best with OpenMP's default active waiting
# (the app asks for passive waiting, for FAISS's sake); the pair's timings were measured so.
configure_process(omp_wait_policy="ACTIVE")

import transformers  # noqa: E402

from w2vlens.demo.training import build_demo_pair  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEMO_PAIR_DIR, help="folder for pretrained/ and finetuned/")
    parser.add_argument("--cache-dir", type=Path, default=None, help="corpus cache (default: the w2vlens cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--figure", type=Path, default=REPO / "docs" / "demo_pretraining_loss.png")
    args = parser.parse_args()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    for name in ("pytorch_lightning", "lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.WARNING)
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    warnings.filterwarnings("ignore", ".*LeafSpec.*")

    started = time.perf_counter()
    report = build_demo_pair(args.out, args.cache_dir or default_cache_dir(), args.seed, figure=args.figure)
    seconds = report["seconds"]
    print(f"test CER: {100 * report['test_cer']:.2f}%")
    print("seconds: " + ", ".join(f"{phase} {value:.0f}" for phase, value in seconds.items()))
    print(f"total: {time.perf_counter() - started:.0f} s (corpus building included)")


if __name__ == "__main__":
    main()
