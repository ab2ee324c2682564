"""docs/cli.md is generated from the argument parser (`make docs`), so it cannot drift: it must equal a fresh
generation, and every flag of every command, walked recursively from `lightmark`'s parser, must be named in
the section headed by its full command."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import pytest

from lightmark.cli.main import build_parser
from lightmark.cli.reference import cli_reference, escape, walk

DOC = Path(__file__).resolve().parents[1] / "docs" / "cli.md"


@pytest.fixture(scope="module")
def parser() -> argparse.ArgumentParser:
    return build_parser()


def sections(text: str) -> dict[str, str]:
    """{heading text after '## ': the section's body} of a Markdown file."""
    found: dict[str, str] = {}
    title, body = None, []
    for line in text.splitlines():
        if line.startswith("## "):
            if title is not None:
                found[title] = "\n".join(body)
            title, body = line[3:].strip(), []
        else:
            body.append(line)
    if title is not None:
        found[title] = "\n".join(body)
    return found


def test_cli_md_is_freshly_generated(parser: argparse.ArgumentParser) -> None:
    assert DOC.exists(), "docs/cli.md is missing: run `make docs`"
    assert DOC.read_text() == cli_reference(parser), (
        "docs/cli.md differs from the argument parser: run `make docs` and commit docs/cli.md")


def test_every_flag_of_every_command_is_in_its_section(parser: argparse.ArgumentParser) -> None:
    found = sections(DOC.read_text())
    missing = []
    commands = list(walk(parser))
    assert len(commands) > 20  # the walk reaches the nested commands (bench search, data synth, ...)
    for command, _summary in commands:
        body = found.get(command.prog)
        if body is None:
            missing.append(f"no section '## {command.prog}'")
            continue
        for action in command._actions:
            for flag in action.option_strings:
                if flag.startswith("--") and flag != "--help" and not re.search(re.escape(flag) + r"(?![\w-])", body):
                    missing.append(f"{command.prog} {flag}")
    assert not missing, f"docs/cli.md lacks (run `make docs`): {'; '.join(missing)}"


def test_nested_commands_get_their_own_sections(parser: argparse.ArgumentParser) -> None:
    titles = set(sections(DOC.read_text()))
    assert {"lightmark bench search", "lightmark data synth", "lightmark search", "lightmark export"} <= titles
    search = sections(DOC.read_text())["lightmark bench search"]
    assert "`--metric`" in search and "nme_inter_ocular_pct" in search  # the flag, its choices


def test_cells_keep_tables_and_placeholders_intact() -> None:
    assert escape("a | b") == "a \\| b"
    assert escape("default: runs/train/<spec>-<protocol>") == "default: runs/train/\\<spec>-\\<protocol>"
    assert escape("see `<out>/x` and\n  more") == "see `<out>/x` and more"  # code spans stay literal
