"""The objective optimises the metric it is asked for, or says why it cannot."""

from pathlib import Path

import pytest

from lightmark.errors import ConfigError
from lightmark.search.objective import METRICS, Objective, _metric
from lightmark.training.protocol import get_protocol


def test_metric_found_plain_or_prefixed():
    assert _metric({"nme_image_pct": 3.5}, "nme_image_pct") == 3.5
    assert _metric({"val_nme_bbox_pct": 2.0}, "nme_bbox_pct") == 2.0
    assert _metric({"val/nme_bbox_pct": 1.5}, "nme_bbox_pct") == 1.5
    assert _metric({"nme_image_pct": float("nan")}, "nme_image_pct") is None


def test_missing_metric_is_an_error_naming_it_and_the_keys():
    # another NME is present, but it is not the one the study optimises: no silent fallback
    with pytest.raises(ConfigError) as info:
        _metric({"nme_inter_ocular_pct": 4.0, "epoch": 2}, "nme_image_pct")
    message = str(info.value)
    assert "'nme_image_pct'" in message
    assert "nme_inter_ocular_pct" in message and "epoch" in message


def test_objective_refuses_an_unknown_metric():
    assert "nme_image_pct" in METRICS and "nme_inter_ocular_pct" in METRICS
    with pytest.raises(ConfigError, match="'nme_pct'.*nme_image_pct"):
        Objective(protocol=get_protocol("quick"), cache_dir=Path("."), metric="nme_pct")
