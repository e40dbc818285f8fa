"""Budgets counted from models built on the meta device, against values worked out by hand.

Every expected number below is computed from the paper's formulas and docs/paper.md's per-layer shapes,
with the arithmetic in the comment; none is produced by the code under test.
Notation: k = d_model, d = k / reduction_factor, L = blocks (encoder + decoder), LN = layer norms.
T5 v1.0 layer norms: 2 per encoder block, 3 per decoder block, 2 final.
"""

from __future__ import annotations

import pytest

from harness.model.budget import count_budget, percent_matches
from harness.model.build import build_method_model
from harness.model.checked import read_buildable_spec
from harness.spec.loader import read_spec
from harness.spec.model_choice import load_model_file
from tests.conftest import SPEC_DIR


def model_file(name: str):
    return load_model_file(SPEC_DIR / "models" / f"{name}.yaml")


def count(spec_name: str, model: str, **args) -> int:
    loaded = read_spec(SPEC_DIR / f"{spec_name}.yaml")
    arguments = {**loaded.resolved["method"]["args"], **args}
    built = build_method_model(spec_name, arguments, loaded.spec.trainable, model_file(model), device="meta")
    return built.trainable_params


def test_t5_base_has_the_papers_denominator():
    # docs/paper.md: t5-base with the vocabulary resized to 32,100 has 222,882,048 parameters.
    built = build_method_model("compacter", {}, ["*layer_norm.weight"], model_file("t5_base"))
    assert built.base_params == 222_882_048
    # 62 layer norms × 768 = 47,616 (encoder 12×2 + decoder 12×3 + 2 final).
    assert built.trainable_params == 47_616


# t5-base, k = 768, d = 24, 24 blocks, LN = 62 × 768 = 47,616.
# Compacter: per adapter down 4·192·1 + 4·1·6 + 24 = 816, up 4·6·1 + 4·1·192 + 768 = 1,560;
#   48 adapters × 2,376 = 114,048; + shared A 4³ = 64; + LN 47,616 = 161,728.
# Compacter++: 24 adapters × 2,376 = 57,024 + 64 + 47,616 = 104,704.
# PHM-Adapter (n = 12): down 12·64·2 + 12³ + 24 = 3,288, up 12·2·64 + 12³ + 768 = 4,032;
#   48 × 7,320 = 351,360 + 47,616 = 398,976.
# t5-small, k = 512, d = 16, L = 12 blocks, LN = (6·2 + 6·3 + 2) × 512 = 32 × 512 = 16,384.
# Compacter: 4L(k + d) + n³ = 4·12·528 + 64 = 25,408; biases 24 adapters × (16 + 512) = 12,672;
#   total 25,408 + 12,672 + 16,384 = 54,464.
# Compacter++: 2L(k + d) + n³ = 2·12·528 + 64 = 12,736; biases 12 × 528 = 6,336; total 35,456.
# PHM-Adapter with n = 8 (12 does not divide d = 16): 4L(kd/n + n³) = 48·(512·16/8 + 512) = 48·1,536
#   = 73,728; biases 24 × 528 = 12,672; total 73,728 + 12,672 + 16,384 = 102,784.
# t5-large, k = 1024, d = 32, L = 48 blocks, LN = (24·2 + 24·3 + 2) × 1024 = 122 × 1024 = 124,928.
# Compacter: 4·48·1,056 + 64 = 202,816; biases 96 × 1,056 = 101,376; total 429,120.
# Compacter++: 2·48·1,056 + 64 = 101,440; biases 48 × 1,056 = 50,688; total 277,056.
# PHM-Adapter with n = 8: 4·48·(1024·32/8 + 512) = 192·4,608 = 884,736; biases 101,376;
#   total 884,736 + 101,376 + 124,928 = 1,111,040.
# LoRA, r·(in + out) per adapted layer: A (r × in) + B (out × r); q and v of every attention: 2 per encoder
#   block (self), 4 per decoder block (self, cross). On T5 q, v map k → heads·d_kv = k.
#   t5-base, r = 8: (12·2 + 12·4) = 72 layers × 8·(768 + 768) = 72 × 12,288 = 884,736.
#   t5-small, r = 8: (6·2 + 6·4) = 36 × 8·(512 + 512) = 36 × 8,192 = 294,912.
#   t5-small, r = 16, targets q, v, wi: 36 × 16·1,024 = 589,824; wi (512 → 2,048) in 12 blocks:
#   12 × 16·(512 + 2,048) = 491,520; total 1,081,344.
# (IA)³, one vector per k, v (out = k) and per wo (its input, d_ff): encoder block 2k + d_ff, decoder 4k + d_ff.
#   t5-base: 12·(1,536 + 3,072) + 12·(3,072 + 3,072) = 55,296 + 73,728 = 129,024.
#   t5-small: 6·(1,024 + 2,048) + 6·(2,048 + 2,048) = 18,432 + 24,576 = 43,008.
#   t5-v1_1-base (gated, d_ff 2,048): 12·(1,536 + 2,048) + 12·(3,072 + 2,048) = 43,008 + 61,440 = 104,448.
CASES = [
    ("lora", "t5_base", {}, 884_736),
    ("lora", "t5_small", {}, 294_912),
    ("lora", "t5_small", {"rank": 16, "alpha": 32.0, "targets": ["q", "v", "wi"]}, 1_081_344),
    ("ia3", "t5_base", {}, 129_024),
    ("ia3", "t5_small", {}, 43_008),
    ("ia3", "t5_v1_1_base", {}, 104_448),
    ("compacter", "t5_base", {}, 161_728),
    ("compacter_pp", "t5_base", {}, 104_704),
    ("phm_adapter", "t5_base", {}, 398_976),
    ("compacter", "t5_small", {}, 54_464),
    ("compacter_pp", "t5_small", {}, 35_456),
    ("phm_adapter", "t5_small", {"n": 8}, 102_784),
    ("compacter", "t5_large", {}, 429_120),
    ("compacter_pp", "t5_large", {}, 277_056),
    ("phm_adapter", "t5_large", {"n": 8}, 1_111_040),
]


