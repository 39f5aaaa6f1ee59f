#!/usr/bin/env bash
# Downloads into .whl/ the wheels scripts/bench_gpu.py needs on the lent GPU machine beyond what its
# image holds (torch, transformers, numpy, pandas, pyarrow, scikit-learn, filelock, tqdm): soundfile
# with cffi and pycparser to read audio, soxr to resample. That machine has Python 3.12 and no
# network, so the wheels travel with the working tree (`carry: [".whl"]`); README "On a GPU" has
# the command to run there.
#
#   bash scripts/gpu_wheels.sh              # Python 3.12 wheels, for the GPU machine
#   PYTHON_VERSION=3.11 bash scripts/gpu_wheels.sh .whl-311   # for a local rehearsal
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:-.whl}
rm -rf "$target"
python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -d "$target" \
    soundfile==0.14.0 cffi==2.1.1 pycparser==3.12 soxr==1.1.0
du -sh "$target"
