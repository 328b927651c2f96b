import re

from tests.conftest import BASE_DIR


def test_every_environment_variable_in_settings_is_in_the_readme_table():
    settings_source = (BASE_DIR / "flowsite" / "settings.py").read_text()
    read = set(re.findall(r'env_\w+\(\s*"([A-Z_]+)"', settings_source))
    read |= set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', settings_source))
    table = set(re.findall(r"^\| `([A-Z_]+)` \|", (BASE_DIR / "README.md").read_text(), re.M))
    assert read, "the pattern no longer finds the variables"
    assert read - table == set(), "missing from README's configuration table"
    assert table - read == set(), "in README's table but not read by settings"


def test_the_quick_start_is_exactly_the_two_commands():
    readme = (BASE_DIR / "README.md").read_text()
    block = readme.split("## Quick start", 1)[1].split("```sh", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in block.strip().splitlines()]
    assert commands == ["make run", "make test"]
