"""The folders are the architecture: these tests keep their boundaries (docs/architecture.md).

Every import in the project's packages, at module level or inside a function, is read with
``ast``; the layering rules and the absence of import circles are checked on that graph.
"""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGES = ("golden", "hw", "sim", "synth", "gobo")


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path, module=None):
    """Every module name ``path`` (module ``module``, by default its place in the tree)
    imports, relative imports resolved."""
    module = _module_name(path) if module is None else module
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            names.add(base)
            # `from pkg import module` imports pkg.module when it is one.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph():
    """``{module: {project modules it imports}}`` for every module of :data:`PACKAGES`."""
    paths = [p for pkg in PACKAGES if (ROOT / pkg).is_dir() for p in (ROOT / pkg).rglob("*.py")]
    modules = {_module_name(p): p for p in paths}
    return {name: {m for m in _imports(path) if m in modules and m != name}
            for name, path in modules.items()}


def all_imports(prefix):
    """Every imported name (project or not) of the modules below ``prefix``."""
    return {m: _imports(p) for pkg in PACKAGES if (ROOT / pkg).is_dir()
            for p in (ROOT / pkg).rglob("*.py")
            if (m := _module_name(p)) == prefix or m.startswith(prefix + ".")}


def _within(name, prefix):
    return name == prefix or name.startswith(prefix + ".")


def cycles(graph):
    """The strongly connected components of more than one module (Tarjan), as sorted lists."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


# (importer prefix, forbidden prefix, why)
RULES = [
    ("golden", "amaranth", "golden/ is pure Python + NumPy"),
    ("golden", "hw", "golden/ is below the hardware"),
    ("golden", "sim", "golden/ is below the benches"),
    ("golden", "synth", "golden/ is below synthesis"),
    ("golden", "gobo", "golden/ is below the command line"),
    ("golden.hwmodel", "golden.nlp", "the hardware models never use the NLP side"),
    ("golden.nlp", "golden.hwmodel", "the NLP side never uses the hardware models"),
    ("golden.quant", "golden.hwmodel", "the quantizer is below the hardware models"),
    ("golden.quant", "golden.nlp", "the quantizer is below the NLP side"),
    ("golden.quant", "golden.accel", "golden.accel joins the rooms from above"),
    ("golden.hwmodel", "golden.accel", "golden.accel joins the rooms from above"),
    ("golden.nlp", "golden.accel", "golden.accel joins the rooms from above"),
    ("hw", "sim", "hw/ is below the benches"),
    ("hw", "synth", "hw/ is below synthesis"),
    ("hw", "gobo", "hw/ is below the command line"),
    ("sim", "synth", "simulation and synthesis are siblings"),
    ("synth", "sim", "simulation and synthesis are siblings"),
    ("sim", "gobo", "sim/ is below the command line"),
    ("synth", "gobo", "synth/ is below the command line"),
]


def violations(imports, forbidden):
    """``"m imports n"`` for every name ``n`` below ``forbidden`` in ``{m: names}``."""
    return sorted(f"{m} imports {n}" for m, names in imports.items() for n in names
                  if _within(n, forbidden))


@pytest.mark.parametrize("importer, forbidden, why", RULES,
                         ids=[f"{a}-not-{b}" for a, b, _ in RULES])
def test_layering(importer, forbidden, why):
    offenders = violations(all_imports(importer), forbidden)
    assert not offenders, f"{why}: " + "; ".join(offenders)


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_checkers_fail_on_a_planted_violation(tmp_path):
    """The cycle finder and the rule check see a circle and a forbidden import when there is one."""
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    graph = import_graph()
    assert "golden.hwmodel.pe" in graph["golden.hwmodel.tile"]
    planted = tmp_path / "planted.py"
    planted.write_text("def f():\n    from golden.nlp import bert\n    import amaranth.hdl\n"
                       "from ..quant import stored\n")
    names = _imports(planted, "golden.hwmodel.planted")
    assert {"golden.nlp.bert", "amaranth.hdl", "golden.quant.stored"} <= names
    assert violations({"golden.hwmodel.planted": names}, "golden.nlp") == [
        "golden.hwmodel.planted imports golden.nlp",
        "golden.hwmodel.planted imports golden.nlp.bert"]
    assert violations({"golden.hwmodel.planted": names}, "amaranth") == [
        "golden.hwmodel.planted imports amaranth.hdl"]
