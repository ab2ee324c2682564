"""The command line only parses, calls a package and prints: no function of `lightmark/cli/` is longer
than MAX_LINES (def line to last line). Logic that grows there belongs in the package of its stage."""

from __future__ import annotations

import ast
from pathlib import Path

CLI = Path(__file__).resolve().parents[1] / "lightmark" / "cli"
MAX_LINES = 40


def _long_functions(source: str, filename: str) -> list[str]:
    tree = ast.parse(source, filename=filename)
    return [f"{filename}:{node.lineno} {node.name}() is {node.end_lineno - node.lineno + 1} lines"
            for node in ast.walk(tree)
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
            and node.end_lineno - node.lineno + 1 > MAX_LINES]


def test_the_checker_counts_from_def_to_last_line():
    body = "".join(f"    x{i} = {i}\n" for i in range(MAX_LINES - 1))
    assert not _long_functions(f"def ok():\n{body}", "ok.py")
    assert _long_functions(f"def long():\n{body}    return 0\n", "long.py") == [
        f"long.py:1 long() is {MAX_LINES + 1} lines"]
    nested = "def outer():\n    def inner():\n" + "".join(f"        y{i} = {i}\n" for i in range(MAX_LINES))
    assert [line.split()[1] for line in _long_functions(nested, "n.py")] == ["outer()", "inner()"]


def test_no_cli_function_is_longer_than_40_lines():
    files = sorted(CLI.glob("*.py"))
    assert len(files) > 10
    long = [item for path in files for item in _long_functions(path.read_text(), path.name)]
    assert not long, "move the logic into its package:\n" + "\n".join(long)
