"""The search machinery in-process, with the synthetic runner (same contract as the real one)."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lightmark.errors import LightmarkError, NonFiniteLossError
from lightmark.models.spec import ModelSpec
from lightmark.search import testing
from lightmark.search.budget import Budget
from lightmark.search.config import SearchConfig
from lightmark.search.fixed import run_fixed_candidates
from lightmark.search.limits import HARD_LIMIT_FACTOR
from lightmark.search.space import SearchSpace
from lightmark.search.storage import choose_storage
from lightmark.search.study import run_search
from lightmark.training.protocol import get_protocol

SIZER = "lightmark.search.testing:synthetic_size_mb"
RUNNER = "lightmark.search.testing:synthetic_runner"
SMOKE = get_protocol("smoke")


def _config(run_dir: Path, **kw) -> SearchConfig:
    budget = Budget(size_mb=kw.pop("budget_mb", 1.0), input_size=64, sizer=SIZER)
    space = kw.pop("space", SearchSpace().bounded(64))
    defaults = dict(
        protocol=SMOKE, run_dir=run_dir, storage=choose_storage(kw.pop("storage", None), run_dir,
                                                                kw.pop("workers", 1)),
        study_name="t", space=space, budget=budget, n_trials=8, runner=RUNNER,
    )
    defaults.update(kw)
    return SearchConfig(**defaults)


def _study(config: SearchConfig) -> optuna.Study:
    from lightmark.search.storage import open_storage

    return optuna.load_study(study_name=config.study_name, storage=open_storage(config.storage))


def test_search_trains_nothing_over_budget_and_records_everything(tmp_path):
    config = _config(tmp_path, n_trials=10)
    result = run_search(config)
    study = _study(config)
    assert len(study.trials) == 10
    over = [t for t in study.trials if t.user_attrs["size_mb"] > 1.0]
    under = [t for t in study.trials if t.user_attrs["size_mb"] <= 1.0]
    assert over and under
    for trial in over:
        assert trial.state == TrialState.COMPLETE and trial.value == float("inf")
        assert trial.user_attrs["status"] == "infeasible"
        assert trial.user_attrs["train_seconds"] == 0 and not trial.intermediate_values
        assert trial.constraints["size_mb"] == pytest.approx(trial.user_attrs["size_mb"] - 1.0, abs=1e-5)
        assert trial.user_attrs["budget_check_ms"] >= 0  # measured (its speed: bench, not tests)
    trained_keys = set(testing.trainings(tmp_path))
    assert trained_keys == {t.user_attrs["key"] for t in under}
    assert all(t.constraints["size_mb"] <= 0 for t in under)
    # the best is feasible and is the lowest NME among complete feasible trials
    best = result.summary["best"]
    feasible = [t for t in under if t.state == TrialState.COMPLETE]
    assert best["nme_image_pct"] == min(t.value for t in feasible)
    assert study.best_trial.user_attrs["spec"] == best["spec"]
    # the files
    rows = list(csv.DictReader(open(tmp_path / "records.csv")))
    assert len(rows) == 10 and {r["status"] for r in rows} >= {"infeasible", "complete"}
    pareto = json.loads((tmp_path / "pareto.json").read_text())
    assert pareto["best"]["spec"] == best["spec"]
    assert all(p["size_mb"] <= 1.0 for p in pareto["pareto"])
    assert pareto["skipped_over_budget"] == len(over)
    # every Record field is a flat user attr
    attrs = feasible[0].user_attrs
    for key in ("spec", "params", "size_mb", "macs", "latency_ms", "nme_image_pct",
                "nme_inter_ocular_pct", "train_seconds", "device", "status", "key"):
        assert key in attrs


def test_rerun_tops_up_to_the_total_and_never_retrains(tmp_path):
    run_search(_config(tmp_path, n_trials=4))
    first = testing.trainings(tmp_path)
    result = run_search(_config(tmp_path, n_trials=9))
    study = _study(_config(tmp_path))
    assert len(study.trials) == 9 and result.summary["trials"] == 9
    assert all(n == 1 for n in testing.trainings(tmp_path).values())
    assert set(first) <= set(testing.trainings(tmp_path))
    run_search(_config(tmp_path, n_trials=9))  # target already met: nothing runs
    assert len(_study(_config(tmp_path)).trials) == 9


def test_a_failing_candidate_is_failed_with_its_reason_and_the_study_goes_on(tmp_path, monkeypatch):
    bad = ModelSpec.parse("s1-d2-c32")
    space = SearchSpace(n_stacks=(1,), depth=(2,), channels=(32, 40, 48), attention=("none",),
                        coordconv=(False,))
    monkeypatch.setenv("LIGHTMARK_FAKE_FAIL", str(bad))
    config = _config(tmp_path, space=space, n_trials=4, sampler="grid")
    run_search(config)
    study = _study(config)
    failed = [t for t in study.trials if t.state == TrialState.FAIL]
    assert len(failed) == 1 and failed[0].user_attrs["spec"] == str(bad)
    assert "NonFiniteLossError" in failed[0].user_attrs["reason"]
    assert failed[0].user_attrs["size_mb"] > 0
    complete = {t.user_attrs["spec"] for t in study.trials if t.state == TrialState.COMPLETE}
    assert complete == {"s1-d2-c40", "s1-d2-c48"}  # grid exhausted: 3 architectures, 3 trials


def test_pruning_reports_epochs_and_prunes(tmp_path):
    config = _config(tmp_path, n_trials=12, budget_mb=50.0, pruner="median",
                     protocol=get_protocol("smoke").override({"epochs": 4}))
    run_search(config)
    study = _study(config)
    pruned = [t for t in study.trials if t.state == TrialState.PRUNED]
    assert pruned, "the median pruner never fired on the synthetic landscape"
    for trial in pruned:
        assert trial.intermediate_values and trial.user_attrs["status"] == "pruned"
        assert 2 <= max(trial.intermediate_values) < 4  # not on epoch 1 alone, never after the last
        assert trial.user_attrs["train_seconds"] > 0


def test_multi_objective_returns_a_pareto_front(tmp_path):
    config = _config(tmp_path, n_trials=10, objectives=("nme", "size"), sampler="nsga2",
                     budget_mb=2.0)
    result = run_search(config)
    study = _study(config)
    assert len(study.directions) == 2
    front = result.summary["pareto"]
    assert front
    for a in front:  # no point of the front dominates another
        for b in front:
            assert not (a["nme_image_pct"] < b["nme_image_pct"] and a["size_mb"] < b["size_mb"])
    done = [t for t in study.trials if t.state == TrialState.COMPLETE]
    assert all(t.values[1] == pytest.approx(t.user_attrs["size_mb"]) for t in done)


def test_two_objective_search_prunes_dominated_curves(tmp_path):
    """nme,size: a trial whose NME at an epoch is beaten by a finished trial of no larger size stops."""
    from dataclasses import replace

    protocol = replace(SMOKE, epochs=4)
    space = SearchSpace(n_stacks=(1,), depth=(2, 3, 4), channels=(16, 24, 32), attention=("none",),
                        coordconv=(False,))
    config = _config(tmp_path, n_trials=12, objectives=("nme", "size"), sampler="random", budget_mb=2.0,
                     protocol=protocol, space=space)
    # depth 4 is larger and (in the synthetic landscape) worse than depth 3 at the same width
    first = [("d3", ModelSpec.parse("s1-d3-c32")), ("d4", ModelSpec.parse("s1-d4-c32"))]
    result = run_search(config, enqueue=first)
    trials = _study(config).trials
    by_label = {t.user_attrs.get("label"): t for t in trials}
    assert by_label["d3"].state == TrialState.COMPLETE and by_label["d4"].state == TrialState.PRUNED
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.user_attrs.get("curve")]
    assert pruned, "no trial was pruned"
    for trial in (t for t in pruned if not t.user_attrs.get("reused")):  # a repeat is answered from the cache
        epoch = max(int(k) for k in trial.user_attrs["curve"])
        assert 1 <= epoch < 4
        value = trial.user_attrs["curve"][str(epoch)]
        assert any(o.user_attrs["size_mb"] <= trial.user_attrs["size_mb"]
                   and o.user_attrs["curve"].get(str(epoch), 1e9) <= value
                   for o in complete if o.number < trial.number or o.datetime_complete < trial.datetime_complete)
    assert result.summary["counts"]["pruned"] == len(pruned)
    none = _config(tmp_path / "none", n_trials=4, objectives=("nme", "size"), pruner="none", budget_mb=2.0)
    run_search(none)
    assert not [t for t in _study(none).trials if t.state == TrialState.PRUNED]


def test_pareto_pruner_is_refused_for_one_objective(tmp_path):
    from lightmark.errors import ConfigError

    with pytest.raises(ConfigError, match="two-objective"):
        run_search(_config(tmp_path, pruner="pareto"))


def test_summary_counts_repeated_architectures(tmp_path):
    space = SearchSpace(n_stacks=(1,), depth=(2,), channels=(16, 24), attention=("none",), coordconv=(False,))
    config = _config(tmp_path, n_trials=8, space=space, sampler="random")
    result = run_search(config)
    specs = [t.user_attrs["spec"] for t in sorted(_study(config).trials, key=lambda t: t.number)]
    assert result.summary["repeats"] == len(specs) - len(set(specs)) >= 6
    assert result.to_json()["repeats"] == result.summary["repeats"]  # what the CLI prints


def test_enqueued_architectures_come_first(tmp_path):
    first = [("a", ModelSpec.parse("s1-d2-c32")), ("b", ModelSpec.parse("s1-d3-c40-ca"))]
    config = _config(tmp_path, n_trials=3)
    run_search(config, enqueue=first)
    run_search(_config(tmp_path, n_trials=4), enqueue=first)  # not enqueued twice
    trials = sorted(_study(config).trials, key=lambda t: t.number)
    assert [t.user_attrs["spec"] for t in trials[:2]] == ["s1-d2-c32", "s1-d3-c40-ca"]
    assert [t.user_attrs.get("label") for t in trials].count("a") == 1


def test_fixed_candidates_in_input_order_and_resumable(tmp_path, monkeypatch):
    other = SMOKE.override({"seed": 1})
    candidates = [
        ("base", ModelSpec.parse("s1-d2-c32"), SMOKE),
        ("ca", ModelSpec.parse("s1-d2-c32-ca"), SMOKE),
        ("seed1", ModelSpec.parse("s1-d2-c32"), other),
        ("bad", ModelSpec.parse("s1-d2-c48"), SMOKE),
    ]
    monkeypatch.setenv("LIGHTMARK_FAKE_FAIL", "s1-d2-c48")
    records = run_fixed_candidates(candidates, run_dir=tmp_path, study_name="abl", progress=False,
                                   runner=RUNNER)
    assert [r.spec for r in records] == ["s1-d2-c32", "s1-d2-c32-ca", "s1-d2-c32", "s1-d2-c48"]
    assert [r.status for r in records] == ["complete", "complete", "complete", "failed"]
    assert records[0].seed == 0 and records[2].seed == 1 and records[0].key != records[2].key
    assert "NonFiniteLossError" in records[3].error
    monkeypatch.delenv("LIGHTMARK_FAKE_FAIL")
    again = run_fixed_candidates(candidates, run_dir=tmp_path, study_name="abl", progress=False,
                                 runner=RUNNER)
    assert [r.status for r in again] == ["complete"] * 4
    assert again[:3] == records[:3]  # finished ones are not rerun
    assert all(n == 1 for k, n in testing.trainings(tmp_path).items() if k != records[3].key)
    study = optuna.load_study(study_name="abl", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert sorted(t.user_attrs["label"] for t in study.trials) == ["bad", "bad", "base", "ca", "seed1"]


def test_impossible_protocol_mix_is_refused(tmp_path):
    run_search(_config(tmp_path, n_trials=2))
    from lightmark.errors import ConfigError

    with pytest.raises(ConfigError, match="different protocol"):
        run_search(_config(tmp_path, n_trials=3, protocol=SMOKE.override({"epochs": 3})))


def test_runner_errors_are_lightmark_errors():
    """A diverging training is the user's to fix (learning rate, data): the CLI prints it as one line
    (a LightmarkError), while a pruned trial is Optuna's control flow, not an error of ours."""
    assert issubclass(NonFiniteLossError, LightmarkError)
    assert not issubclass(optuna.TrialPruned, LightmarkError)


