#!/usr/bin/env bash
# Builds src/psilearn/demo_data/md_molecules.xyz with psilearn's own labeling engine:
# 510 configurations (170 each of water, ammonia, methanol) from GFN2-xTB Langevin MD at 400 K
# (0.5 fs steps, one frame every 100 fs), labelled with PBE0/def2-SVPD (PySCF, grid level 3):
# total energy, dipole, CPHF polarizability, GIAO shielding tensors, Mulliken/Hirshfeld charges,
# orbital energies (atomic units; shielding in ppm; see docs/labeling.md for every key).
#
#   DB=/path/labels.db WORKERS=2 bash scripts/make_bundled_set.sh
#
# The campaign is resumable: re-running the same command skips finished structures, so it can be
# spread over several sittings (the database keeps every finished label).
set -euo pipefail
cd "$(dirname "$0")/.."
DB=${DB:-build/bundled_labels.db}
WORKERS=${WORKERS:-2}
mkdir -p build "$(dirname "$DB")"
if [ ! -s build/md_frames.xyz ]; then
  .venv/bin/psilearn sample --smiles O --smiles N --smiles CO --conformers 1 --mode md \
    --temperature 400 --timestep 0.5 --steps 34000 --stride 200 --seed 7 -o build/md_frames.xyz
fi
.venv/bin/psilearn label build/md_frames.xyz --method pbe0/def2-svpd \
  --observables energy,dipole,polarizability,shielding,charges,orbitals \
  --db "$DB" --workers "$WORKERS" -o src/psilearn/demo_data/md_molecules.xyz
