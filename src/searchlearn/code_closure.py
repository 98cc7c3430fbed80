"""The searchlearn code a stage runs, found from the modules' own imports.

A stage's cache key must change when any code it runs changes, and only then.
Its code is a set of searchlearn modules, hashed whole (a comment edit counts),
found by reading their source with `ast`, never by importing them, so a copy of
the source tree can be hashed as well as the installed one:

- a module's top-level imports run when it is imported, and so do the `__init__`
  of every package on the way: those modules are in the set;
- a function-local import runs only when its function does. This codebase imports
  heavy modules inside functions, and `config/load.py` imports every registry
  inside `validate()`, which no stage calls. So a local import counts only inside
  a function (or class) the stage can reach: the stage function itself, anything
  a reachable function or the importing modules' top-level code names
  (`f`, `module.f`, `from m import f`), and everything a reachable class holds.

What this over-approximates: a registry package such as `searchlearn/search/__init__.py`
imports every algorithm at its top level, so every stage that touches
`searchlearn.search` runs (and depends on) every search algorithm module, and
likewise for `searchlearn.learn`. That errs towards recomputing.
What it cannot see: third-party code (transformers, TRL and vLLM versions are in
no key) and modules imported by a string (`importlib.import_module(...)`).
"""

from __future__ import annotations

import ast
import copy
import hashlib
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PACKAGE = "searchlearn"
# The directory that holds the `searchlearn` package (src/ in a checkout).
SOURCE_ROOT = Path(__file__).resolve().parents[1]

Unit = tuple[str, str]  # (module, top-level name) whose code may run


def module_file(name: str, root: Path = SOURCE_ROOT) -> Path | None:
    """The source file of a searchlearn module or package, or None if there is none."""
    if not (name == PACKAGE or name.startswith(PACKAGE + ".")):
        return None
    base = root.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


@dataclass
class Module:
    """What one module's source says about the code it can run."""

    name: str
    package: str  # what its relative imports are relative to
    imported: set[str] = field(default_factory=set)  # searchlearn modules its top level imports
    effects: list[ast.AST] = field(default_factory=list)  # top-level statements that do more than define
    units: dict[str, ast.AST] = field(default_factory=dict)  # top-level def / class / assignment by name
    names: dict[str, tuple[str, str | None]] = field(default_factory=dict)  # bound by import: (module, attr)


@lru_cache(maxsize=None)
def parse_module(name: str, root: Path = SOURCE_ROOT) -> Module:
    path = module_file(name, root)
    if path is None:
        raise ModuleNotFoundError(f"no source for {name} under {root}")
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    mod = Module(name, package)
    for stmt in ast.parse(path.read_text(encoding="utf-8"), str(path)).body:
        if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            mod.units[stmt.name] = stmt
        elif isinstance(stmt, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
            for name_node in (n for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)):
                mod.units[name_node.id] = stmt
        elif isinstance(stmt, (ast.Import, ast.ImportFrom)):
            mod.imported |= _bind(stmt, package, mod.names, root)
        elif not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Constant)):  # not a docstring
            for node in ast.walk(stmt):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    mod.imported |= _bind(node, package, mod.names, root)
            mod.effects.append(stmt)
    return mod


def _bind(node: ast.Import | ast.ImportFrom, package: str, names: dict, root: Path) -> set[str]:
    """Record the names an import statement binds; return the searchlearn modules it imports."""
    imported = set()
    if isinstance(node, ast.Import):
        for alias in node.names:
            imported.add(alias.name)
            names[alias.asname or alias.name.split(".")[0]] = (alias.name if alias.asname else
                                                               alias.name.split(".")[0], None)
    else:
        source = _absolute(node, package)
        imported.add(source)
        for alias in node.names:
            sub = f"{source}.{alias.name}"
            if module_file(sub, root) is not None:  # `from package import submodule`
                imported.add(sub)
                names[alias.asname or alias.name] = (sub, None)
            else:
                names[alias.asname or alias.name] = (source, alias.name)
    return {m for m in imported if module_file(m, root) is not None}


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