def test_a_second_machine_reuses_records_from_the_shared_study(tmp_path):
    """Machines have their own candidate caches; the study itself says what is already trained."""
    journal = f"journal:{tmp_path / 'shared.log'}"
    first = _config(tmp_path / "a", storage=journal, n_trials=6)
    run_search(first)
    done = [t for t in _study(first).trials if t.user_attrs.get("status") == "complete"]
    assert done
    spec = ModelSpec.parse(done[0].user_attrs["spec"])
    second = _config(tmp_path / "b", storage=journal, n_trials=7)
    run_search(second, enqueue=[("again", spec)])
    again = [t for t in _study(second).trials if t.user_attrs.get("label") == "again"][0]
    assert again.user_attrs["reused"] is True
    assert again.user_attrs["reused_from_trial"] == done[0].number
    assert again.value == done[0].value
    assert testing.trainings(tmp_path / "b") == {}  # nothing trained on the second machine


def test_out_of_memory_and_data_errors_fail_only_their_trial(tmp_path):
    from lightmark.errors import DataError

    def runner(spec, protocol, run_dir, **kw):
        if spec.channels == 32:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if spec.channels == 40:
            raise DataError("/data/annot.pkl: entry 17 has 67 points")
        return testing.synthetic_runner(spec, protocol, run_dir, **kw)

    space = SearchSpace(n_stacks=(1,), depth=(2,), channels=(32, 40, 48), attention=("none",),
                        coordconv=(False,))
    config = _config(tmp_path, space=space, n_trials=3, sampler="grid", runner=None)
    run_search(config, runner=runner)
    trials = {t.user_attrs["spec"]: t for t in _study(config).trials}
    assert trials["s1-d2-c32"].state == TrialState.FAIL
    assert "out of memory" in trials["s1-d2-c32"].user_attrs["reason"]
    assert trials["s1-d2-c40"].state == TrialState.FAIL
    assert "entry 17" in trials["s1-d2-c40"].user_attrs["error"]
    assert trials["s1-d2-c48"].state == TrialState.COMPLETE


