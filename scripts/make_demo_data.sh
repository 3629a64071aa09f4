#!/usr/bin/env bash
# Regenerates the demo data set src/psilearn/demo_data/molecules.xyz with psilearn's labeling engine:
# 300 configurations (75 each of water, ammonia, methanol, formaldehyde) from GFN2-xTB Langevin MD
# at 500 K (0.5 fs steps, one frame every 100 fs after 1 ps), labelled with PBE0/def2-SVPD (PySCF,
# grid level 3): total_energy (Hartree), dipole_moment (e*Bohr, centre of mass), alpha (analytic CPHF
# static polarizability, Bohr^3, 9 numbers row-major).
#
#   DB=/path/demo_labels.db WORKERS=2 bash scripts/make_demo_data.sh
#
# Resumable: re-running skips structures already in the database.
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${DB:-build/demo_labels.db}
WORKERS=${WORKERS:-2}
OUT=${OUT:-src/psilearn/demo_data/molecules.xyz}
mkdir -p build "$(dirname "$DB")"
if [ ! -s build/demo_frames.xyz ]; then
  .venv/bin/psilearn sample --smiles O --smiles N --smiles CO --smiles C=O --conformers 1 --mode md \
    --temperature 500 --timestep 0.5 --steps 17000 --stride 200 --seed 11 -o build/demo_frames_all.xyz
  # drop the first 10 frames of each molecule (1 ps of equilibration)
  .venv/bin/python - <<'PY'
import ase.io
frames = ase.io.read("build/demo_frames_all.xyz", ":")
per = len(frames) // 4
keep = [a for m in range(4) for a in frames[m * per + 10 : (m + 1) * per]]
ase.io.write("build/demo_frames.xyz", keep)
print(f"{len(keep)} frames")
PY
fi
.venv/bin/psilearn label build/demo_frames.xyz --method pbe0/def2-svpd \
  --observables energy,dipole,polarizability --db "$DB" --workers "$WORKERS" -o "$OUT"
