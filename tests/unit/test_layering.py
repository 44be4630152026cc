"""The core never loads Qt or the adapters: checked in a fresh interpreter."""

import subprocess
import sys
import textwrap


def test_importing_every_core_module_loads_no_qt_ui_or_edge():
    code = textwrap.dedent(
        """
        import importlib, pkgutil, sys
        import appliance
        for mod in pkgutil.walk_packages(appliance.__path__, "appliance."):
            importlib.import_module(mod.name)
        bad = sorted(m for m in sys.modules
                     if m.split(".")[0] in ("PySide6", "shiboken6", "ui", "edge"))
        print(",".join(bad))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"appliance imported: {out.stdout.strip()}"


# --- the layer order of ../shared/ARCHITECTURE.md, read from the source ------------------------

import ast  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
# lowest first: a module may import its own layer and the ones before it
LAYERS = ["domain", "crypto", "storage", "net", "services", "operator", "node", "host"]
SHARED = {"errors", "i18n", "clock", "events", "settings", "dsp_schema", "resources", "evidence_verify", "__init__"}
# back-edges not yet removed; the set may only shrink: a new back-edge fails, and so does one that
# is gone but still listed (the domain signs and canonicalises nothing: crypto/ and services/ do)
KNOWN: set[tuple[str, str]] = set()


def _imports(root: str):
    for path in (ROOT / root).rglob("*.py"):
        mod = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                yield from ((mod, a.name) for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                yield mod, node.module


def _layer(module: str) -> str | None:
    parts = module.split(".")
    if parts[0] != "appliance" or len(parts) < 2 or parts[1] in SHARED:
        return None
    return parts[1]


def test_core_imports_follow_the_layer_order():
    back = set()
    for mod, target in _imports("appliance"):
        here, there = _layer(mod), _layer(target)
        if here is None or there is None or here == there:
            continue
        assert here in LAYERS and there in LAYERS, (mod, target)
        if LAYERS.index(there) > LAYERS.index(here):
            back.add((mod, target))
    assert back - KNOWN == set(), f"new imports against the layer order: {sorted(back - KNOWN)}"
    assert KNOWN - back == set(), f"gone, remove from KNOWN: {sorted(KNOWN - back)}"


def test_the_benchmarks_modules_do_not_import_each_other_in_a_circle():
    graph: dict[str, set[str]] = {}
    for mod, target in _imports("bench"):
        if target.startswith("bench.") and target != mod:
            graph.setdefault(mod, set()).add(target)
    for mod, targets in graph.items():
        for target in targets:
            assert mod not in graph.get(target, set()), f"{mod} and {target} import each other"


def test_no_two_service_modules_import_each_other():
    """A pair of modules under appliance/services that import each other (at the top or inside a
    function) is a tangle: one of them should hand the other what it needs instead."""
    base = ROOT / "appliance" / "services"
    files = {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p
             for p in base.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = node.module or ""
                if node.level:  # a relative import, from this module's package
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    source = ".".join([*up, *([node.module] if node.module else [])])
                # `from package import module` imports that module; any other name, the package
                targets = [f"{source}.{a.name}" if f"{source}.{a.name}" in files else source for a in node.names]
            else:
                continue
            for target in targets:
                if target in files and target != mod and not mod.startswith(target + "."):  # (its own package)
                    graph.setdefault(mod, set()).add(target)
    pairs = sorted({tuple(sorted((a, b))) for a, targets in graph.items() for b in targets
                    if a in graph.get(b, set())})
    assert not pairs, f"these modules import each other: {pairs}"