class _Reach:
    """Fixpoint over the units a stage can reach from its stage function. A module
    is run when one of its units is reached, or when it is imported and its top
    level does more than define things; the packages above it run too. A module
    that is only imported (a registry's other entries) is not run in that sense:
    nothing it defines can be called."""

    def __init__(self, root: Path):
        self.root = root
        self.imported: set[str] = set()
        self.run: set[str] = set()
        self.units: set[Unit] = set()
        self.todo: list[Unit] = []

    def module(self, name: str) -> None:
        """Import `name` (and its packages): bind what it imports, run its effects."""
        parts = name.split(".")
        for i in range(1, len(parts) + 1):
            pkg = ".".join(parts[:i])
            if pkg in self.imported or module_file(pkg, self.root) is None:
                continue
            self.imported.add(pkg)
            mod = parse_module(pkg, self.root)
            for imported in mod.imported:
                self.module(imported)
            if mod.effects:
                self.run.add(pkg)
            for stmt in mod.effects:
                self.code(mod, stmt, None)

    def unit(self, module: str, name: str) -> None:
        """Reach `name` as seen from `module`: its definition there, or where it was imported from."""
        if module_file(module, self.root) is None:  # not ours
            return
        self.module(module)
        mod = parse_module(module, self.root)
        if name in mod.units:
            if (module, name) not in self.units:
                self.units.add((module, name))
                self.run.add(module)
                self.todo.append((module, name))
        elif name in mod.names:
            target, attr = mod.names[name]
            self.module(target)
            if attr is not None:
                self.unit(target, attr)
        else:  # defined some way this reader does not follow: count all of the module
            self.run.add(module)
            for other in mod.units:
                self.unit(module, other)

    def code(self, mod: Module, node: ast.AST, local: dict | None) -> None:
        """Reach what a piece of `mod`'s code names. `local` is None for top-level code,
        whose imports parse_module already bound; a function's own imports bind into
        `local`, and count as used."""
        for sub in ast.walk(node):
            if local is not None and isinstance(sub, (ast.Import, ast.ImportFrom)):
                for imported in _bind(sub, mod.package, local, self.root):
                    self.module(imported)
                for alias in sub.names:
                    self._name(mod, alias.asname or alias.name.split(".")[0], local)
            elif isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
                self._name(mod, sub.id, local or {})
            elif isinstance(sub, ast.Attribute):
                target = self._module_of(mod, sub.value, local or {})
                if target is not None:
                    sub_module = f"{target}.{sub.attr}"
                    self.module(sub_module) if module_file(sub_module, self.root) else self.unit(target, sub.attr)

    def _name(self, mod: Module, name: str, local: dict) -> None:
        if name in local:
            target, attr = local[name]
            self.module(target)
            if attr is not None:
                self.unit(target, attr)
        elif name in mod.units or name in mod.names:
            self.unit(mod.name, name)

    def _module_of(self, mod: Module, node: ast.AST, local: dict) -> str | None:
        """The searchlearn module an expression such as `data` or `searchlearn.stages` names, if any."""
        if isinstance(node, ast.Name):
            target, attr = local.get(node.id) or mod.names.get(node.id) or (None, None)
            return target if target and attr is None else None
        if isinstance(node, ast.Attribute):
            base = self._module_of(mod, node.value, local)
            if base and module_file(f"{base}.{node.attr}", self.root):
                return f"{base}.{node.attr}"
        return None

    def drain(self) -> None:
        while self.todo:
            module, name = self.todo.pop()
            mod = parse_module(module, self.root)
            self.code(mod, _body(mod.units[name]), {})


def _body(node: ast.AST) -> ast.AST:
    """A unit's code without its annotations (they are never run for their value)."""
    node = copy.deepcopy(node)
    for sub in ast.walk(node):
        if isinstance(sub, ast.arg):
            sub.annotation = None
        elif isinstance(sub, (ast.FunctionDef, ast.AsyncFunctionDef)):
            sub.returns = None
        elif isinstance(sub, ast.AnnAssign):
            sub.annotation = ast.Constant(None)
    return node


def _with_packages(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


@lru_cache(maxsize=None)
def closure(module: str, function: str, root: Path = SOURCE_ROOT) -> frozenset[str]:
    """Every searchlearn module that importing `module` and calling `module.function` can run."""
    reach = _Reach(root)
    reach.unit(module, function)
    reach.drain()
    return frozenset(pkg for name in reach.run for pkg in _with_packages(name))


@lru_cache(maxsize=None)
def code_hash(module: str, function: str, root: Path = SOURCE_ROOT) -> str:
    """Hash of the source of every module in the closure (names and bytes). Computed
    once per process: a source edit during a run takes effect in the next one."""
    h = hashlib.sha256()
    for name in sorted(closure(module, function, root)):
        h.update(name.encode() + b"\0" + module_file(name, root).read_bytes() + b"\0")
    return h.hexdigest()
