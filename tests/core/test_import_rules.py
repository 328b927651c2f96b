"""Import rules between the apps: the import-linter contracts of pyproject.toml (also run by
`make lint`), and no function-level import of another app's services, tasks or schedules,
which would hide a cycle that the contracts cannot see. Neither needs Django nor a database."""

import ast
from pathlib import Path

from importlinter.cli import lint_imports

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "apps"
GUARDED = ("services", "tasks", "schedules")


def _imported_modules(node: ast.Import | ast.ImportFrom, package: str) -> list[str]:
    """The dotted names an import statement loads, including `from apps.x import services`."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:  # relative: resolved from the importing module's package
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        module = f"{base}.{node.module}" if node.module else base
    else:
        module = node.module or ""
    return [module, *(f"{module}.{alias.name}" for alias in node.names)]


def _guarded_app(module: str) -> str | None:
    """The app whose services, tasks or schedules `module` is (or is inside), if it is one."""
    parts = module.split(".")
    if len(parts) >= 3 and parts[0] == "apps" and parts[2] in GUARDED:
        return parts[1]
    return None


def function_level_imports_of_other_apps() -> list[str]:
    found = []
    for path in sorted(APPS.rglob("*.py")):
        relative = path.relative_to(ROOT)
        own_app = relative.parts[1]
        package = ".".join(relative.with_suffix("").parts[:-1])
        if path.name == "__init__.py":
            package = ".".join(relative.parts[:-1])
        tree = ast.parse(path.read_text(), filename=str(relative))
        top_level = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Import | ast.ImportFrom) or id(node) in top_level:
                continue
            for module in _imported_modules(node, package):
                app = _guarded_app(module)
                if app is not None and app != own_app:
                    found.append(f"{relative}:{node.lineno}: indented import of {module}")
                    break
    return found


def test_no_app_imports_another_apps_services_tasks_or_schedules_inside_a_function():
    found = function_level_imports_of_other_apps()
    assert not found, (
        "A function-level import of another app's services, tasks or schedules hides an "
        "import cycle. Import it at the top of the module, and if that makes a cycle, move "
        "the code to the app that owns it:\n" + "\n".join(found)
    )


def test_the_import_linter_contracts_are_kept(capsys):
    # The graph of apps/ only (some 200 files): a fraction of a second, no cache written.
    kept = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    assert kept == 0, capsys.readouterr().out
