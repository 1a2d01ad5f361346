"""Checks that keep the tree honest: lint, the import layering and no import circles, and
complete translations in every language."""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from pathlib import Path

import grimp

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


# The product's packages, for the import graph (the same as import-linter's root packages).
PRODUCT_PACKAGES = ("bot", "handlers", "scheduler", "storage", "locales")
# Circles known and waiting for a refactor, each as (importer, imported): empty, and any new
# one fails the test below. Add to it only with a reason beside the pair.
KNOWN_CIRCLES: frozenset[tuple[str, str]] = frozenset()


def import_circles(graph: grimp.ImportGraph) -> dict[tuple[str, str], tuple[str, ...]]:
    """Every direct import ``a -> b`` that closes a circle (b leads back to a), with the circle
    itself as a chain of modules from ``a`` back to ``a``."""
    circles = {}
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                circles[(importer, imported)] = (importer, *back)
    return circles


def test_the_circle_finder_finds_a_circle() -> None:
    graph = grimp.ImportGraph()
    graph.add_import(importer="a", imported="b")
    graph.add_import(importer="b", imported="c")
    graph.add_import(importer="c", imported="a")
    graph.add_import(importer="c", imported="d")
    assert set(import_circles(graph)) == {("a", "b"), ("b", "c"), ("c", "a")}
    assert import_circles(graph)[("a", "b")] == ("a", "b", "c", "a")


def test_no_import_circles_between_modules() -> None:
    """A circle of imports (even one hidden inside a function) means two modules are one
    in disguise, and whichever loads first sees the other half-built. Imports under
    TYPE_CHECKING never run and are left out: they name a type, nothing more."""
    graph = grimp.build_graph(*PRODUCT_PACKAGES, exclude_type_checking_imports=True,
                              cache_dir=None)
    circles = import_circles(graph)
    new = {pair: " -> ".join(chain) for pair, chain in circles.items()
           if pair not in KNOWN_CIRCLES}
    assert new == {}
    # A known circle that is gone must leave the list, so the list stays true.
    assert KNOWN_CIRCLES <= set(circles)


def private_imports(path: Path) -> list[str]:
    """The underscored names ``path`` imports from the product's packages."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] in PRODUCT_PACKAGES:
            found += [f"{node.module}.{alias.name}" for alias in node.names
                      if alias.name.startswith("_")]
    return found


def test_the_test_fake_uses_only_the_sandbox_public_api(tmp_path: Path) -> None:
    """The fake transport shares the sandbox's Telegram world; reaching for its private names
    would tie the tests to how the sandbox happens to be written today."""
    caught = tmp_path / "caught.py"
    caught.write_text("from bot.sandbox.world import TOKEN, _Hidden\n", "utf-8")
    assert private_imports(caught) == ["bot.sandbox.world._Hidden"]
    fake = ROOT / "tests" / "telegram_fake"
    assert [name for path in sorted(fake.rglob("*.py")) for name in private_imports(path)] == []


def test_no_translation_inside_f_strings() -> None:
    """Babel cannot see a t("…") call inside an f-string, so its msgid would silently stay
    untranslated: translate first, then format."""
    offenders = [f"{path.relative_to(ROOT)}:{n}" for source in tools.SOURCES
                 for path in (ROOT / source).rglob("*.py")
                 for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
                 if any(call in line for call in ("{t(", "{tg(", "{t.plural("))]
    assert offenders == []


def _literal_msgids(path: Path) -> list[tuple[int, str]]:
    """The msgids written as literals in t(…), N_(…) and _(…) calls of a module."""
    return [(node.lineno, node.args[0].value) for node in ast.walk(ast.parse(path.read_text(
            "utf-8"))) if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
            and node.func.id in ("t", "N_", "_") and node.args
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)]


def test_every_msgid_in_the_code_is_in_the_catalog() -> None:
    """What the extractor does not see (an N_ nested in a call of t(), say) is never
    translated, and no completeness check of the catalogs notices: each literal msgid of the
    code must be in the template."""
    from babel.messages.pofile import read_po

    with tools.template_path().open("rb") as f:
        known = {message.id for message in read_po(f) if message.id}
    missing = [f"{path.relative_to(ROOT)}:{line}: {msgid[:50]!r}"
               for source in tools.SOURCES for path in sorted((ROOT / source).rglob("*.py"))
               for line, msgid in _literal_msgids(path) if msgid not in known]
    assert missing == []


def test_the_msgid_check_sees_a_nested_one(tmp_path: Path) -> None:
    module = tmp_path / "nested.py"
    module.write_text('x = t(KINDS.get(kind, N_("Nested default")), n=1)\n', "utf-8")
    assert [msgid for _, msgid in _literal_msgids(module)] == ["Nested default"]


# A citation of a document or a tracker the repository does not contain explains nothing to
# its reader: a comment says its reason itself. (A standard's section, "RFC 7946 §3.1", is
# a public reference and stays.)
_CITATION = re.compile(r"\bDESIGN\b|(?<!RFC \d{4} )§|\b[Ii]ssues? #?\d")
_SKIPPED_DIRS = {".git", "test-artifacts", "__pycache__", "node_modules", ".venv", "venv",
                 "build", "dist", ".pytest_cache", ".ruff_cache"}


def _citations(root: Path) -> list[str]:
    found = []
    for path in sorted(root.rglob("*")):
        parts = path.relative_to(root).parts
        if (not path.is_file() or path.suffix not in {".py", ".md", ".toml", ".js", ".css",
                                                      ".html", ".ini", ".cfg", ".sh"}
                or any(p in _SKIPPED_DIRS or p.endswith(".egg-info") for p in parts)
                or path.resolve() == Path(__file__).resolve()):
            continue
        for n, line in enumerate(path.read_text("utf-8", errors="replace").splitlines(), 1):
            if _CITATION.search(line):
                found.append(f"{path.relative_to(root)}:{n}: {line.strip()}")
    return found


def test_no_comment_cites_a_design_document_or_an_issue() -> None:
    assert _citations(ROOT) == []


def test_the_citation_check_finds_one(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text('"""Claims race-safely (see issue 3)."""\n')
    (tmp_path / "b.md").write_text("Drafts are rows (" + "DESIGN §3).\n")
    (tmp_path / "c.py").write_text("# GeoJSON types (RFC 7946 §3.1)\n")
    assert [line.split(":")[0] for line in _citations(tmp_path)] == ["a.py", "b.md"]


# -- transactions: the doors parse and show, the actions own the unit of work ------------------

def transactions(path: Path) -> list[str]:
    """Where ``path`` opens a unit of work (``rt.uow()``, ``UnitOfWork(...)``), commits one
    (``.commit()``), or imports storage: each as ``line: what``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name in ("uow", "UnitOfWork", "commit"):
                found.append(f"{node.lineno}: {name}()")
        elif isinstance(node, ast.Import):
            found += [f"{node.lineno}: import {alias.name}" for alias in node.names
                      if alias.name.split(".")[0] == "storage"]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module \
                and node.module.split(".")[0] == "storage":
            found.append(f"{node.lineno}: from {node.module}")
    return sorted(found, key=lambda where: int(where.split(":")[0]))


