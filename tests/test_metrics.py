"""`harness.data.metrics.compute` against hand-computed values (each case says how it was computed by hand).

Invalid generations, ties, constant predictions (undefined correlation -> 0) and the grouping keywords of
MultiRC and ReCoRD are covered; no expected value comes from the code under test.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.data.metrics import compute, normalize_answer
from harness.data.protocol import load_task, metric_inputs
from harness.spec.tasks import TASKS


def test_accuracy_strips_whitespace_and_counts_invalid_as_wrong():
    # correct: [0] "1"="1", [2] " 1 " stripped; wrong: [1] "0"≠"1", [3] "yes" invalid -> 2/4
    assert compute("rte", ["1", "0", " 1 ", "yes"], ["1", "1", "1", "0"]) == {"accuracy": 50.0, "average": 50.0}


def test_binary_f1_counts_an_invalid_prediction_as_the_opposite_of_its_target():
    # effective predictions [1, 0(invalid, target 1), 0, 1(invalid, target 0), 0, 0]
    # TP = 1 ([0]), FP = 1 ([3]), FN = 2 ([1], [4]) -> F1 = 2·1 / (2·1 + 1 + 2) = 0.4
    # accuracy: [0], [2], [5] -> 3/6
    scores = compute("mrpc", ["1", "maybe", "0", "x", "0", "0"], ["1", "1", "0", "0", "1", "0"])
    assert scores == pytest.approx({"f1": 40.0, "accuracy": 50.0, "average": 45.0})


def test_f1_with_no_positive_prediction_is_zero():
    assert compute("qqp", ["0", "0"], ["1", "0"])["f1"] == 0.0


def test_mcc_hand_computed_with_an_invalid_prediction():
    # effective [1, 1, 0, 0, 1(invalid, target 0)]: TP 2, FN 1, TN 1, FP 1
    # MCC = (2·1 − 1·1) / sqrt((2+1)(2+1)(1+1)(1+1)) = 1/6
    scores = compute("cola", ["1", "1", "0", "0", "bad"], ["1", "1", "1", "0", "0"])
    assert scores["mcc"] == pytest.approx(100 / 6)


def test_mcc_constant_predictions_is_zero_and_all_invalid_is_minus_hundred():
    assert compute("cola", ["1", "1", "1", "1"], ["1", "0", "1", "0"])["mcc"] == 0.0
    # every invalid prediction becomes the opposite of its target: perfectly anti-correlated
    assert compute("cola", ["?", "", "2", "no"], ["1", "0", "1", "0"])["mcc"] == pytest.approx(-100.0)


def test_pearson_and_spearman_hand_computed():
    # x = [1, 2, 3, 4], y = [1, 3, 2, 8]: dx = [-1.5, -.5, .5, 1.5], dy = [-2.5, -.5, -1.5, 4.5]
    # Σdxdy = 10, Σdx² = 5, Σdy² = 29 -> r = 10 / sqrt(145); ranks of y = [1, 3, 2, 4]: ρ = 1 − 6·2/(4·15) = 0.8
    scores = compute("stsb", ["1", "3", "2", "8"], ["1.0", "2.0", "3.0", "4.0"])
    r = 1000 / math.sqrt(145)
    assert scores == pytest.approx({"pearson": r, "spearman": 80.0, "average": (r + 80.0) / 2})


def test_spearman_with_tied_predictions_uses_average_ranks():
    # y = [2, 2, 3, 4]: ranks [1.5, 1.5, 3, 4]; Σdxdy over ranks = 4.5, Σdx² = 5, Σdy² = 4.5 -> ρ = sqrt(0.9)
    # pearson on values: dy = [-.75, -.75, .25, 1.25], Σdxdy = 3.5, Σdy² = 2.75 -> r = 3.5 / sqrt(13.75)
    scores = compute("stsb", ["2", "2", "3", "4"], ["1.0", "2.0", "3.0", "4.0"])
    assert scores["spearman"] == pytest.approx(100 * math.sqrt(0.9))
    assert scores["pearson"] == pytest.approx(350 / math.sqrt(13.75))


def test_unparsable_score_is_minus_one():
    # y = [1, -1, 3, 4]: mean 1.75, Σdxdy = 6.5, Σdy² = 14.75 -> r = 6.5 / sqrt(5·14.75)
    # ranks [2, 1, 3, 4]: Σd² = 2 -> ρ = 1 − 12/60 = 0.8; "nan" and "inf" are invalid the same way
    for bad in ("x", "nan", "inf", ""):
        scores = compute("stsb", ["1", bad, "3", "4"], ["1.0", "2.0", "3.0", "4.0"])
        assert scores["pearson"] == pytest.approx(650 / math.sqrt(73.75)), bad
        assert scores["spearman"] == pytest.approx(80.0), bad


def test_constant_or_single_prediction_correlation_is_zero():
    assert compute("stsb", ["2.0", "2.0", "2.0"], ["1.0", "2.0", "3.0"]) == {"pearson": 0.0, "spearman": 0.0,
                                                                             "average": 0.0}  # fmt: skip
    assert compute("stsb", ["x", "y", "z"], ["1.0", "2.0", "3.0"])["pearson"] == 0.0
    assert compute("stsb", ["2.0"], ["2.0"])["pearson"] == 0.0


def test_cb_macro_f1_and_accuracy_hand_computed():
    # class 0: TP 2 -> F1 1; class 1: TP 1, FP 1 ([2]), FN 1 ([4] invalid) -> F1 1/2;
    # class 2: TP 1, FN 1 ([2]) -> P 1, R 1/2, F1 2/3. macro = (1 + 1/2 + 2/3)/3 = 13/18; accuracy 4/6
    scores = compute("cb", ["0", "1", "1", "0", "x", "2"], ["0", "1", "2", "0", "1", "2"])
    assert scores["macro_f1"] == pytest.approx(100 * 13 / 18)
    assert scores["accuracy"] == pytest.approx(100 * 4 / 6)
    assert scores["average"] == pytest.approx((100 * 13 / 18 + 100 * 4 / 6) / 2)


def test_cb_class_absent_everywhere_scores_zero_in_the_macro_average():
    # classes 0 and 1 perfect (F1 1), class 2 has no target and no prediction (F1 0): macro 2/3
    assert compute("cb", ["0", "0", "1"], ["0", "0", "1"])["macro_f1"] == pytest.approx(200 / 3)


def test_multirc_f1_over_answers_and_exact_match_per_question():
    # questions: A = rows 0, 2, 4 (all right), B = rows 1, 3 (row 3 wrong), C = row 5 (invalid -> wrong)
    # em = 1/3. f1 over answers: effective [1, 0, 0, 0, 1, 0(invalid, target 1)] vs [1, 0, 0, 1, 1, 1]:
    # TP 2, FP 0, FN 2 ([3], [5]) -> 4 / 6
    predictions = ["1", "0", "0", "0", "1", "yes"]
    targets = ["1", "0", "0", "1", "1", "1"]
    group = [(0, "A"), (0, "B"), (0, "A"), (0, "B"), (0, "A"), (1, "C")]
    scores = compute("multirc", predictions, targets, group=group)
    assert scores == pytest.approx({"f1": 200 / 3, "em": 100 / 3, "average": 50.0})


def test_multirc_exact_match_needs_every_answer_of_the_question_right_wherever_the_wrong_one_is():
    # question A: rows 0, 1, 2 with the wrong answer first (row 0) -> 0; B: rows 3, 4 wrong in the middle of
    # the list but not last of B (row 3) -> 0; C: row 5 right -> 100. em = 100/3 by hand
    predictions = ["0", "1", "0", "1", "0", "1"]
    targets = ["1", "1", "0", "0", "0", "1"]
    group = ["A", "A", "A", "B", "B", "C"]
    assert compute("multirc", predictions, targets, group=group)["em"] == pytest.approx(100 / 3)


@given(st.lists(st.tuples(st.integers(0, 4), st.sampled_from("01"), st.sampled_from(["right", "flip", "junk"])),
                min_size=1, max_size=30))  # fmt: skip
def test_multirc_exact_match_is_the_share_of_questions_with_no_wrong_answer(rows):
    """Reference: the definition, by question, with any() over each question's wrong answers."""
    wrong_of = {"right": lambda t: t, "flip": lambda t: "10"[int(t)], "junk": lambda t: " maybe "}
    predictions = [wrong_of[how](t) for _, t, how in rows]
    questions = {q for q, _, _ in rows}
    failed = {q for q, _, how in rows if how != "right"}
    expected = 100 * (len(questions) - len(failed)) / len(questions)
    scores = compute("multirc", predictions, [t for _, t, _ in rows], group=[q for q, _, _ in rows])
    assert scores["em"] == pytest.approx(expected)


