"""Zero-cost proxies: finite scores at initialisation, and the rank statistics that judge them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lightmark.benchmarks.proxies import (
    all_proxies,
    paired_difference,
    proxy_batch,
    rank_agreement,
)
from lightmark.models.spec import ModelSpec
from lightmark.training.protocol import get_protocol


def test_proxies_are_finite_deterministic_and_grow_with_the_network():
    protocol = get_protocol("smoke")
    batch = proxy_batch(protocol, batch_size=4)
    assert batch.x.shape == (4, 3, 64, 64) and batch.target.shape == (4, 68, 16, 16)
    small = all_proxies(ModelSpec.parse("s1-d2-c8"), batch, protocol)
    again = all_proxies(ModelSpec.parse("s1-d2-c8"), batch, protocol)
    big = all_proxies(ModelSpec.parse("s2-d2-c16"), batch, protocol)
    assert set(small) == {"synflow", "naswot", "grad_norm", "snip", "params"}
    assert all(math.isfinite(v) for v in (*small.values(), *big.values()))
    assert small == again  # seeded initialisation: the same score twice
    assert big["params"] > small["params"] and big["synflow"] > small["synflow"]


def test_rank_agreement_is_positive_when_the_proxy_ranks_better_architectures_higher():
    rng = np.random.default_rng(0)
    nme = rng.uniform(5, 15, 60)
    good = -nme + rng.normal(0, 0.5, 60)
    agreement = rank_agreement(good, nme, n_boot=200)
    assert agreement["kendall_tau"] > 0.7 and agreement["spearman_rho"] > 0.85
    assert agreement["kendall_tau_ci_low"] <= agreement["kendall_tau"] <= agreement["kendall_tau_ci_high"]
    assert rank_agreement(nme, nme, n_boot=50)["kendall_tau"] == pytest.approx(-1.0)
    noise = rng.normal(size=60)
    diff = paired_difference(good, noise, nme, n_boot=300)
    assert diff["ci_low"] > 0.4  # clearly better than a random score
    same = paired_difference(good, good, nme, n_boot=100)
    assert same["difference"] == 0 and same["ci_low"] == same["ci_high"] == 0
