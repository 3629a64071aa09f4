"""`psilearn fit --hamiltonian` and the Hamiltonian part of `psilearn predict` (called by fit_cmds)."""

from __future__ import annotations

import sys

MICRO = 1e6  # Hartree -> micro-Hartree, the unit of the Hamiltonian-learning literature


def add_hamiltonian_flags(fit_parser) -> None:
    fit_parser.add_argument("--hamiltonian", action="store_true", help="learn AO Fock/Kohn-Sham matrices (labels of psilearn "
                            "label --observables hamiltonian; --target hamiltonian): with --model sagpr (the default) the "
                            "hamiltonian-sagpr kernel kind (options in 'soap:' and 'model:'), with --model nn the hamiltonian "
                            "network kind ('nn:', 'nn_train:', 'hamiltonian:'); docs/hamiltonian.md")


def add_predict_flags(predict_parser) -> None:
    predict_parser.add_argument("--scf-guess", metavar="METHOD", default=None,
                                help="hamiltonian models: also run PySCF's SCF (METHOD as in psilearn label, e.g. pbe/def2-svp; "
                                     "the model's basis) from the predicted density matrix and from PySCF's default guess, and "
                                     "report the cycles saved")


def metrics_lines(m: dict) -> list[str]:
    """Hamiltonian metrics (Hartree) as lines in micro-Hartree."""
    return [f"  H entry MAE {m['h_mae'] * MICRO:.1f} uHa; occupied orbital-energy MAE {m['occupied_energy_mae'] * MICRO:.1f} uHa; "
            f"gap MAE {m['gap_mae'] * MICRO:.1f} uHa; occupied orbital cosine {m['coefficient_cosine']:.6f} "
            f"({m['n_structures']} structures)"]


def fit_hamiltonian(args, run_options: dict) -> int:
    """``fit --hamiltonian``: the hamiltonian model on a file's F labels (its basis and shells)."""
    from psilearn.cli.density_fit import delta_kind_of
    from psilearn.cli.fit_options import labelled_kind_data
    from psilearn.cli.main import secondary_rank
    from psilearn.data import hamiltonian_target, load_hamiltonian_dataset
    from psilearn.models.factory import fit_model

    network = args.model in ("nn", "hamiltonian")
    base = "hamiltonian" if network else "hamiltonian-sagpr"
    ds, trains, config, seed = labelled_kind_data(args, base, "--hamiltonian", load_hamiltonian_dataset, hamiltonian_target,
                                                  " (--model sagpr: the kernel kind; --model nn: the network)",
                                                  models=("nn",) if network else ("sagpr",))
    kind = delta_kind_of(args, base, ds)
    print(f"fitting {ds.target.describe()} on {len(ds)} structures from {', '.join(trains)} ({base} kind)", file=sys.stderr)
    model = fit_model(kind, ds.target, ds, config, seed=seed, progress=True, run_options=run_options if network else None)
    if secondary_rank():  # torchrun/srun: rank 0 writes and reports the model
        return 0
    model.save(args.output, overwrite=args.overwrite)
    m = model.metadata
    how = (f"{m['n_parameters']} parameters, {m['members'][0]['epochs']} epochs: {m['members'][0]['stopped']}" if network else
           f"{m['n_parameters']} weights; sparse/training centres per block type: "
           + ", ".join(f"{k} {v['sparse']}/{v['centres']}" for k, v in m["block_types"].items()))
    print(f"fitted in {m['fit_seconds']:.1f} s ({how}); saved to {args.output}")
    if "heldout_metrics" not in m:
        return 0
    print(f"held-out estimate ({m['heldout_metrics']['method']}):")
    print("\n".join(metrics_lines(m["heldout_metrics"])))
    cut = m["cutoff_truncation"]
    print(f"cutoff {cut['cutoff']:g} A alone (labels with farther pair blocks zeroed): orbital-energy MAE "
          f"{cut['occupied_energy_mae'] * MICRO:.2f} uHa, H MAE {cut['h_mae'] * MICRO:.2f} uHa")
    return 0


