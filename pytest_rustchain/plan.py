"""The dependency graph of a mission: a stable run order and cycle detection."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from pytest_rustchain.model import Step

__all__ = ["find_cycle", "order"]


def find_cycle(steps: Sequence[Step]) -> list[str] | None:
    """Return one dependency cycle as ``[a, b, a]``, or None."""
    deps = {s.id: s.depends_on for s in steps}
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    for root in deps:
        if state.get(root):
            continue
        stack: list[tuple[str, int]] = [(root, 0)]
        path: list[str] = []
        while stack:
            node, i = stack.pop()
            if i == 0:
                state[node] = 1
                path.append(node)
            children = [d for d in deps.get(node, ()) if d in deps]
            if i < len(children):
                stack.append((node, i + 1))
                child = children[i]
                if state.get(child) == 1:
                    return [*path[path.index(child) :], child]
                if not state.get(child):
                    stack.append((child, 0))
            else:
                state[node] = 2
                path.pop()
    return None


def order(steps: Sequence[Step]) -> list[Step]:
    """Dependency order; among steps whose dependencies are done, file order decides."""
    if not any(s.depends_on or s.inferred for s in steps):
        return list(steps)  # nothing waits for anything: file order
    index = {s.id: i for i, s in enumerate(steps)}
    waiting = {s.id: {d for d in s.all_dependencies if d in index} for s in steps}
    dependents: dict[str, list[str]] = {s.id: [] for s in steps}
    for s in steps:
        for d in waiting[s.id]:
            dependents[d].append(s.id)
    ready = [index[sid] for sid, deps in waiting.items() if not deps]
    heapq.heapify(ready)
    out: list[Step] = []
    while ready:
        i = heapq.heappop(ready)
        step = steps[i]
        out.append(step)
        for child in dependents[step.id]:
            waiting[child].discard(step.id)
            if not waiting[child]:
                heapq.heappush(ready, index[child])
    if len(out) != len(steps):
        raise ValueError("dependency cycle")
    return out
