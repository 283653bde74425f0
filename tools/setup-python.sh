#!/usr/bin/env bash
# Installs what the PyTorch tools (tools/reference, tools/train, tools/convert) need on Debian:
# CPU PyTorch 1.13 with OpenBLAS (≈25× faster than without). The C# build and tests need none of it.
set -euo pipefail
apt-get update
apt-get install -y python3-torch python3-numpy libopenblas0-pthread
/usr/bin/python3 -c "import torch; print('torch', torch.__version__)"
