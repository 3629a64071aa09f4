"""Data flows one way: a module may import only from its own package or from a lower layer.

The layers (docs/architecture.md): errors/_version <- targets, config, spectral <- data <-
metrics, features, physics, label <- models <- evaluation, observe <- tune, active (orchestration) <- cli,
calculator.
Every import counts, including imports inside functions; there is no exception list.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "psilearn"

LAYERS: dict[str, int] = {
    "_version": 0, "errors": 0, "_tables": 0,
    "targets": 1, "config": 1, "spectral": 1,
    "data": 2,
    "metrics": 3, "features": 3, "physics": 3, "label": 3,
    "models": 4,
    "evaluation": 5, "observe": 5,
    "tune": 6,  # orchestration: hyperparameter studies driving model fits
    "active": 6,  # orchestration: the active-learning loop driving labelers and models
    "cli": 7, "calculator": 7,
}
#: inside psilearn.models: the shared engines sit below the architectures, which never import each other
MODEL_ENGINES = {"_kernel", "_torch", "base", "registry", "io", "checks", "composition", "pair_rule", "__init__"}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module) of every psilearn import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.split(".")[0] == "psilearn"]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                name = ".".join(base + ([node.module] if node.module else []))
            else:
                name = node.module or ""
            if name.split(".")[0] == "psilearn":
                if name == "psilearn":  # `from psilearn import X`: X is a subpackage or a lazy attribute
                    out += [(node.lineno, f"psilearn.{a.name}") for a in node.names]
                else:
                    out.append((node.lineno, name))
    return out


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def _violations() -> list[str]:
    bad = []
    for path in sorted(SRC.rglob("*.py")):
        me = _module_name(path)
        mine = _top(me)
        if mine == "":  # psilearn/__init__.py: lazy attributes only, imports nothing eagerly
            continue
        assert mine in LAYERS, f"{path}: package {mine!r} has no layer; add it to LAYERS and docs/architecture.md"
        for line, target in _imports(path):
            theirs = _top(target)
            where = f"{path.relative_to(SRC.parent)}:{line}: {me} imports {target}"
            if theirs not in LAYERS:
                bad.append(f"{where} (the root package or an unknown package)")
            elif theirs != mine and LAYERS[theirs] >= LAYERS[mine]:
                bad.append(f"{where} (layer {LAYERS[theirs]} >= {LAYERS[mine]})")
            elif mine == theirs == "models":
                a, b = me.split(".")[2:3], target.split(".")[2:3]
                if a and b and a != b and a[0] not in MODEL_ENGINES and b[0] not in MODEL_ENGINES:
                    bad.append(f"{where} (one architecture imports another; share code through models/_kernel or models/_torch)")
                elif a and b and a[0] in ("_kernel", "_torch") and b[0] not in MODEL_ENGINES:
                    bad.append(f"{where} (a shared engine imports an architecture)")
    return bad


def test_every_import_goes_down_the_layers():
    bad = _violations()
    assert not bad, "imports against the data flow:\n" + "\n".join(bad)


def test_labelers_import_no_model():
    for path in (SRC / "label").rglob("*.py"):
        for line, target in _imports(path):
            assert not target.startswith("psilearn.models"), f"{path}:{line} imports {target}"


def test_the_checker_sees_a_violation(tmp_path, monkeypatch):
    """The AST walk finds function-level and relative imports (the test could fail)."""
    pkg = tmp_path / "psilearn" / "data"
    pkg.mkdir(parents=True)
    (pkg / "bad.py").write_text("def f():\n    from ..models import load\n    return load\n")
    monkeypatch.setattr(__import__(__name__, fromlist=["SRC"]), "SRC", tmp_path / "psilearn")
    found = _violations()
    assert any("psilearn.data.bad imports psilearn.models" in v for v in found), found


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_layer_packages_exist(package):
    assert (SRC / package).is_dir() or (SRC / f"{package}.py").is_file(), f"{package} listed in LAYERS but absent"


def test_psilearn_models_exports_every_registered_class():
    import psilearn.models as models
    from psilearn.models.base import Model
    from psilearn.models.registry import MODEL_KINDS, model_class

    for kind, (spec, _) in MODEL_KINDS.items():
        cls = getattr(models, spec.split(":")[1])
        assert cls is model_class(kind) and issubclass(cls, Model) and cls.kind == kind
