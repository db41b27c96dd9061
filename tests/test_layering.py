"""Dependencies run one way: config <- model <- objectives <- heads <- hf (module-level imports),
runs/ above train/ and compress/, serve/ below both; and no circles at all, counting the imports
inside functions too (a lazy import hides a circle from Python, not from the reader)."""
import ast
from pathlib import Path

import berts

SRC = Path(berts.__file__).parent


def module_imports(path: Path) -> set[str]:
    """The berts modules a file imports at module level (not inside functions or classes)."""
    found = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        found |= {n for n in names if n.startswith("berts")}
    return found


def all_imports(path: Path) -> set[str]:
    """The berts names a file imports anywhere: module level, functions, classes."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return {n for n in found if n.startswith("berts")}


def module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(("berts",) + (parts[:-1] if parts[-1] == "__init__" else parts))


def imports_of():
    return {module_name(path): module_imports(path) for path in SRC.rglob("*.py")}


def full_graph() -> dict[str, set[str]]:
    """module -> the berts modules it imports anywhere ("berts.a.b.name" -> the module "berts.a.b")."""
    raw = {module_name(path): all_imports(path) for path in SRC.rglob("*.py")}

    def resolve(name: str) -> str:
        while name not in raw and "." in name:
            name = name.rsplit(".", 1)[0]
        return name

    return {m: {resolve(n) for n in names} - {m} for m, names in raw.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan, iterative)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.get(root, ()))))]
        index[root] = low[root] = counter[0]; counter[0] += 1; stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1; stack.append(w); on.add(w)
                    work.append((w, iter(sorted(graph.get(w, ())))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop(); on.discard(w); comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def touches(imported: set[str], modules) -> set[str]:
    return {i for i in imported for m in modules if i == m or i.startswith(m + ".")}


RULES = {  # module (or package) -> what it must not import at module level
    "berts.model.config": ["berts.model.encoder", "berts.model.heads", "berts.hf", "berts.objectives", "berts.model.attention"],
    "berts.model.padding": ["berts.model.encoder", "berts.model.heads", "berts.hf", "berts.objectives", "berts.model.attention"],
    "berts.model.attention": ["berts.model.encoder", "berts.model.heads", "berts.hf", "berts.objectives"],
    "berts.model.encoder": ["berts.model.heads", "berts.hf", "berts.objectives"],
    "berts.objectives": ["berts.model.heads", "berts.hf"],
    "berts.model.heads": ["berts.hf"],
    "berts.hf": ["berts.train", "berts.commands", "berts.runs"],
    "berts.tasks": ["berts.runs", "berts.commands"],
    "berts.train": ["berts.runs", "berts.tasks", "berts.commands"],  # the engine is below what it trains
    "berts.compress": ["berts.runs", "berts.commands", "berts.tools"],
    "berts.serve": ["berts.train", "berts.runs", "berts.commands"],  # device names: berts.util.device
    "berts.demo.report": ["berts.demo.run"],
    # the one evaluation/prediction loop sits below both of its users
    "berts.model.runner": ["berts.train", "berts.serve", "berts.tasks", "berts.runs", "berts.compress",
                           "berts.commands", "berts.data", "berts.hf", "berts.tools"],
    "berts.version": ["berts"],
}


def test_dependencies_run_one_way():
    graph = imports_of()
    assert "berts.objectives.mlm" in graph and "berts.hf" in graph
    bad = []
    for module, imported in graph.items():
        for owner, banned in RULES.items():
            if module == owner or module.startswith(owner + "."):
                hits = touches(imported, banned) - ({module} if owner != "berts.version" else set())
                hits = {h for h in hits if not h.startswith(owner + ".") or owner == "berts.version"}
                bad += [f"{module} imports {h}" for h in sorted(hits)]
    assert not bad, bad


def test_the_rule_catches_a_cycle(tmp_path):
    """The checker itself: a config.py that imports hf is caught."""
    fake = tmp_path / "config.py"
    fake.write_text("import json\nfrom berts.hf import load_config\n\ndef f():\n    from berts.model.encoder import BertModel\n")
    assert module_imports(fake) == {"berts.hf", "berts.hf.load_config"}
    assert touches(module_imports(fake), RULES["berts.model.config"]) == {"berts.hf", "berts.hf.load_config"}


def test_no_circles_counting_function_local_imports():
    graph = full_graph()
    assert "berts.model.encoder" in graph["berts.model.heads"]  # the graph is real
    assert "berts.compress.early_exit.exits" in graph["berts.serve.predict"]
    assert circles(graph) == []


def test_the_runner_is_below_training_and_serving():
    """berts.model.runner imports nothing above model/, not even inside a function; serving and
    evaluation both use it."""
    graph = full_graph()
    above = ["berts.train", "berts.serve", "berts.tasks", "berts.runs", "berts.compress", "berts.commands",
             "berts.data", "berts.hf", "berts.tools"]
    assert not touches(graph["berts.model.runner"], above)
    assert "berts.model.runner" in graph["berts.serve.predict"] and "berts.model.runner" in graph["berts.tasks.base"]


def test_serving_never_imports_training():
    """serve/ loads and runs a saved directory: not even a function-local import of train/ or runs/."""
    bad = {f"{m} imports {i}" for m, imported in full_graph().items() if m.startswith("berts.serve")
           for i in touches(imported, ["berts.train", "berts.runs"])}
    assert not bad, sorted(bad)


def test_compression_methods_never_import_runs():
    """compress/ holds the methods (tasks, losses, models, transforms); the runs that use them live
    in runs/: not even a function-local import of runs/, tools/ or commands/ from compress/."""
    bad = {f"{m} imports {i}" for m, imported in full_graph().items() if m.startswith("berts.compress")
           for i in touches(imported, ["berts.runs", "berts.tools", "berts.commands"])}
    assert not bad, sorted(bad)


def test_the_circle_check_catches_a_lazy_circle(tmp_path):
    """The SCC check itself: a circle closed by an import inside a function is found."""
    fake = tmp_path / "m.py"
    fake.write_text("import json\n\ndef f():\n    from berts.hf import load\n")
    assert all_imports(fake) == {"berts.hf.load"}
    assert module_imports(fake) == set()
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"d"}}
    assert circles(graph) == [["a", "b", "c"]]
    assert circles({"a": {"b"}, "b": set()}) == []


# ----------------------------------------------------------------------------- imports inside functions
# A berts import inside a function hides a dependency from the reader (and from Python until the
# function runs). It is allowed only where `berts --help`, `berts <command> --help` and argument
# errors must stay torch-free (tests/test_cli_fast.py): the command modules, and the torch-free
# modules the parser itself reads, whose heavy imports wait until a command runs.
LAZY_ALLOWED = {
    "berts.cli": "the parser: each command module is imported when the parser is built",
    "berts.commands": "a command imports its run (torch) only when it runs",
    "berts.config.schema": "read by every command's parser: BertConfig and the task options load when a key is set",
    "berts.config.validate": "read by the commands before a run: the registries and the data checks load when used",
    "berts.demo.run": "its settings are `berts demo`'s flags: the stages import torch when they run",
    "berts.objectives.registry": "read by the parsers (objective names, by ast): a spec's eval sums import torch when run",
    "berts.tokenizer.training": "berts.data's package __init__ imports its pipeline, which imports the tokenizer",
}


def function_local_imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of each berts import that is not at module level."""
    tree = ast.parse(path.read_text())
    top = {id(n) for n in tree.body}
    out = []
    for node in ast.walk(tree):
        if id(node) in top:
            continue
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("berts") and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names if a.name.startswith("berts")]
    return out


def allowed_lazy(module: str) -> bool:
    return any(module == m or module.startswith(m + ".") for m in LAZY_ALLOWED)


def test_imports_inside_functions_only_where_start_up_needs_them():
    found = [f"{path.relative_to(SRC.parent)}:{line} imports {target}"
             for path in sorted(SRC.rglob("*.py")) if not allowed_lazy(module_name(path))
             for line, target in function_local_imports(path)]
    assert not found, "move these to the top of their module (or say in LAZY_ALLOWED why not):\n" + "\n".join(found)


def test_the_lazy_allow_list_is_short_and_still_needed():
    assert len(LAZY_ALLOWED) <= 8  # short: each entry needs its reason
    for module in LAZY_ALLOWED:  # each entry still has a lazy import to excuse
        paths = [p for p in SRC.rglob("*.py") if module_name(p) == module or module_name(p).startswith(module + ".")]
        assert any(function_local_imports(p) for p in paths), f"{module}: no lazy import left; drop it from the list"
