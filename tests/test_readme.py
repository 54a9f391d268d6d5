"""Facts the README states about itself and about CI, kept true: its first two commands, that CI runs its test
command verbatim, that the test command shows why tests skip, and that the CI scripts say what they change."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CI_RUN = ROOT / ".ci" / "run"
DEBIAN_TOOLS = ROOT / ".ci" / "debian-tools"

DEMO_COMMAND = "pip install -e '.[demo]' && anthropic-otel demo --duration 20"


def readme_commands() -> list[str]:
    """The commands of the README's first code block, without their trailing `# comments`."""
    block = re.search(r"^```bash\n(.*?)^```", README.read_text(), re.MULTILINE | re.DOTALL)
    assert block, "README.md must open with a ```bash block of the two commands"
    return [re.sub(r"\s+#.*$", "", line).strip() for line in block.group(1).splitlines() if line.strip()]


def test_readme_opens_with_the_demo_and_the_test_command() -> None:
    text = README.read_text()
    assert text.index("```bash") < text.index("\n## "), "the two commands come before the first section"
    demo, tests = readme_commands()
    assert demo == DEMO_COMMAND
    assert tests.startswith("pip install -e '.[test]' && python -m pytest"), tests


def test_the_test_command_reports_why_tests_skip() -> None:
    """Tests that need Prometheus, Alertmanager or Redis skip without them; `-q` alone hides why."""
    pytest_args = shlex.split(readme_commands()[1].split("&&")[-1])
    assert any(re.fullmatch(r"-r[a-zA-Z]*[saA][a-zA-Z]*", arg) for arg in pytest_args), pytest_args


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    lines = [line for line in CI_RUN.read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert lines[-1] == readme_commands()[1], ".ci/run must end with the README's test command, exactly"


def _header(script: Path) -> str:
    """The comment block at the top of a script, after the shebang."""
    lines = script.read_text().splitlines()[1:]
    return "\n".join(line for line in lines[: next(i for i, line in enumerate(lines) if not line.startswith("#"))])


def _system_paths(script: Path) -> set[str]:
    """Absolute paths outside the repository that the script's code (not its comments) names."""
    code = "\n".join(line for line in script.read_text().splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"(?<![\w.$])/(?:usr|etc|var|opt)/[\w./-]+", code))


def test_ci_scripts_say_in_their_header_what_they_change_on_the_machine() -> None:
    for script in (CI_RUN, DEBIAN_TOOLS):
        header = _header(script)
        for path in _system_paths(script):
            assert path.rstrip("/") in header, f"{script.name} writes to {path}: say so in its header comment"
        if "apt-get install" in script.read_text():
            assert "apt" in header and "docker-compose" in header, f"{script.name}: name what apt installs"
    assert ".ci-venv" in _header(CI_RUN) and "debian-tools" in _header(CI_RUN)
    assert _system_paths(DEBIAN_TOOLS), "the check above must see the templates directory"


def test_readme_tells_contributors_about_the_binaries_and_what_ci_changes() -> None:
    text = README.read_text()
    for fact in ("bash .ci/debian-tools", ".ci-cache/debian", "/usr/share/prometheus/alertmanager", ".ci-venv",
                 "docker-compose", "CI=true"):
        assert fact in text, fact