def commits(path: Path) -> list[str]:
    return [where for where in transactions(path) if where.endswith(" commit()")]


def test_the_transaction_check_finds_them(tmp_path: Path) -> None:
    door = tmp_path / "door.py"
    door.write_text(
        "import storage.db\n"
        "from storage.models import Ticket\n"
        "async def handle(rt, db):\n"
        "    async with rt.uow() as uow:\n"
        "        await uow.commit()\n"
        "    async with UnitOfWork(db) as uow:\n"
        "        await uow.session.commit()\n"
        '    """A docstring may say rt.uow() and .commit() freely."""\n', "utf-8")
    assert transactions(door) == ["1: import storage.db", "2: from storage.models",
                                  "4: uow()", "5: commit()", "6: UnitOfWork()",
                                  "7: commit()"]
    assert commits(door) == ["5: commit()", "7: commit()"]


# The ticker is the timer door's dispatcher: it leases tasks and marks them done (or backs
# them off) in transactions of its own, as bot.processor does for updates.
DOOR_TRANSACTIONS_ALLOWED = {"scheduler/ticker.py"}


def test_the_doors_leave_transactions_to_the_actions() -> None:
    """The Telegram door (handlers/) and the timers' (scheduler/) parse what came in, call
    one action and show its answer: the unit of work, its commit and storage belong to the
    action (bot/actions), so that every door does a use case the same way."""
    offenders = [f"{path.relative_to(ROOT)}:{where}"
                 for package in ("handlers", "scheduler")
                 for path in sorted((ROOT / package).rglob("*.py"))
                 if path.relative_to(ROOT).as_posix() not in DOOR_TRANSACTIONS_ALLOWED
                 for where in transactions(path)]
    assert offenders == []


def test_services_never_commit() -> None:
    """The rules (bot/services) change rows in the caller's unit of work; the action that
    called them commits once, so a use case's changes and its messages land together."""
    offenders = [f"{path.relative_to(ROOT)}:{where}"
                 for path in sorted((ROOT / "bot" / "services").rglob("*.py"))
                 for where in commits(path)]
    assert offenders == []
