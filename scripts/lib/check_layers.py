#!/usr/bin/env python3
"""Checks the imports of the project's Python (scripts/test runs it; it needs no server):

- each module of the fault suite (faultsuite/) imports only modules of a lower layer, so that
  there is no cycle and a module can be read with only what is below it in mind;
- every module of scripts/lib imports only the standard library, `redis` (the benchmarks' venv),
  `selenium` (the status page's browser test, its own venv) and modules of scripts/lib: nothing
  of ours comes from outside the repository.

Exits 1 with one line per offence.
"""
import ast, os, sys

# Lowest first; a module may import any module of an earlier layer, none of its own or a later one.
LAYERS = [
    {"resp", "keys"},
    {"servers"},
    {"bridge"},
    {"workload"},
    {"listeners"},
    {"checker"},
    {"backlog"},
    {"proxy"},
    {"single", "sentinel", "cluster", "network", "httppath"},
    {"cli"},
    {"__main__"},
]
PACKAGE = "faultsuite"
THIRD_PARTY = {"redis", "selenium"}


def imports(path, package_module=None):
    """(line, module imported) for every import in the file; relative imports resolved against
    the package (`from . import x` names x)."""
    tree = ast.parse(open(path).read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if node.module:
                    yield node.lineno, "%s.%s" % (PACKAGE, node.module.split(".")[0])
                else:
                    for alias in node.names:
                        yield node.lineno, "%s.%s" % (PACKAGE, alias.name)
            elif node.module == PACKAGE:
                for alias in node.names:
                    yield node.lineno, "%s.%s" % (PACKAGE, alias.name)
            else:
                yield node.lineno, node.module


def main():
    lib = os.path.dirname(os.path.abspath(__file__))
    package = os.path.join(lib, PACKAGE)
    layer_of = {name: k for k, names in enumerate(LAYERS) for name in names}
    ours = {f[:-3] for f in os.listdir(lib) if f.endswith(".py")} | {PACKAGE}
    problems = []

    for f in sorted(os.listdir(package)):
        if not f.endswith(".py") or f == "__init__.py":
            continue
        name = f[:-3]
        if name not in layer_of:
            problems.append("%s/%s: not in a layer of check_layers.py (say where it belongs)" % (PACKAGE, f))
            continue
        for line, module in imports(os.path.join(package, f)):
            top = module.split(".")[0]
            if top == PACKAGE:
                target = module.split(".")[1] if "." in module else "__init__"
                if target == "__init__":
                    continue
                if target not in layer_of:
                    problems.append("%s/%s:%d imports %s, which is in no layer" % (PACKAGE, f, line, module))
                elif layer_of[target] >= layer_of[name]:
                    problems.append("%s/%s:%d imports %s: layer %d may import only layers below it, and %s is layer %d"
                                    % (PACKAGE, f, line, target, layer_of[name], target, layer_of[target]))
            elif top not in sys.stdlib_module_names:
                problems.append("%s/%s:%d imports %s: the fault suite uses the standard library only" % (PACKAGE, f, line, module))

    for f in sorted(os.listdir(lib)):
        if not f.endswith(".py"):
            continue
        for line, module in imports(os.path.join(lib, f)):
            top = module.split(".")[0]
            if top not in sys.stdlib_module_names and top not in THIRD_PARTY and top not in ours:
                problems.append("%s:%d imports %s, which is not in scripts/lib: nothing of ours may come from outside the repository"
                                % (f, line, module))

    for problem in problems:
        print(problem)
    if not problems:
        print("imports: %s in %d layers, imports pointing down only; scripts/lib imports nothing from outside the repository"
              % (PACKAGE, len(LAYERS)))
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