def test_multirc_needs_its_groups():
    with pytest.raises(ValueError, match="group="):
        compute("multirc", ["1"], ["1"])


def test_record_squad_em_and_f1_max_over_gold_answers():
    # [0] "The Bob!" -> "bob" = "bob": EM 1, F1 1
    # [1] "alice" vs "ann" 0, vs "alice smith": P 1, R 1/2 -> F1 2/3, EM 0
    # [2] "carl jr" vs "carl": P 1/2, R 1 -> F1 2/3; [3] "" -> 0
    # EM = 1/4, F1 = (1 + 2/3 + 2/3 + 0)/4 = 7/12
    predictions = ["The Bob!", "alice", "Carl Jr", ""]
    answers = [["Bob"], ["Ann", "Alice Smith"], ["Carl"], ["Dan"]]
    scores = compute("record", predictions, [a[0] for a in answers], answers=answers)
    assert scores == pytest.approx({"em": 25.0, "f1": 700 / 12, "average": (25.0 + 700 / 12) / 2})


def test_record_without_answers_scores_against_the_target():
    assert compute("record", ["an apple", "pear"], ["Apple", "plum"]) == pytest.approx(
        {"em": 50.0, "f1": 50.0, "average": 50.0}
    )


def test_record_em_and_f1_take_a_later_gold_answer_too():
    # [0] "bob" is the 2nd gold answer: EM 1, F1 1; [1] "the eiffel tower" = 3rd answer "Eiffel Tower" after
    # normalisation: EM 1, F1 1; [2] "Paris" matches no answer: 0. EM = F1 = 2/3 by hand
    predictions = ["bob", "the eiffel tower", "Paris"]
    answers = [["Ann", "Bob"], ["Tower", "Eiffel", "Eiffel Tower"], ["Lyon", "Nice"]]
    scores = compute("record", predictions, [a[0] for a in answers], answers=answers)
    assert scores == pytest.approx({"em": 200 / 3, "f1": 200 / 3, "average": 200 / 3})


