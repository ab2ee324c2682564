from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from lightmark.cli import main as cli_main
from lightmark.errors import SpecError


def test_unknown_command_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "lightmark.cli.main", "no-such-command"], capture_output=True, text=True
    )
    assert result.returncode == 2
    assert "invalid choice" in result.stderr


def _parser_with(func) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lightmark")
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("boom").set_defaults(func=func)
    return parser


def test_user_error_prints_one_line_without_traceback(monkeypatch, capsys):
    def fail(args):
        raise SpecError("channels must be a multiple of 4 and >= 8, got 130")

    monkeypatch.setattr(cli_main, "build_parser", lambda: _parser_with(fail))
    assert cli_main.main(["boom"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "lightmark boom: error: channels must be a multiple of 4 and >= 8, got 130"
    assert "Traceback" not in err


def test_bugs_keep_their_traceback(monkeypatch):
    def bug(args):
        raise ZeroDivisionError("not a user error")

    monkeypatch.setattr(cli_main, "build_parser", lambda: _parser_with(bug))
    with pytest.raises(ZeroDivisionError):
        cli_main.main(["boom"])
