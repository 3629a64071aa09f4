"""Entry point of the `psilearn` command."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

from psilearn._version import __version__

# Each module defines register(subparsers) and sets a ``func(args) -> int`` default on its parsers.
COMMAND_MODULES = [
    "psilearn.cli.fit_cmds",
    "psilearn.cli.demo_cmd",
    "psilearn.cli.label_cmds",
    "psilearn.cli.spectra_cmds",
    "psilearn.cli.vib_cmds",
    "psilearn.cli.chemiscope_cmd",
]


class UserError(Exception):
    """An error caused by the user's input: printed as one clear line, exit code 2."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="psilearn",
        description=(
            "Learn first-principles observables (scalars, vectors, tensors, per-atom properties) "
            "with symmetry-exact models. Typical use: `psilearn fit train.xyz --target alpha "
            "--tensor ij=ji -o alpha.model`, then `psilearn predict alpha.model new.xyz -o out.xyz`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"psilearn {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (UserError, ValueError, FileNotFoundError, KeyError) as exc:
        # Input problems (bad files, labels, options) get one readable line, not a traceback.
        msg = exc.args[0] if isinstance(exc, KeyError) and exc.args else exc
        print(f"psilearn {args.command}: error: {msg}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
