"""Checks that keep the tree honest: lint, and complete translations in every language."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from locales import tools

ROOT = Path(__file__).resolve().parent.parent


def test_every_message_is_translated_with_the_same_placeholders() -> None:
    assert list(tools.problems()) == []


def test_placeholder_check_catches_a_renamed_placeholder() -> None:
    assert tools.placeholders("Hello {name}, No. {number}") == {"name", "number"}
    assert tools.placeholders("你好 {姓名}") != tools.placeholders("Hello {name}")


def test_ruff_is_clean() -> None:
    ruff = shutil.which("ruff")
    assert ruff, "ruff is installed with the test extras"
    result = subprocess.run(
        [ruff, "check", "--quiet", str(ROOT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_import_contracts_are_kept() -> None:
    """The layering in pyproject.toml's [tool.importlinter]: rules and storage never import
    Telegram, storage nothing above it, the product never the sandbox."""
    lint_imports = shutil.which("lint-imports")
    assert lint_imports, "import-linter is installed with the test extras"
    result = subprocess.run([lint_imports, "--no-cache"], cwd=ROOT, capture_output=True,
                            text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_translation_inside_f_strings() -> None:
    """Babel cannot see a t("…") call inside an f-string, so its msgid would silently stay
    untranslated: translate first, then format."""
    offenders = [f"{path.relative_to(ROOT)}:{n}" for source in tools.SOURCES
                 for path in (ROOT / source).rglob("*.py")
                 for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                 if any(call in line for call in ("{t(", "{tg(", "{t.plural("))]
    assert offenders == []
