"""The command reference, `docs/cli.md`, generated from the argument parser so it cannot drift.

`python -m lightmark.cli.reference docs/cli.md` (or `make docs`) writes it; `cli_reference()` returns
the Markdown. One section per command, headed by the full command (`## lightmark bench search`), with
its description, its positional arguments and a table of every flag: long form, value, default and
help text (with `%(default)s` expanded). Nothing here depends on the terminal's width or the machine,
so the file is the same wherever it is generated; `tests/test_cli_reference.py` compares it.
"""

from __future__ import annotations

import argparse
import re
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

from lightmark.atomic import write_text_atomic
from lightmark.cli.main import build_parser

WIDTH = 110  # descriptions are wrapped at this width; table rows are one line each
HEADER = """# Command reference

Generated from lightmark's argument parser by `make docs` (`lightmark/cli/reference.py`): do not edit
it by hand. `tests/test_cli_reference.py` fails when this file differs from a fresh generation, and
when a flag of any command is missing from its section. Every command also takes `-h` / `--help`,
which prints the same help in the terminal.
"""


def subcommands(parser: argparse.ArgumentParser) -> dict[str, tuple[argparse.ArgumentParser, str]]:
    """{name: (parser, one-line help)} of a command group, in the order argparse lists them."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            return {name: (sub, helps.get(name, "")) for name, sub in action.choices.items()}
    return {}


def walk(parser: argparse.ArgumentParser, summary: str = "") -> Iterator[tuple[argparse.ArgumentParser, str]]:
    """(parser, one-line help) of this command and of every command below it, depth first."""
    yield parser, summary
    for sub, sub_summary in subcommands(parser).values():
        yield from walk(sub, sub_summary)


def escape(text: str) -> str:
    """Text for a Markdown table cell: line breaks become spaces, `|` is escaped everywhere, and `<`, `*`
    and backslashes outside code spans (so `<out>` is not taken for an HTML tag)."""
    parts = " ".join(str(text).split()).split("`")
    for i in range(0, len(parts), 2):  # outside backticks
        parts[i] = re.sub(r"([<*\\])", r"\\\1", parts[i])
    return "`".join(parts).replace("|", "\\|")


def help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    """The action's help with `%(default)s` and friends expanded, as `--help` prints it."""
    if not action.help or action.help == argparse.SUPPRESS:
        return ""
    return argparse.HelpFormatter(parser.prog)._expand_help(action)


def value_of(action: argparse.Action) -> str:
    """What follows the flag: its choices, metavar or the argparse default metavar; '' for a switch."""
    if action.nargs == 0:
        return ""
    if action.choices is not None and action.metavar is None:
        return "{" + ",".join(str(c) for c in action.choices) + "}"
    if isinstance(action.metavar, tuple):
        return " ".join(action.metavar)
    return action.metavar or action.dest.upper()


def default_of(action: argparse.Action) -> str:
    """The default as a user would type it; '' where there is none (None, a switch off, an empty list)."""
    default = action.default
    if action.nargs == 0 or default is None or default == argparse.SUPPRESS:
        return ""
    if isinstance(default, (list, tuple)):
        return ",".join(str(v) for v in default)
    return str(default)


def _is_help(action: argparse.Action) -> bool:
    return isinstance(action, argparse._HelpAction)


def flag_table(parser: argparse.ArgumentParser) -> list[str]:
    """The flags of one command as a Markdown table (every option string, long form included)."""
    rows = ["| flag | value | default | what it does |", "|---|---|---|---|"]
    for action in parser._actions:
        if not action.option_strings or _is_help(action):
            continue
        names = ", ".join(f"`{name}`" for name in action.option_strings)
        value = value_of(action)
        default = default_of(action)
        rows.append(f"| {names} | {f'`{value}`' if value else ''} | {f'`{default}`' if default else ''} | "
                    f"{escape(help_text(parser, action))} |")
    return rows if len(rows) > 2 else []


def positional_list(parser: argparse.ArgumentParser) -> list[str]:
    """The positional arguments of a command (not the subcommand slot of a group) as a list."""
    lines = []
    for action in parser._actions:
        if action.option_strings or isinstance(action, argparse._SubParsersAction):
            continue
        name = value_of(action) if action.choices is not None else (action.metavar or action.dest)
        repeat = " ..." if action.nargs in ("+", "*") else ""
        optional = " (optional)" if action.nargs in ("?", "*") else ""
        lines.append(f"- `{name}{repeat}`{optional}: {escape(help_text(parser, action))}")
    return lines


def synopsis(parser: argparse.ArgumentParser) -> str:
    """`lightmark train [options] SPEC_OR_PRESET`: the command, then its positionals."""
    words = [parser.prog, "[options]"] if any(a.option_strings and not _is_help(a) for a in parser._actions) \
        else [parser.prog]
    for action in parser._actions:
        if action.option_strings:
            continue
        if isinstance(action, argparse._SubParsersAction):
            words.append("COMMAND ...")
            continue
        name = value_of(action) if action.choices is not None else (action.metavar or action.dest)
        words.append(f"[{name} ...]" if action.nargs == "*" else f"[{name}]" if action.nargs == "?"
                     else f"{name} [{name} ...]" if action.nargs == "+" else name)
    return " ".join(words)


def command_section(parser: argparse.ArgumentParser, summary: str) -> list[str]:
    """One command: heading (the full command), summary, synopsis, description, arguments, flags."""
    lines = [f"## {parser.prog}", ""]
    if summary:
        lines += [f"*{escape(summary)}*", ""]
    lines += ["```text", synopsis(parser), "```", ""]
    if parser.description:
        lines += [textwrap.fill(escape(parser.description), WIDTH, break_on_hyphens=False, break_long_words=False),
                  ""]
    children = subcommands(parser)
    if children:
        lines += ["Commands:", ""]
        lines += [f"- [`{sub.prog}`](#{anchor(sub.prog)}): {escape(text)}" for sub, text in children.values()]
        lines.append("")
    positionals = positional_list(parser)
    if positionals:
        lines += ["Arguments:", "", *positionals, ""]
    table = flag_table(parser)
    if table:
        lines += [*table, ""]
    return lines


def anchor(title: str) -> str:
    """GitHub's anchor for a heading: lower case, spaces to dashes, punctuation other than - and _ dropped."""
    return re.sub(r"[^a-z0-9 _-]", "", title.lower()).replace(" ", "-")


def cli_reference(parser: argparse.ArgumentParser | None = None) -> str:
    """docs/cli.md: the header, then one section per command of `parser` (default: lightmark's)."""
    parser = parser or build_parser()
    lines = [HEADER]
    for command, summary in walk(parser):
        lines += command_section(command, summary)
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    """`python -m lightmark.cli.reference [OUT]`: write the reference to OUT, or print it."""
    args = sys.argv[1:] if argv is None else argv
    text = cli_reference()
    if not args:
        sys.stdout.write(text)
        return 0
    write_text_atomic(Path(args[0]), text)
    print(f"wrote {args[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