def test_timeout_stops_a_long_trial_at_the_hard_limit_and_a_rerun_resumes_it(tmp_path, monkeypatch):
    monkeypatch.setenv("LIGHTMARK_FAKE_EPOCH_S", "0.4")
    space = SearchSpace(n_stacks=(1,), depth=(2,), channels=(32,), attention=("none",), coordconv=(False,))
    slow = get_protocol("smoke").override({"epochs": 6})
    config = _config(tmp_path, space=space, protocol=slow, n_trials=1, timeout=1.0, pruner="none")
    result = run_search(config)  # returns normally: the time limit is not an error
    # Stopped at the hard limit (1.2 s), not run to its end: an epoch sleeps 0.4 s, so at most 3 of
    # the 6 epochs can have finished, however slow the machine (no wall-clock bound to race with).
    state = json.loads(next((tmp_path / "candidates").glob("*/state.json")).read_text())
    assert 1 <= state["epoch"] <= int(1.0 * HARD_LIMIT_FACTOR / 0.4)
    trial = _study(config).trials[0]
    assert trial.state == TrialState.FAIL and "time limit" in trial.user_attrs["reason"]
    assert result.summary["counts"]["waiting"] == 1  # queued again
    monkeypatch.setenv("LIGHTMARK_FAKE_EPOCH_S", "0")
    run_search(_config(tmp_path, space=space, protocol=slow, n_trials=1, pruner="none"))
    trials = _study(config).trials
    assert [t.state for t in trials] == [TrialState.FAIL, TrialState.COMPLETE]
    log = next((tmp_path / "candidates").glob("*/trainings.log")).read_text().splitlines()
    assert len(log) == 2 and not log[1].endswith("epoch 0")  # resumed from its checkpoint


