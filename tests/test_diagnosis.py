"""The basic-recipe diagnosis on the textbook cases (errors as fractions, Bayes 0 unless said)."""

import pytest

from pipeline.diagnosis import RECOMMENDATIONS, diagnose


@pytest.mark.parametrize("train, dev, verdict", [
    (0.01, 0.11, "high variance"),
    (0.15, 0.16, "high bias"),
    (0.15, 0.30, "high bias and high variance"),
    (0.005, 0.01, "fine"),
])
def test_four_classic_cases(train, dev, verdict):
    d = diagnose(train, dev, bayes_error=0.0)
    assert d.verdict == verdict
    assert d.avoidable_bias == pytest.approx(train)
    assert d.variance == pytest.approx(dev - train)
    assert d.recommendation == RECOMMENDATIONS[verdict]


def test_bayes_15_percent_makes_the_bias_unavoidable():
    d = diagnose(0.15, 0.16, bayes_error=0.15)
    assert d.avoidable_bias == pytest.approx(0.0)
    assert d.variance == pytest.approx(0.01)
    assert d.verdict == "fine"


def test_recommendations_follow_the_basic_recipe():
    assert "bigger network" in diagnose(0.15, 0.16).recommendation
    assert "regularization" in diagnose(0.01, 0.11).recommendation
    both = diagnose(0.15, 0.30).recommendation
    assert both.index("bias") < both.index("variance")  # bias first


def test_threshold_is_a_boundary_not_noise():
    assert diagnose(0.0, 0.02).verdict == "fine"        # exactly at the threshold
    assert diagnose(0.0, 0.021).verdict == "high variance"
    assert diagnose(0.0, 0.05, threshold=0.1).verdict == "fine"


def test_tags_and_format():
    d = diagnose(0.15, 0.30)
    tags = d.as_tags()
    assert tags["diagnosis.verdict"] == "high bias and high variance"
    assert tags["diagnosis.variance"] == "0.1500"
    assert "avoidable bias +15.00%" in d.format()


@pytest.mark.parametrize("kwargs, message", [
    (dict(train_error=1.5, dev_error=0.1), "train_error must be in [0, 1], got 1.5"),
    (dict(train_error=0.1, dev_error=1.2), "dev_error must be in [0, 1], got 1.2"),
])
def test_bad_inputs_name_key_bound_value(kwargs, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[").replace("]", r"\]").replace("+", r"\+")):
        diagnose(**kwargs)


def test_dev_easier_than_train_is_a_mismatch_not_high_bias():
    d = diagnose(0.15, 0.05)
    assert d.verdict == "train/dev mismatch" and d.mismatch
    assert "high bias" not in d.format() and "bayes_error" in d.recommendation
    assert d.as_tags()["diagnosis.distribution_mismatch"] == "true"
    assert not diagnose(0.01, 0.11).mismatch
    # once bayes_error accounts for the noisy train labels, the bias is judged against it
    judged = diagnose(0.15, 0.05, bayes_error=0.14)
    assert judged.verdict == "fine" and judged.mismatch
    assert "differ in distribution" in judged.format()


def test_a_network_that_never_broke_symmetry_is_told_so():
    d = diagnose(0.5, 0.5, symmetric=True)
    assert d.verdict == "never broke symmetry"
    assert "re-initialize" in d.recommendation and "bigger network" not in d.recommendation.split(";")[0]
