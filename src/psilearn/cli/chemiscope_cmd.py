"""`psilearn chemiscope MODEL DATA -o map.json.gz`: predictions on a map, for chemiscope.
The work is done by :func:`psilearn.observe.chemiscope_export.export_chemiscope`."""

from __future__ import annotations


def cmd_chemiscope(args) -> int:
    from psilearn.observe.chemiscope_export import export_chemiscope

    s = export_chemiscope(args.model, args.data, args.output, name=args.name or "", progress=not getattr(args, "quiet", False))
    print(f"wrote {s['path']}: {s['n_structures']} structures ({s['n_atoms']} atoms), {len(s['properties'])} properties, "
          f"{s['reference_note']}; "
          f"map: {s['map']} (PC1 {100 * s['explained'][0]:.0f}%, PC2 {100 * s['explained'][1]:.0f}% of the variance), "
          f"coloured by {s['color']}. Open it at https://chemiscope.org or with chemiscope.show_input()")
    return 0


def register(sub) -> None:
    p = sub.add_parser("chemiscope", help="export predictions with a structure map to a chemiscope file",
                       description="Predict MODEL's observable on DATA and write a chemiscope input file: the structures, the predicted "
                                   "values and their standard deviations (tensors as Cartesian components, isotropic value and "
                                   "anisotropy norm, or norms of their irreducible parts), the reference labels and errors when DATA "
                                   "carries them, per-atom properties for per-atom targets, and a 2-D map (PCA of the invariant "
                                   "lambda-SOAP features, per structure or per atom). Kernel models use their own SOAP settings; nn "
                                   "and baseline models the default ones.")
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA", help="structures (ASE-readable, @slice allowed), with or without reference labels")
    p.add_argument("-o", "--output", required=True, metavar="MAP.json.gz", help="chemiscope file (.json or .json.gz)")
    p.add_argument("--name", help="dataset name shown by chemiscope (default: the target and model kind)")
    p.set_defaults(func=cmd_chemiscope, reads=("model", "data"), writes={"output": "file"})
