"""The PHM layer beyond the Kronecker-sum identity (which the `kron_sum` invariant checks)."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from harness.invariants.kron_sum import check_case, explicit_kron_sum
from impl.layers.init import glorot_uniform_
from impl.layers.phm import ALGORITHMS, FACTORED_IN, FACTORED_OUT, MATERIALISE, PHMLinear, PHMRule
from tests.strategies import not_multiples_of, phm_cases


@given(case=phm_cases(), seed=st.integers(0, 2**16))
def test_layer_equals_the_kronecker_sum(case, seed):
    check_case(case, seed)  # raises InvariantViolation (an AssertionError) on a mismatch


@given(n=st.integers(2, 6), data=st.data())
def test_n_must_divide_both_sizes(n, data):
    good = n * data.draw(st.integers(1, 4))
    bad = data.draw(not_multiples_of(n))
    with pytest.raises(ValueError, match="must divide"):
        PHMLinear(bad, good, n)
    with pytest.raises(ValueError, match="must divide"):
        PHMLinear(good, bad, n)
    PHMLinear(good, good, n)  # and a multiple of n on both sides is accepted


@given(n=st.integers(1, 4), p=st.integers(1, 6), q=st.integers(1, 6), rank=st.integers(1, 4))
def test_factorised_blocks_have_rank_at_most_r(n, p, q, rank):
    layer = PHMLinear(n * p, n * q, n, rank=rank).double()
    for block in layer.blocks():
        assert torch.linalg.matrix_rank(block) <= min(rank, p, q)


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_gradients_match_autograd_on_the_explicit_weight(algorithm):
    torch.manual_seed(0)
    layer = PHMLinear(8, 12, 4, rank=2).double()
    layer.algorithm = algorithm
    with torch.no_grad():
        layer.rule.normal_()
        layer.bias.normal_()
    x = torch.randn(3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(layer, (x,))
    # The same gradients through the explicit Σ kron(A_i, B_i): a second, independent computation.
    (layer(x) ** 2).sum().backward()
    ours = {name: p.grad.clone() for name, p in layer.named_parameters()}
    layer.zero_grad()
    ((x @ explicit_kron_sum(layer) + layer.bias) ** 2).sum().backward()
    for name, p in layer.named_parameters():
        torch.testing.assert_close(ours[name], p.grad, msg=name)


def test_auto_takes_the_algorithm_with_the_fewest_multiply_adds():
    # per input row: materialise in·out; factored_in r·n·(in + n·out); factored_out r·n·(n·in + out)
    down, up, full = PHMLinear(768, 24, 4, rank=1), PHMLinear(24, 768, 4, rank=1), PHMLinear(768, 24, 4)
    assert down.chosen_algorithm() == FACTORED_IN  # 18,432 vs 4·(768 + 96) = 3,456 vs 4·(3,072 + 24) = 12,384
    assert up.chosen_algorithm() == FACTORED_OUT  # 18,432 vs 4·(24 + 3,072) = 12,384 vs 4·(96 + 768) = 3,456
    assert full.chosen_algorithm() == MATERIALISE  # a full B has no factored form
    down.algorithm = MATERIALISE
    assert down.chosen_algorithm() == MATERIALISE


class Shared(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.rule = PHMRule(4, init_std=0.1)
        self.layers = nn.ModuleList(PHMLinear(8, 4, 4, rank=1, shared_rule=self.rule) for _ in range(3))


def test_a_shared_rule_is_one_parameter_listed_once():
    model = Shared()
    assert all(layer.rule is model.rule.phm_rule for layer in model.layers)
    names = [name for name, p in model.named_parameters() if p is model.rule.phm_rule]
    assert names == ["rule.phm_rule"]
    own = PHMLinear(8, 4, 4, rank=1)
    assert [n for n, _ in own.named_parameters()].count("own_rule.phm_rule") == 1


def test_deepcopy_keeps_sharing_inside_the_copy_only():
    model = Shared()
    clone = copy.deepcopy(model)
    assert all(layer.rule is clone.rule.phm_rule for layer in clone.layers)
    assert clone.rule.phm_rule is not model.rule.phm_rule


def test_dtype_and_device_moves_reach_the_shared_rule():
    model = Shared().double()
    assert all(layer.rule.dtype == torch.float64 for layer in model.layers)
    assert model.layers[0](torch.randn(2, 8, dtype=torch.float64)).dtype == torch.float64


def test_meta_to_empty_rebinds_the_shared_rule():
    with torch.device("meta"):
        model = Shared()
    model = model.to_empty(device="cpu")
    assert all(layer.rule is model.rule.phm_rule for layer in model.layers)


@given(rows=st.integers(1, 50), cols=st.integers(1, 50), gain=st.floats(0.1, 3.0))
def test_glorot_uniform_stays_within_its_bound(rows, cols, gain):
    tensor = glorot_uniform_(torch.empty(3, rows, cols), gain)
    assert tensor.abs().max() <= gain * math.sqrt(6.0 / (rows + cols))


def test_invalid_rank_and_mismatched_shared_rule_are_refused():
    with pytest.raises(ValueError, match="rank"):
        PHMLinear(8, 8, 4, rank=0)
    with pytest.raises(ValueError, match="n=2"):
        PHMLinear(8, 8, 4, shared_rule=PHMRule(2, init_std=0.1))
