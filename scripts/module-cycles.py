#!/usr/bin/env python3
"""Finds import circles among the modules of the agent's library (agent/src, without the binary's
main.rs and commands/). Fails when the rooms (the top-level modules) do not form a DAG, or when
files import each other in a circle wider than two files of one folder (a mod.rs and a child).
Prints the room graph in dependency order. Usage: scripts/module-cycles.py [agent/src]"""

import re
import sys
from pathlib import Path

SRC = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parent.parent / "agent/src")
BINARY = {"main.rs"}
BINARY_DIRS = {"commands"}

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
GROUP = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)*)::\{([^;]*?)\}", re.S)


def module_of(path: Path) -> tuple:
    rel = path.relative_to(SRC).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def strip_comments(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    # Test modules may reach anywhere; they are not part of the dependency structure.
    cut = re.search(r"#\[cfg\(test\)\]\s*mod tests", text)
    return text[: cut.start()] if cut else text


def main() -> int:
    files = [
        p
        for p in SRC.rglob("*.rs")
        if p.relative_to(SRC).parts[0] not in BINARY_DIRS and p.name not in BINARY
    ]
    modules = {module_of(p): p for p in files}

    def resolve(base: tuple, segments: list) -> tuple:
        # The longest prefix that names a module of ours.
        for end in range(len(segments), 0, -1):
            candidate = base + tuple(segments[:end])
            if candidate in modules:
                return candidate
        return base

    edges = {m: set() for m in modules}
    for module, path in modules.items():
        text = strip_comments(path.read_text())
        is_dir_module = path.name in ("mod.rs", "lib.rs")
        parent = module if is_dir_module else module[:-1]

        def add(anchor: str, tail: str) -> None:
            segments = [s for s in tail.split("::") if s]
            base = ()
            if anchor == "super":
                base = parent[:-1] if is_dir_module else parent
                while segments and segments[0] == "super":
                    base, segments = base[:-1], segments[1:]
            target = resolve(base, segments)
            if target != module and target in modules and target != ():
                edges[module].add(target)

        for anchor, head, body in GROUP.findall(text):
            for item in re.split(r",", body):
                item = item.strip().split(" as ")[0].strip()
                if item and item not in ("self", "*"):
                    add(anchor, head + "::" + item.split("::{")[0])
                elif item == "self":
                    add(anchor, head)
        for anchor, tail in PATH.findall(text):
            add(anchor, tail)
        # `mod x;` in a mod.rs makes the folder module depend on nothing by itself; its
        # `pub use x::...` lines are caught above.

    failures = []
    # Rooms: the first segment.
    rooms = {}
    for module, targets in edges.items():
        if not module:
            continue
        room = module[0]
        rooms.setdefault(room, set())
        for target in targets:
            if target and target[0] != room:
                rooms[room].add(target[0])
    order, state = [], {}

    def visit(room: str, stack: list) -> None:
        if state.get(room) == "done":
            return
        if state.get(room) == "open":
            cycle = stack[stack.index(room):] + [room]
            failures.append("rooms import each other: " + " -> ".join(cycle))
            return
        state[room] = "open"
        for target in sorted(rooms.get(room, ())):
            visit(target, stack + [room])
        state[room] = "done"
        order.append(room)

    for room in sorted(rooms):
        visit(room, [])

    # Files: strongly connected components (Tarjan).
    index, low, on, stack, sccs = {}, {}, set(), [], []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            sccs.append(component)

    sys.setrecursionlimit(10000)
    for v in edges:
        if v not in index:
            strong(v)
    for component in sccs:
        if len(component) < 2:
            continue
        names = sorted("::".join(m) or "lib" for m in component)
        folder_pair = len(component) == 2 and (
            component[0][:-1] == component[1] or component[1][:-1] == component[0]
        )
        if not folder_pair:
            failures.append("files import each other: " + ", ".join(names))

    for room in order:
        print(f"{room}: {', '.join(sorted(rooms[room])) or '-'}")
    for failure in failures:
        print(f"error: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
