"""The README's two first-screen commands stay true: CI runs exactly the test command."""

import re

from tests.conftest import REPO


def _bash_blocks() -> list[str]:
    return re.findall(r"```bash\n(.*?)```", (REPO / "README.md").read_text(), flags=re.S)


def test_ci_runs_the_readme_test_command():
    test_command = _bash_blocks()[1].strip()
    assert test_command.startswith("python -m pytest")
    ci_lines = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]
    assert test_command in ci_lines


def test_setup_command_names_the_setup_script_and_the_samples():
    setup = _bash_blocks()[0].strip()
    assert "scripts/setup.sh" in setup and "data/samples" in setup
    assert (REPO / "scripts" / "setup.sh").exists()