@pytest.mark.parametrize(
    "spec_name, model, args, expected", CASES, ids=[f"{c[0]}-{c[1]}-{i}" for i, c in enumerate(CASES)]
)
def test_counted_budget_equals_the_formula(spec_name, model, args, expected):
    assert count(spec_name, model, **args) == expected


@pytest.mark.parametrize("spec_name", ["compacter", "compacter_pp", "phm_adapter", "lora", "ia3"])
def test_budget_report_agrees_with_the_spec_and_the_paper(spec_name):
    report = count_budget(read_buildable_spec(SPEC_DIR / f"{spec_name}.yaml"))
    assert report.ok is True
    assert report.trainable_params == report.expected_trainable_params
    assert report.base_params == 222_882_048


def test_compacter_formula_for_other_n_and_rank():
    # Compacter on t5-base with n = 8, r = 2: d = 24, 768/8 = 96, 24/8 = 3.
    # down: s 8·96·2 = 1,536, t 8·2·3 = 48, bias 24 -> 1,608; up: s 8·3·2 = 48, t 8·2·96 = 1,536, bias 768 -> 2,352.
    # 48 adapters × 3,960 = 190,080; A 8³ = 512; LN 47,616; total 238,208.
    assert count("compacter", "t5_base", n=8, rank=2) == 238_208


def test_percent_rounding_follows_the_printed_precision():
    assert percent_matches(0.07256, 0.073)
    assert not percent_matches(0.07256, 0.072)
    assert percent_matches(0.8323, 0.83)
    assert not percent_matches(0.8363, 0.83)


def test_low_rank_formula_for_rank_two():
    # Adapter-LowRank on t5-base with r = 2: k = 768, d = 24.
    # down: w_l 768·2 = 1,536, w_r 2·24 = 48, bias 24 -> 1,608; up: w_l 24·2 = 48, w_r 2·768 = 1,536, bias 768
    # -> 2,352; 48 adapters × 3,960 = 190,080; LN 47,616; total 237,696 (r = 1 gives the paper's 161,664).
    assert count("low_rank_adapter", "t5_base", rank=2) == 237_696
