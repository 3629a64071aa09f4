"""Collinear moments of a real set: the `initial_magmoms` of the elasticity crystals (issue 16).

../shared/data/matten_tensors/elastic_tensors.extxyz (100 crystals, 73 elements; 17 with non-zero
`initial_magmoms`). A few small crystals keep the lambda-SOAP small (its size grows with the square
of the number of elements). Elastic tensors C_ijkl = C_jikl = C_ijlk = C_klij (2x0e + 2x2e + 4e), GPa.

1. All-zero moments change nothing: on the crystals whose moments are all zero, SA-GPR with
   `magnetic_moments: collinear` and without it (same data, fixed regularisation) predict the same
   tensors for every crystal of the file's selection (max relative difference printed).
2. Global sign flip: the model with moments, fitted on crystals with non-zero moments too, predicts
   the same tensors and std for m and -m (max absolute difference printed; 0 means bit-identical).

3. The same for the network (`--nn`): the sign flip on a network with `nn.magnetic_moments:
   collinear` (a few epochs: exactness, not accuracy, is checked), and all-zero moments against the
   same network with its moment input weights zeroed (the only part the option adds).

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/magnetic_elastic_invariance.py [--nn]    # seconds; --nn ~1-3 min
"""

from __future__ import annotations

import argparse
import os

import numpy as np

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data", "matten_tensors", "elastic_tensors.extxyz")
# NPr, LaP, CeP, PbTe, BiTe, AsGd, AsPu, As, SbTm (CeP, AsGd, AsPu with non-zero moments)
FRAMES = "7,21,24,47,66,67,77,57,50"
SOAP = {"cutoff": 4.5, "max_radial": 3, "max_angular": 2}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--frames", default=FRAMES, help="frame numbers in the file")
    ap.add_argument("--nn", action="store_true", help="also check the network")
    args = ap.parse_args()
    if not os.path.isfile(DATA):
        print(f"SKIP: {DATA} not found (benchmarks read ../shared/data beside the checkout)")
        return 0
    from psilearn import Target, load_dataset, read_structures
    from psilearn.models.factory import fit_model

    every = read_structures(DATA)
    frames = [every[int(i)] for i in args.frames.split(",")]
    magnetic = [bool(np.any(a.arrays["initial_magmoms"] != 0)) for a in frames]
    zero = [a for a, m in zip(frames, magnetic) if not m]
    elements = sorted({s for a in frames for s in a.get_chemical_symbols()})
    print(f"{len(frames)} crystals ({sum(magnetic)} with non-zero moments), {len(elements)} elements: {' '.join(elements)}")
    target = Target("elastic_tensor", tensor="ijkl=jikl=ijlk=klij")

    def fit(data, moments):
        model = {"n_sparse": 1000, "regularization": 1e-3, "magnetic_moments": moments}
        return fit_model("sagpr", target, load_dataset(data, target), {"soap": SOAP, "model": model})

    with_m, without = fit(zero, "collinear"), fit(zero, "none")
    a, b = with_m.predict(zero), without.predict(zero)
    dev = np.abs(a.values - b.values).max() / np.abs(b.values).max()
    dev_std = np.abs(a.std - b.std).max() / np.abs(b.std).max()
    print(f"1. all-zero moments ({len(zero)} crystals): with vs without the moment input, max relative difference "
          f"{dev:.1e} (tensor), {dev_std:.1e} (std)")
    model = fit(frames, "collinear")
    flipped = []
    for x in frames:
        y = x.copy()
        y.arrays["initial_magmoms"] = -x.arrays["initial_magmoms"]
        flipped.append(y)
    p, q = model.predict(frames), model.predict(flipped)
    print(f"2. global sign flip m -> -m ({len(frames)} crystals): max |difference| {np.abs(p.values - q.values).max():.1e} GPa "
          f"(tensor), {np.abs(p.std - q.std).max():.1e} GPa (std); tensors up to {np.abs(p.values).max():.0f} GPa")
    if args.nn:
        _network(frames, flipped, zero, target)
    return 0


def _network(frames, flipped, zero, target) -> None:
    import torch

    from psilearn import load_dataset
    from psilearn.models.nn import NetworkConfig, NNModel, TrainConfig

    net = NetworkConfig(cutoff=4.5, channels=8, layers=2, correlation=2, lmax=4, magnetic_moments="collinear")
    model = NNModel(target, net, TrainConfig(epochs=5, batch_size=3, threads=1, val_fraction=0.25)).fit(load_dataset(frames, target))
    p, q = model.predict(frames), model.predict(flipped)
    print(f"3a. network, global sign flip ({len(frames)} crystals): max |difference| {np.abs(p.values - q.values).max():.1e} GPa (tensor), "
          f"{np.abs(p.std - q.std).max():.1e} GPa (std)")
    a = model.predict(zero)
    with torch.no_grad():  # the moment is the last input of the element embedding: zero its weights
        for member in model.nets:
            w = member.embedding.weight.view(-1, net.channels)
            w[-1].zero_()
    b = model.predict(zero)
    print(f"3b. network, all-zero moments ({len(zero)} crystals): vs the same network without its moment input, max relative "
          f"difference {np.abs(a.values - b.values).max() / np.abs(b.values).max():.1e} (tensor)")


if __name__ == "__main__":
    raise SystemExit(main())
