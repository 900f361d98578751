"""The evaluation arithmetic: micro, macro and per-document scores, and the hybrid's bootstrap margins."""

from __future__ import annotations

from models.evaluate import margins, scores


def identity(technique: str) -> str:
    return technique


def parent(technique: str) -> str:
    return technique.split(".")[0]


TRUTH = {f"r{i}": {"T1059.001", "T1486"} for i in range(12)}
UNIVERSE = {"T1059.001", "T1486", "T1027"}


def test_margin_is_the_difference_of_the_pooled_scores() -> None:
    predicted = {
        "hybrid": {name: {"T1059.003", "T1486"} for name in TRUTH},  # right at parent level, exact level not
        "id": {name: {"T1059.001", "T1486"} if i % 2 else {"T1059.001"} for i, name in enumerate(sorted(TRUTH))},
    }
    result = margins(predicted, TRUTH, UNIVERSE, parent)
    expected = (scores(predicted["hybrid"], TRUTH, UNIVERSE, parent)["micro"]["f1"]
                - scores(predicted["id"], TRUTH, UNIVERSE, parent)["micro"]["f1"])
    assert result["reference"] == "hybrid" and set(result["methods"]) == {"id"}
    assert abs(result["methods"]["id"]["margin"] - expected) < 1e-3
    low, high = result["methods"]["id"]["ci95"]
    assert 0 < low <= result["methods"]["id"]["margin"] <= high < 1
    exact = margins(predicted, TRUTH, UNIVERSE, identity)  # the level changes the verdict
    assert exact["methods"]["id"]["margin"] < 0


def test_identical_methods_have_a_zero_margin_and_interval() -> None:
    noisy = {name: ({"T1486"} if i % 3 else {"T1027"}) for i, name in enumerate(sorted(TRUTH))}
    result = margins({"hybrid": noisy, "classifier": dict(noisy)}, TRUTH, UNIVERSE, parent)
    assert result["methods"]["classifier"] == {"margin": 0.0, "ci95": [0.0, 0.0]}


def test_the_interval_is_seeded_and_widens_when_reports_disagree() -> None:
    # the reference wins big on a third of the reports and loses a little on the rest
    hybrid = {name: ({"T1059.001", "T1486"} if i % 3 == 0 else {"T1027"}) for i, name in enumerate(sorted(TRUTH))}
    other = {name: {"T1486"} for name in TRUTH}
    first = margins({"hybrid": hybrid, "lexicon": other}, TRUTH, UNIVERSE, parent, seed=1)
    again = margins({"hybrid": hybrid, "lexicon": other}, TRUTH, UNIVERSE, parent, seed=1)
    assert first == again
    low, high = first["methods"]["lexicon"]["ci95"]
    assert low < first["methods"]["lexicon"]["margin"] < high and high - low > 0.1


def test_frequency_agreement_compares_the_two_frequency_tables() -> None:
    from models.evaluate import frequency_agreement

    parent = lambda t: t.split(".")[0]  # noqa: E731
    truth = {"r1": {"T1036.005", "T1059.001", "T1105"}, "r2": {"T1036", "T1059"}, "r3": {"T1036.004", "T1486"}}
    predicted = {"r1": {"T1059.001", "T1059.003", "T1105", "T1027"}, "r2": {"T1059", "T1027"}, "r3": {"T1027"}}
    agreement = frequency_agreement(predicted, truth, parent, ks=(2,))
    # reports per parent: method T1059 2, T1027 3, T1105 1; annotators T1036 3, T1059 2, T1105 1, T1486 1
    assert agreement["techniques"] == 5
    assert agreement["under"] == [["T1036", 0, 3], ["T1486", 0, 1]]  # most under-counted first
    assert agreement["over"] == [["T1027", 3, 0]]
    assert agreement["top_overlap"] == {"2": 1}  # annotators' top 2: T1036, T1059; the method's: T1027, T1059
    assert -1 < agreement["spearman"] < 0.5
    assert frequency_agreement(truth, truth, parent)["spearman"] == 1.0
    assert frequency_agreement(truth, truth, parent)["over"] == [] == frequency_agreement(truth, truth, parent)["under"]


def test_per_document_scores_average_each_reports_own_score() -> None:
    truth = {"big": {f"T10{i:02d}" for i in range(10)}, "small": {"T1486"}, "empty": set()}
    predicted = {"big": {f"T10{i:02d}" for i in range(10)}, "small": {"T1027"}, "empty": {"T1059"}}
    universe = set().union(*truth.values(), *predicted.values())
    result = scores(predicted, truth, universe, identity)
    # pooled: 10 TP, 2 FP, 1 FN; per document: big 1.0, small 0.0 ("empty" has nothing to find: left out)
    assert result["micro"]["f1"] == round(20 / 23, 4)
    assert result["per_document"] == {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    nothing = scores({"big": set()}, {"big": {"T1000"}}, {"T1000"}, identity)
    assert nothing["per_document"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_macro_f05_weighs_precision_more_than_recall() -> None:
    truth = {f"r{i}": {"T1486"} for i in range(4)}
    precise = {"r0": {"T1486"}}  # P 1, R .25
    greedy = {f"r{i}": {"T1486", "T1027"} for i in range(4)}  # T1486 P 1 R 1; T1027 P 0
    universe = {"T1486", "T1027"}
    assert scores(precise, truth, universe, identity)["macro"]["f05"] == round(1.25 * 0.25 / (0.25 + 0.25), 4)
    assert scores(precise, truth, universe, identity)["macro"]["f05"] > scores(precise, truth, universe,
                                                                               identity)["macro"]["f1"]
    assert scores(greedy, truth, universe, identity)["macro"]["f05"] == 0.5  # mean of 1.0 and 0.0


def test_a_top_technique_s_support_counts_reports_not_sub_techniques(catalog) -> None:
    from models.evaluate import _table, _top20

    truth = {"r1": {"T1059.001", "T1059.003", "T1486"}, "r2": {"T1059"}}
    predicted = {m: {"r1": {"T1059.001"}, "r2": set()} for m in ("hybrid", "classifier")}
    universe = set().union(*truth.values())
    rows = {row["technique"]: row for row in _top20(_table(predicted, truth, universe, catalog), truth, universe,
                                                    catalog)}
    assert rows["T1059"]["support"] == 2 and rows["T1486"]["support"] == 1  # two reports, not three labels
    assert rows["T1059"]["hybrid"]["f1"] == round(2 * 0.5 / 1.5, 4)  # found in r1 of the two
