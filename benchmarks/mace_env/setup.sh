#!/usr/bin/env bash
# Build the separate benchmark environment for MACE (mace-torch pins e3nn 0.4.4, which clashes
# with psilearn's e3nn 0.6, so it cannot share psilearn's venv).
#
#   bash benchmarks/mace_env/setup.sh [VENV_DIR]      # default /work/mace-venv
#
# torch==2.13.0 (CPU wheel) goes in first, then mace-torch constrained to that torch so pip never
# pulls CUDA builds. Run MACE with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 (e3nn 0.4.4 unpickles its
# constants with torch.load, which torch>=2.6 refuses by default).
set -euo pipefail
VENV="${1:-/work/mace-venv}"
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
if [ ! -x "$VENV/bin/python" ]; then
    "$PY" -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q torch==2.13.0
"$VENV/bin/python" -m pip install -q -c "$HERE/constraints.txt" mace-torch
TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1 "$VENV/bin/python" - <<'PY'
import torch, e3nn, mace
from mace.modules import AtomicDielectricMACE  # noqa: F401  (the dipole/polarizability model)
print("mace env ok: torch", torch.__version__, "e3nn", e3nn.__version__)
PY
echo "MACE venv ready: $VENV (use $VENV/bin/mace_run_train with TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD=1)"
