from __future__ import annotations

import argparse
import signal
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


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_long_runs_stop_like_ctrl_c_even_when_started_with_sigint_ignored(signum):
    """`nohup lightmark ablate ... &` inherits SIGINT ignored; kill -INT / -TERM must still stop it."""
    import os
    import time

    from lightmark.cli._common import terminate_as_interrupt

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        with pytest.raises(KeyboardInterrupt), terminate_as_interrupt():
            os.kill(os.getpid(), signum)
            time.sleep(1)  # the handler raises before this ends
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # restored
    finally:
        signal.signal(signal.SIGINT, before)


def test_a_reader_that_leaves_early_gets_no_traceback():
    """`lightmark models --json | head -1`: the pipe closes before the JSON is written."""
    proc = subprocess.Popen([sys.executable, "-m", "lightmark.cli.main", "models", "--json", "--no-macs"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command has imported anything, so its first write finds no reader
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=120) == 141, stderr
    assert "Traceback" not in stderr and "BrokenPipeError" not in stderr
