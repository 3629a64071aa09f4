"""Entry point of the `psilearn` command."""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import warnings
from importlib import import_module

from psilearn._version import __version__

# Each module defines register(subparsers) and sets a ``func(args) -> int`` default on its parsers,
# and, for commands that write, ``reads`` (the dests of its input arguments) and ``writes``
# (dest -> "file" | "model" | "database" | "directory"): main checks those outputs before the command
# runs (psilearn.data.outputs: never an input, never an existing model or database without --overwrite).
COMMAND_MODULES = [
    "psilearn.cli.fit_cmds",
    "psilearn.cli.data_cmds",
    "psilearn.cli.demo_cmd",
    "psilearn.cli.label_cmds",
    "psilearn.cli.spectra_cmds",
    "psilearn.cli.vib_cmds",
    "psilearn.cli.chemiscope_cmd",
    "psilearn.cli.density_cmd",
    "psilearn.cli.active_cmd",
]


QUIET_HELP = ("no progress bars or info lines (everything these commands write to stderr except warnings and errors); "
              "results on stdout still print")


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
    parser.add_argument("-q", "--quiet", action="store_true", help=QUIET_HELP)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        import_module(name).register(sub)
    for p in sub.choices.values():  # also after the command: `psilearn fit ... --quiet` (SUPPRESS: keeps a leading --quiet)
        p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS, help=QUIET_HELP)
    return parser


def check_paths(args: argparse.Namespace) -> None:
    """Refuse (DataError) outputs that would lose data, from the command's ``reads`` and ``writes``."""
    writes = getattr(args, "writes", None)
    if not writes:
        return
    from psilearn.data.outputs import check_outputs

    inputs = []
    for dest in getattr(args, "reads", ()):
        value = getattr(args, dest, None)
        inputs.extend(value if isinstance(value, list) else [value])
    outputs = {_flag(dest): (getattr(args, dest, None), kind) for dest, kind in writes.items()}
    check_outputs(outputs, inputs, overwrite=bool(getattr(args, "overwrite", False)))


def _flag(dest: str) -> str:
    return "-o" if dest == "output" else "--" + dest.replace("_", "-")


def error_line(exc: BaseException) -> str:
    """One line for an input error: a KeyError's key, an OSError's file and reason, newlines folded."""
    if isinstance(exc, KeyError) and exc.args:
        msg = str(exc.args[0])
    elif isinstance(exc, OSError) and exc.strerror and exc.filename is not None:
        msg = f"{exc.filename}: {exc.strerror}"
    else:
        msg = str(exc) or type(exc).__name__
    return " ".join(part.strip() for part in msg.splitlines() if part.strip())


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    """warnings.formatwarning for the CLI: ``psilearn: warning: MESSAGE`` on one line, never the
    source line (the category is named unless it is a UserWarning, e.g. psilearn's GridWarning)."""
    kind = "" if issubclass(category, UserWarning) else f"{category.__name__}: "
    return f"psilearn: warning: {kind}{' '.join(str(message).split())}\n"


@contextlib.contextmanager
def _session(quiet: bool, stderr):
    """One command's run: warnings formatted as one line and written to ``stderr`` (also with
    ``quiet``, when sys.stderr, i.e. progress bars and info lines, goes to os.devnull). The display
    still goes through the current warnings.showwarning, so warnings recorded by a caller
    (warnings.catch_warnings(record=True), pytest.warns) stay recorded. All is undone afterwards."""
    with contextlib.ExitStack() as stack:
        stack.enter_context(warnings.catch_warnings())  # restores showwarning and the filters
        stack.callback(setattr, warnings, "formatwarning", warnings.formatwarning)
        shown = warnings.showwarning
        warnings.formatwarning = _one_line_warning
        warnings.showwarning = lambda m, c, f, n, file=None, line=None: shown(m, c, f, n, stderr if file is None else file, line)
        if quiet:
            stack.enter_context(contextlib.redirect_stderr(stack.enter_context(open(os.devnull, "w"))))
        yield


def distributed_launch() -> bool:
    """True in a process of a launch of several (torchrun: WORLD_SIZE; plain srun: SLURM_NTASKS with MASTER_ADDR)."""
    size = os.environ.get("WORLD_SIZE") or (os.environ.get("SLURM_NTASKS") if "MASTER_ADDR" in os.environ else None)
    return int(size or 1) > 1


def secondary_rank() -> bool:
    """True in a process other than rank 0 of a distributed launch (torchrun sets RANK; a plain
    ``srun`` sets SLURM_PROCID, used with MASTER_ADDR): it trains but stays quiet and writes nothing."""
    rank = os.environ.get("RANK") or (os.environ.get("SLURM_PROCID") if "MASTER_ADDR" in os.environ else None)
    return rank not in (None, "0")


def _leave_process_group() -> None:
    dist = sys.modules.get("psilearn.models._torch.distributed")
    if dist is not None:
        dist.shutdown()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    stderr = sys.stderr  # errors and warnings, also with --quiet
    with _session(args.quiet or secondary_rank(), stderr):
        try:
            check_paths(args)
            return int(args.func(args) or 0)
        except KeyboardInterrupt:
            print("interrupted", file=stderr)
            return 130
        except (UserError, ValueError, OSError, KeyError) as exc:
            # Input problems (bad files, labels, options, paths) get one readable line, not a traceback.
            print(f"psilearn {args.command}: error: {error_line(exc)}", file=stderr)
            return 2
        finally:
            _leave_process_group()


if __name__ == "__main__":
    sys.exit(main())