ANSWER = st.sampled_from(["Bob", "Ann Lee", "The Hague", "New York", "Mr. Smith", "an Owl", "Bob Jr"])


@given(st.lists(st.tuples(st.lists(ANSWER, min_size=1, max_size=4), st.integers(0, 3)), min_size=1, max_size=8))
def test_record_predicting_any_gold_answer_scores_100(cases):
    """EM and F1 are maxima over ALL gold answers: a prediction equal to any one of them is perfect."""
    answers = [gold for gold, _ in cases]
    predictions = [gold[pick % len(gold)] for gold, pick in cases]
    scores = compute("record", predictions, [gold[0] for gold in answers], answers=answers)
    assert scores == pytest.approx({"em": 100.0, "f1": 100.0, "average": 100.0})


def test_squad_token_f1_counts_repeated_tokens():
    # tokens are a multiset: "new york new" vs "new york new jersey": common {new: 2, york: 1} = 3,
    # P = 3/3, R = 3/4 -> F1 = 2·(3/4)/(7/4) = 6/7; EM 0
    scores = compute("record", ["New York New"], ["New York New Jersey"])
    assert scores == pytest.approx({"em": 0.0, "f1": 600 / 7, "average": 300 / 7})


def test_squad_normalisation():
    assert normalize_answer("  The  Cat's, a HAT! ") == "cats hat"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        ((["1"], ["1", "0"]), {}, "1 predictions for 2 targets"),
        (([], []), {}, "no examples"),
        ((["1"], ["7"]), {}, "target \\[0\\] '7'"),
        ((["1"], ["1"]), {"group": [1]}, "takes no grouping"),
    ],
)
def test_caller_errors_are_value_errors(args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute("rte", *args, **kwargs)


WEIRD = ["", "   ", "1.0", "-1", "01", "nan", "inf", "True", "entailment", "ñ\x00", "9" * 400, "0 1", "@placeholder"]


@pytest.mark.parametrize("name", list(TASKS))
def test_garbage_generations_never_crash_and_score_within_range(name):
    data = load_task(name, toy=True)
    examples = data.examples("test")
    predictions = [WEIRD[i % len(WEIRD)] for i in range(len(examples))]
    scores = compute(name, predictions, [e.target for e in examples], **metric_inputs(name, examples))
    assert set(scores) >= {"average"}
    assert all(math.isfinite(v) and -100.0 <= v <= 100.0 for v in scores.values()), scores
    perfect = compute(name, [e.target for e in examples], [e.target for e in examples], **metric_inputs(name, examples))
    assert perfect["average"] == pytest.approx(100.0)