def _check_guess_basis(method: str, basis: str) -> None:
    from psilearn.errors import ConfigError
    from psilearn.label import make_labeler
    from psilearn.targets.ao_basis import normalise_aux_basis

    lab = make_labeler(method)
    have = normalise_aux_basis(getattr(lab, "basis", "") or "")
    if have != basis:
        raise ConfigError(f"--scf-guess {method}: the model predicts F in basis {basis!r}, not {have or 'an AO basis'!r}; "
                          f"use a method in {basis}")


def prediction_frames(args, model, frames: list, pred) -> list:
    """What `psilearn predict` writes: hamiltonian models through :func:`predict_hamiltonian`, every
    other kind through the one prediction writer (``--scf-guess`` refused for them)."""
    from psilearn.data.prediction_io import predictions_to_atoms
    from psilearn.errors import ConfigError

    if getattr(model.target, "kind", None) == "hamiltonian":  # the hamiltonian kind, or a delta model of it
        return predict_hamiltonian(args, model, frames, pred)
    if getattr(args, "scf_guess", None):
        raise ConfigError(f"--scf-guess: {args.model} is a {model.kind} model; the guess comes from a hamiltonian model "
                          "(density models: psilearn density --scf-guess)")
    return predictions_to_atoms(frames, pred, model.target, with_std=not args.no_std)


def predict_hamiltonian(args, model, frames: list, pred) -> list:
    """Structures carrying the predicted F and what derives from it (orbital energies, HOMO, LUMO,
    gap, Mulliken charges, dipole); with ``--scf-guess`` the SCF cycles from the predicted guess."""
    from psilearn.data.prediction_io import predictions_to_atoms
    from psilearn.observe.hamiltonian import derive, scf_guess_cycles

    out = predictions_to_atoms(frames, pred, model.target, with_std=False)
    for i, (a, f) in enumerate(zip(out, pred.matrices)):
        d = derive(a, f, model.target.basis)
        a.info.update({"orbital_energies": d.orbital_energies, "mo_occ": d.mo_occ, "homo": d.homo, "lumo": d.lumo,
                       "gap": d.gap, "dipole_moment": d.dipole})
        a.arrays["mulliken_charges"] = d.mulliken_charges
        if pred.n_pairs_within_cutoff[i] < pred.n_pairs[i]:
            a.info["hamiltonian_pairs_beyond_cutoff"] = pred.n_pairs[i] - pred.n_pairs_within_cutoff[i]
        if pred.n_centres_outside is not None:
            a.info["hamiltonian_centres_outside"] = pred.n_centres_outside[i]
    if args.scf_guess:
        method = args.scf_guess
        _check_guess_basis(method, model.target.basis)
        saved = []
        for i, (a, f) in enumerate(zip(out, pred.matrices)):
            r = scf_guess_cycles(a, f, method)
            a.info.update({"scf_cycles_guess": r.cycles_guess, "scf_cycles_default": r.cycles_default})
            saved.append(r)
        tot_g, tot_d = sum(r.cycles_guess for r in saved), sum(r.cycles_default for r in saved)
        print(f"SCF ({method}) from the predicted guess: {tot_g} cycles in total vs {tot_d} from PySCF's default guess "
              f"({100 * (tot_d - tot_g) / max(tot_d, 1):.0f}% fewer) over {len(saved)} structures")
    beyond = sum(p - w for p, w in zip(pred.n_pairs, pred.n_pairs_within_cutoff))
    if beyond:
        print(f"note: {beyond} atom pairs lie beyond the model's cutoff ({getattr(model, 'inner', model).cutoff:g} A); their blocks are zero",
              file=sys.stderr)
    outside = sum(pred.n_centres_outside or [])
    if outside:  # centres: every atom and every ordered pair within the cutoff
        total = sum(len(a) + 2 * w for a, w in zip(out, pred.n_pairs_within_cutoff))
        print(f"note: {outside} of {total} atoms and ordered atom pairs ({100 * outside / total:.0f} %) lie outside the model's "
              "training range (per structure: hamiltonian_centres_outside); where most do, F and an SCF guess from it may be "
              "poor (docs/hamiltonian.md)", file=sys.stderr)
    return out
