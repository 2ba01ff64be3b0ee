"""The house's shape: imports go one way, layer by layer, with no circle, and README's Layout
section names every module. Imports are read with `ast`, so those inside functions count too:
a lazy import still ties two modules together."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "senti_edge"

# Bottom to top; a module may import its own layer or a lower one, never a higher one.
# The first pattern a module name matches decides its layer (so list exceptions first).
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("errors", "files", "jsonl", "clitools", "inputs", "output", "data")),
    ("knowledge", ("sentibench", "runtime", "runtime.tasks", "runtime.prompts", "runtime.scoring", "runtime.chat", "runtime.registry",
                   "runtime.build", "runtime.cpu")),
    ("runtime", ("runtime.*", "senti_edge")),  # engine, analyzer, doctor, ...; the package's public API
    ("torch side", ("hfstack", "distill.train", "quantize.merge", "distill.config", "quantize.config", "quantize.files")),
    ("distill and quantize", ("distill", "distill.*", "quantize", "quantize.*")),
    ("bench", ("bench", "bench.*")),
    ("cli", ("cli", "__main__")),
]


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def short(mod: str) -> str:
    return mod.removeprefix("senti_edge.") if mod != "senti_edge" else mod


def layer(mod: str) -> int:
    name = short(mod)
    for rank, (_, patterns) in enumerate(LAYERS):
        for pat in patterns:
            if name == pat or (pat.endswith(".*") and name.startswith(pat[:-1])):
                return rank
    raise AssertionError(f"{mod} is in no layer: add it to LAYERS (and to README's Layout section)")


def imports(mod: str) -> set[str]:
    """The senti_edge modules `mod` imports, at module level or inside functions."""
    path = MODULES[mod]
    package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            subs = {f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in MODULES}
            found |= subs or {target}  # `from . import prompts` imports the module senti_edge.runtime.prompts
    return {m for m in found if m in MODULES and m != mod}


GRAPH = {mod: imports(mod) for mod in MODULES}


def test_every_module_has_a_layer():
    for mod in MODULES:
        layer(mod)


@pytest.mark.parametrize("mod", sorted(MODULES))
def test_imports_go_down(mod):
    up = sorted(dep for dep in GRAPH[mod] if layer(dep) > layer(mod))
    assert not up, f"{mod} ({LAYERS[layer(mod)][0]}) imports a higher layer: {up}"


def test_no_import_cycle():
    done: set[str] = set()

    def visit(mod: str, path: list[str]) -> None:
        if mod in path:
            raise AssertionError("import cycle: " + " -> ".join(path[path.index(mod):] + [mod]))
        if mod in done:
            return
        for dep in sorted(GRAPH[mod]):
            visit(dep, path + [mod])
        done.add(mod)

    for mod in sorted(GRAPH):
        visit(mod, [])


def test_cycle_check_can_fail(monkeypatch):
    monkeypatch.setitem(GRAPH, "senti_edge.errors", {"senti_edge.files"})
    with pytest.raises(AssertionError, match="errors -> senti_edge.files -> senti_edge.errors"):
        test_no_import_cycle()


def test_sentibench_imports_only_the_base_layer():
    """The dataset table names its runtime task by string, so bench and distill can both read it."""
    assert {dep for dep in GRAPH["senti_edge.sentibench"] if layer(dep) > 0} == set()


def test_no_sub_package_imports_the_root_cli():
    offenders = [m for m in MODULES if m.count(".") >= 2 and "senti_edge.cli" in GRAPH[m]]
    assert not offenders


def readme_layout() -> dict[str, str]:
    """{file under senti_edge/: the layer heading it is listed under} from README's Layout section."""
    text = (ROOT / "README.md").read_text("utf-8")
    section = re.search(r"^## Layout\n(.*?)(?=^## )", text, re.S | re.M)
    assert section, "README.md has no '## Layout' section"
    listed, heading = {}, None
    for line in section.group(1).splitlines():
        if m := re.match(r"^\*\*(.+?)\*\*", line):
            heading = m.group(1)
        elif m := re.match(r"^- `([\w./]+)`", line):
            listed[m.group(1)] = heading
    return listed


def test_readme_layout_lists_every_module_in_its_layer():
    listed = readme_layout()
    files = {str(p.relative_to(PACKAGE)): mod for mod, p in MODULES.items()}
    assert sorted(files.keys() - listed.keys()) == [], "modules missing from README's Layout section"
    assert sorted(listed.keys() - files.keys()) == [], "README's Layout section names modules that do not exist"
    wrong = {f: (listed[f], LAYERS[layer(mod)][0]) for f, mod in files.items() if listed[f] != LAYERS[layer(mod)][0]}
    assert wrong == {}, "README lists these under another layer than tests/test_layout.py's LAYERS"
