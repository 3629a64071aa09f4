"""`psilearn split`: training / validation / test files from one data set."""

from __future__ import annotations

import argparse

SPLIT_HELP = """Write PREFIX_train.xyz, PREFIX_val.xyz and PREFIX_test.xyz (two fractions: PREFIX_train.xyz and
PREFIX_test.xyz) holding the given fractions of the structures of DATA, every label kept.

  random (default)  shuffled with --seed
  --by KEY          all structures with the same atoms.info[KEY] (e.g. smiles, a molecule or trajectory
                    id) go to the same part, so the test set holds unseen molecules; fractions are met
                    approximately, in structures
  --fps             the training part is picked by farthest-point sampling on invariant SOAP descriptors
                    (averaged over each structure's atoms), so it spans the data set; the remaining
                    structures are shuffled into the validation and test parts

Same DATA, fractions, mode and seed: the same files. Example:
  psilearn split molecules.xyz --fractions 0.8,0.1,0.1 --by smiles -o mols
  psilearn fit mols_train.xyz --target alpha --tensor ij=ji --val-fraction 0.1 -o alpha.model
  psilearn evaluate alpha.model mols_test.xyz"""


def _fractions(text: str) -> list[float]:
    from psilearn.data.splits import check_fractions

    try:
        return check_fractions(text.split(","))
    except ValueError as exc:
        raise ValueError(f"--fractions: {exc}") from None


def cmd_split(args) -> int:
    from psilearn.data import read_structures, write_structures
    from psilearn.evaluation.splitting import split_structures

    fractions = _fractions(args.fractions)
    frames = read_structures(args.data)
    parts = split_structures(frames, fractions, by=args.by, fps=args.fps, seed=args.seed, progress=args.fps)
    how = f"by {args.by!r}" if args.by else ("farthest-point training set" if args.fps else "random")
    print(f"split {len(frames)} structures from {args.data} ({how}, seed {args.seed}):")
    from psilearn.data.outputs import check_outputs

    paths = {name: f"{args.output}_{name}.xyz" for name in parts}
    check_outputs({f"-o ({name})": (path, "file") for name, path in paths.items()}, [args.data],
                  overwrite=bool(getattr(args, "overwrite", False)))
    for name, idx in parts.items():
        path = paths[name]
        write_structures(path, [frames[i] for i in idx])
        n_groups = len({str(frames[i].info[args.by]) for i in idx}) if args.by else 0
        groups = f", {n_groups} group{'s' if n_groups != 1 else ''}" if args.by else ""
        print(f"  {name:<6}{len(idx):>7} structures ({100 * len(idx) / len(frames):.1f}%{groups}) -> {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("split", help="split a data set into train / validation / test files",
                       description=SPLIT_HELP, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data", metavar="DATA", help="structures (any ASE-readable file, @slice allowed, or a DeePMD set)")
    p.add_argument("--fractions", default="0.8,0.1,0.1", help="train,val,test fractions summing to 1 (default 0.8,0.1,0.1), "
                   "or train,test")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--by", metavar="KEY", default=None, help="keep structures sharing atoms.info[KEY] in one part")
    how.add_argument("--fps", action="store_true", help="farthest-point sampling of the training part on SOAP descriptors")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("-o", "--output", required=True, metavar="PREFIX", help="writes PREFIX_train.xyz, PREFIX_val.xyz, PREFIX_test.xyz")
    p.set_defaults(func=cmd_split, reads=("data",))