def test_cpu_workers_split_the_cores_unless_told():
    from lightmark.search.workers import threads_per_worker

    cores = len(os.sched_getaffinity(0))
    assert threads_per_worker(None, 1, []) == cores
    assert threads_per_worker(None, 2, []) == max(1, cores // 2)
    assert threads_per_worker(None, 10 * cores, []) == 1
    assert threads_per_worker(3, 2, []) == 3  # explicit wins
    assert threads_per_worker(None, 2, ["0"]) is None  # GPU workers: torch's default


def test_workers_auto_is_one_per_core_on_the_cpu(monkeypatch):
    from lightmark.errors import LightmarkError
    from lightmark.search import workers

    monkeypatch.setattr(workers, "usable_cores", lambda: 6)
    assert workers.resolve_workers("auto", "cpu") == 6
    assert workers.resolve_workers("3", "cpu") == 3
    assert workers.threads_per_worker(None, 6, []) == 1
    monkeypatch.setattr(workers, "visible_gpus", lambda: ["0", "1"])
    assert workers.resolve_workers("auto", "auto") == 2
    for bad in ("0", "many"):
        with pytest.raises(LightmarkError, match="--workers"):
            workers.resolve_workers(bad, "cpu")


def test_bf16_on_a_cpu_without_bf16_units_is_flagged(monkeypatch):
    import torch

    from lightmark import device

    monkeypatch.setattr(device, "cpu_has_bf16", lambda: False)
    assert "5x slower" in device.precision_warning("bf16", torch.device("cpu"))
    assert device.precision_warning("fp32", torch.device("cpu")) is None
    monkeypatch.setattr(device, "cpu_has_bf16", lambda: True)
    assert device.precision_warning("bf16", torch.device("cpu")) is None
