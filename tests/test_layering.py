"""Dependencies run one way: config <- model <- objectives <- heads <- hf (module-level imports)."""
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


def imports_of():
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC).with_suffix("").parts
        name = ".".join(("berts",) + (parts[:-1] if parts[-1] == "__init__" else parts))
        out[name] = module_imports(path)
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
    "berts.hf": ["berts.train", "berts.commands"],
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
