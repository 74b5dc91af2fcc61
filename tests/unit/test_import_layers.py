"""The map of chat/ holds: no import circle, and no import from a lower layer to a higher
one. The layers, top to bottom (README, "Architecture"):

    entry    chat.sockets, views, URLs, admin, management commands, template tags
    runs     chat.runs: starting, streaming and saving answers
    actions  chat.actions: what a user does that starts answers
    domain   everything else: turns, versions, comparisons, rendering, imports, ...
    models   chat.models
    base     chat.upstream, chat.fake_upstream, chat.quirks, chat.crypto, chat.errors

A module may import its own layer and the ones below. Every import counts, a late one
inside a function included, since it runs all the same. Read with ``ast``: nothing is
imported to check it.
"""

from __future__ import annotations

import ast
from pathlib import Path

CHAT = Path(__file__).resolve().parents[2] / "chat"

ENTRY = (
    "chat.sockets", "chat.urls", "chat.account_urls",
    "chat.history_urls", "chat.views", "chat.management", "chat.admin", "chat.apps",
    "chat.serve", "chat.middleware", "chat.context_processors", "chat.templatetags",
)  # fmt: skip
LAYERS = (
    ("entry", ENTRY),
    ("runs", ("chat.runs",)),
    ("actions", ("chat.actions",)),
    ("domain", ("chat",)),  # whatever no other layer names
    ("models", ("chat.models",)),
    ("base", ("chat.upstream", "chat.fake_upstream", "chat.quirks", "chat.crypto", "chat.errors")),
)


def modules() -> dict[str, Path]:
    found = {}
    for path in CHAT.rglob("*.py"):
        if "migrations" in path.parts:
            continue
        parts = path.relative_to(CHAT.parent).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(mods: dict[str, Path]) -> dict[str, set[str]]:
    """Each module's imports of chat modules (a name imported from a package is the
    submodule when there is one; a package importing its own submodules is no edge)."""

    def owner(name: str) -> str:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up) + (f".{base}" if base else "")
                targets |= {owner(f"{base}.{a.name}") or owner(base) for a in node.names}
            elif isinstance(node, ast.Import):
                targets |= {owner(a.name) for a in node.names}
        graph[name] = {t for t in targets if t.startswith("chat") and t != name}
        if path.name == "__init__.py":
            graph[name] = {t for t in graph[name] if not t.startswith(name + ".")}
    return graph


def layer(module: str) -> int:
    best = (-1, len(LAYERS))  # the longest prefix decides
    for rank, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                best = max(best, (len(prefix), rank))
    return best[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_reader_sees_the_imports_it_must_judge():
    graph = imports(modules())
    # Known edges of each kind: module level, relative, late (inside a function).
    assert "chat.runs.control" in graph["chat.runs.run"]  # from chat.runs import control
    assert "chat.upstream.secrets" in graph["chat.upstream.endpoint"]  # from .secrets import
    assert "chat.actions" in graph["chat.sockets.consumers"]
    assert layer("chat.views.chat") == 0 and layer("chat.runs.store") == 1
    assert layer("chat.turns") == 3 and layer("chat.models.message") == 4
    assert layer("chat.upstream.client") == 5
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_circle_in_chat():
    assert cycles(imports(modules())) == []


def test_no_import_from_a_lower_layer_to_a_higher_one():
    graph = imports(modules())
    upward = [
        f"{module} ({LAYERS[layer(module)][0]}) imports {target} ({LAYERS[layer(target)][0]})"
        for module, targets in sorted(graph.items())
        for target in sorted(targets)
        if layer(target) < layer(module)
    ]
    assert upward == []
