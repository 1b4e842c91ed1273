"""The README's results text is generated from the tables: the paired pivot and the one-line cost summaries."""
import importlib.util
import math
from pathlib import Path

import pandas as pd

spec = importlib.util.spec_from_file_location("readme_results", Path(__file__).parent.parent / "tools" / "readme_results.py")
rr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rr)


def test_paired_pivot_puts_the_comparator_first_and_marks_one_seed_settings():
    paired = pd.DataFrame([
        dict(ways=5, shots=1, trained="5w1s", baseline="metaoptnet-svm", role="comparator", difference=-3.85,
             ci95=3.59, verdict="MTL lower"),
        dict(ways=5, shots=5, trained="5w5s", baseline="metaoptnet-svm", role="comparator", difference=-1.77,
             ci95=math.nan, verdict="one seed: no interval"),
        dict(ways=20, shots=1, trained="5w1s", baseline="metaoptnet-svm", role="comparator", difference=-6.26,
             ci95=7.43, verdict="not significant"),
        dict(ways=5, shots=1, trained="5w1s", baseline="protonet", role=math.nan, difference=-2.64, ci95=0.95,
             verdict="MTL lower")])
    lines = rr.paired_pivot(paired).splitlines()
    assert lines[0] == "| MTL minus | 5-way 1-shot | 5-way 5-shot | 20-way 1-shot (bodies of 5w1s) |"
    assert lines[2] == "| metaoptnet-svm (comparator) | -3.9 ± 3.6 (MTL lower) | -1.8 (1 seed) | -6.3 ± 7.4 (n.s.) |"
    assert lines[3] == "| protonet | -2.6 ± 0.9 (MTL lower) | - | - |"


def test_cost_sentences_name_who_reached_the_target_and_who_did_not():
    cost = pd.DataFrame([
        dict(ways=5, shots=1, method="mtl", target_val_acc=94.8, target_from="metaoptnet-svm",
             images_to_target_minus_1=math.inf, seconds_to_target_minus_1=math.inf),
        dict(ways=5, shots=1, method="metaoptnet-svm", target_val_acc=94.8, target_from="metaoptnet-svm",
             images_to_target_minus_1=1.72e5, seconds_to_target_minus_1=146.0)])
    text = rr.cost_sentences(cost)
    assert text == ("- 5-way 1-shot, to 93.8 % validation (metaoptnet-svm's best minus 1 point, every seed): reached by "
                    "metaoptnet-svm (1.72e+05 images, 146 s); not by every seed of mtl.")


def test_the_paper_gap_sentence_compares_error_ratios():
    gaps = pd.DataFrame([
        dict(source="paper", benchmark="mini-imagenet", setting="5-way 1-shot", seeds=math.nan, gap=-2.8, ci95=math.nan,
             error_ratio=1.07),
        dict(source="paper", benchmark="fc100", setting="5-way 5-shot", seeds=math.nan, gap=2.2, ci95=math.nan,
             error_ratio=0.95),
        dict(source="ours", benchmark="omniglot-minimal", setting="5-way 1-shot", seeds=3, gap=-3.85, ci95=3.59,
             error_ratio=1.70)])
    text = rr.paper_gap_sentence(gaps)
    assert "ranges from -2.8 to +2.2 points" in text and "from 0.95 to 1.07 times" in text
    assert "5-way 1-shot -3.9 ± 3.6 points (3 seeds), an error rate 1.70 times MetaOptNet-SVM's" in text
