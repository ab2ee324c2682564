"""`lightmark search --fidelities CHEAP,DEAR --promote K`: the cheap study, its best K retrained under the
dear protocol, the pick made there; resumable; every number says its fidelity."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from lightmark.cli.main import main
from lightmark.errors import ConfigError
from lightmark.search.promote import Promotion, parse_fidelity

SPACE = ["--stacks", "1", "--depth", "2", "--channels", "16,24", "--attention", "none", "--coordconv", "false"]


def _dear(tmp_path: Path) -> Path:
    path = tmp_path / "dear.toml"
    path.write_text('name = "smoke-long"\nepochs = 3\n')
    return path


def test_a_fidelity_is_a_preset_or_a_preset_with_a_file(tmp_path: Path) -> None:
    assert parse_fidelity("tabular").name == "tabular"
    dear = parse_fidelity(f"smoke:{_dear(tmp_path)}")
    assert dear.name == "smoke-long" and dear.epochs == 3
    with pytest.raises(ConfigError, match="no such protocol file"):
        parse_fidelity("quick:nowhere.toml")
    with pytest.raises(ConfigError):
        parse_fidelity("nope")
    with pytest.raises(ConfigError, match="--promote must be >= 1"):
        Promotion(dear=dear, k=0)


@pytest.mark.parametrize(("fidelities", "message"), [
    ("tabular,quick", "must be this search's protocol"),
    ("smoke", "name two fidelities"),
    ("smoke,quick,paper", "name two fidelities"),
])
def test_bad_fidelities_are_user_errors(tmp_path: Path, capsys, fidelities: str, message: str) -> None:
    code = main(["search", "--protocol", "smoke", "--fidelities", fidelities, "--out", str(tmp_path), *SPACE])
    assert code == 2 and message in capsys.readouterr().err


@pytest.mark.slow
def test_a_two_fidelity_search_promotes_the_best_and_resumes(tmp_path: Path, capsys) -> None:
    out = tmp_path / "run"
    argv = ["search", "--protocol", "smoke", "--fidelities", f"smoke,smoke:{_dear(tmp_path)}", "--promote", "2",
            "--n-trials", "2", "--sampler", "grid", "--out", str(out), "--no-report", "--json", *SPACE]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    promotion = summary["promotion"]
    assert promotion["fidelities"] == ["smoke", "smoke-long"]
    promoted = promotion["promoted"]
    assert {row["spec"] for row in promoted} == {"s1-d2-c16", "s1-d2-c24"}  # both of the cheap study
    assert [row["nme_cheap"] for row in promoted] == sorted(row["nme_cheap"] for row in promoted)
    assert all(row["nme_dear"] is not None and Path(row["checkpoint"]).is_file() for row in promoted)
    assert promotion["pick"]["nme_dear"] == min(row["nme_dear"] for row in promoted)
    cheap = pd.read_csv(out / "records.csv")
    dear = pd.read_csv(out / "promoted-smoke-long" / "records.csv")
    assert set(cheap["protocol"]) == {"smoke"} and set(dear["protocol"]) == {"smoke-long"}
    assert (dear["epochs_done"] == 3).all()
    assert json.loads((out / "promotion.json").read_text()) == promotion

    assert main(argv) == 0  # resumed: nothing is trained again, the same pick
    again = json.loads(capsys.readouterr().out)
    assert again["promotion"] == promotion and again["trials"] == 2
    assert pd.read_csv(out / "promoted-smoke-long" / "records.csv").equals(dear)  # the same trainings
