"""The README's results text is generated from the tables: pivots, sentences, the progress of a rerun, the links
(every one under the folder read), and the notebook paste between markers; each on small made-up tables."""
import importlib.util
import json
import math
from pathlib import Path

import pandas as pd
import pytest

spec = importlib.util.spec_from_file_location("readme_results", Path(__file__).parent.parent / "tools" / "readme_results.py")
rr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rr)


def _fewshot(**over):
    row = dict(dataset="omniglot-minimal", backbone="conv4", ways=5, shots=1, method="mtl", seeds=3, test_episodes=1000,
               acc=90.67, ci95_seeds=2.37, ci95_episodes=0.47, train_seconds=167.1, train_images=216000.0,
               run_setting="5w1s", epochs_after_cut=1, seeds_at_cap=0, status="complete", mtl_speedup=1.0)
    row.update(over)
    return row


def test_fewshot_pivot_counts_seeds_at_the_cap_and_shows_pending_cells():
    fs = pd.DataFrame([
        _fewshot(),
        _fewshot(method="maml", acc=92.16, ci95_seeds=3.49, train_seconds=988.8, train_images=513333.3, seeds_at_cap=2,
                 mtl_speedup=5.92),
        _fewshot(shots=5, run_setting="5w5s", seeds=1, acc=96.36, ci95_seeds=math.nan, ci95_episodes=0.25,
                 train_seconds=244.2, train_images=200000.0),
        _fewshot(shots=5, run_setting="5w5s", method="maml", seeds=3, acc=math.nan, ci95_seeds=math.nan,
                 ci95_episodes=math.nan, train_seconds=math.nan, train_images=math.nan, epochs_after_cut=math.nan,
                 seeds_at_cap=math.nan, status="pending: 1 of 3 seeds done", mtl_speedup=math.nan)])
    lines = rr.fewshot_pivot(fs).splitlines()
    assert lines[0] == "| method | 5-way 1-shot | 5-way 5-shot |"
    assert lines[2] == "| mtl | 90.7 ± 2.4 (0.22 M img, 167 s, 1.00x) | 96.4 ± 0.2 (0.20 M img, 244 s, 1.00x) |"
    assert lines[3] == "| maml | 92.2 ± 3.5 (0.51 M img, 989 s, 5.92x; 2 at the cap) | pending (1 of 3 seeds) |"


def test_fewshot_pivot_shows_the_priced_cost_ratio_where_the_table_has_one():
    # MAML's wall-clock was slowed by other work (9.00x); its priced ratio (updates x benchmark) is 3.90x
    fs = pd.DataFrame([_fewshot(priced_ratio=1.0), _fewshot(method="maml", mtl_speedup=9.0, priced_ratio=3.9),
                       _fewshot(method="protonet", mtl_speedup=0.8, priced_ratio=math.nan)])
    assert rr.priced(fs)
    lines = rr.fewshot_pivot(fs).splitlines()
    assert lines[3].endswith("167 s, 3.90x) |") and "9.00x" not in lines[3]
    assert lines[4].endswith("(0.22 M img, 167 s) |")   # no benchmark row: no ratio, and not the wall-clock's
    assert not rr.priced(fs.drop(columns=["priced_ratio"]))
    assert "9.00x" in rr.fewshot_pivot(fs.drop(columns=["priced_ratio"]))   # an older table: its wall-clock ratio


def test_the_stopping_sentence_names_the_epochs_after_the_cut_and_the_seeds_at_the_cap():
    fs = pd.DataFrame([
        _fewshot(), _fewshot(method="maml", seeds_at_cap=2),
        _fewshot(ways=20, method="anil", seeds_at_cap=3),            # a test of 5w1s bodies: not counted again
        _fewshot(shots=5, run_setting="5w5s", method="anil", epochs_after_cut=3),
        _fewshot(shots=5, run_setting="5w5s", method="r2d2", epochs_after_cut=math.nan, seeds_at_cap=math.nan,
                 status="pending: 0 of 3 seeds done")])
    assert rr.stopping_sentence(fs) == (
        "Stopping: in every run, the seed that stopped earliest after a learning-rate cut ran 1 to 3 epochs at the "
        "reduced rate (`epochs_after_cut`). Seeds stopped by the epoch cap instead (not called converged): maml 5-way "
        "1-shot (2 of 3 seeds).")
    assert rr.stopping_sentence(pd.DataFrame([_fewshot()])).endswith("ran 1 epoch at the reduced rate "
                                                                     "(`epochs_after_cut`). No seed reached the epoch cap.")
    assert rr.stopping_sentence(pd.DataFrame([_fewshot()]).drop(columns=["seeds_at_cap"])) == ""


def test_paired_pivot_shows_the_holm_verdicts_from_the_table_and_pending_pairs():
    paired = pd.DataFrame([
        dict(ways=5, shots=1, trained="5w1s", baseline="metaoptnet-svm", role="comparator", difference=-3.85,
             ci95=3.59, p_value=0.044, p_holm=0.132, verdict="not significant"),
        dict(ways=5, shots=5, trained="5w5s", baseline="metaoptnet-svm", role="comparator", difference=-1.77,
             ci95=math.nan, p_value=math.nan, p_holm=math.nan, verdict="one seed: no interval"),
        dict(ways=20, shots=1, trained="5w1s", baseline="metaoptnet-svm", role="comparator", difference=math.nan,
             ci95=math.nan, p_value=math.nan, p_holm=math.nan, verdict="pending: a run of the pair is not complete"),
        dict(ways=5, shots=1, trained="5w1s", baseline="protonet", role=math.nan, difference=-2.64, ci95=0.95,
             p_value=0.0087, p_holm=0.0348, verdict="MTL lower"),
        dict(ways=5, shots=1, trained="5w1s", baseline="fomaml", role=math.nan, difference=12.54, ci95=3.29,
             p_value=0.0006, p_holm=0.0004, verdict="MTL higher")])
    lines = rr.paired_pivot(paired).splitlines()
    assert lines[0] == "| MTL minus | 5-way 1-shot | 5-way 5-shot | 20-way 1-shot (bodies of 5w1s) |"
    # unadjusted p = 0.044 would have said 'lower': the verdict is Holm's
    assert lines[2] == "| metaoptnet-svm (comparator) | -3.9 ± 3.6 (n.s., Holm p 0.13) | -1.8 (1 seed) | pending |"
    assert lines[3] == "| protonet | -2.6 ± 0.9 (MTL lower, Holm p 0.03) | - | - |"
    assert lines[4] == "| fomaml | +12.5 ± 3.3 (MTL higher, Holm p < 0.001) | - | - |"
    assert rr.baselines_per_setting(paired) == "the one or three baselines"


def test_holm_is_over_the_baselines_of_each_setting_in_words():
    rows = [dict(ways=5, shots=1, trained="5w1s", baseline=b) for b in "abcdefg"]
    assert rr.baselines_per_setting(pd.DataFrame(rows)) == "the seven baselines"
    rows += [dict(ways=5, shots=5, trained="5w5s", baseline=b) for b in "abcdef"]
    assert rr.baselines_per_setting(pd.DataFrame(rows)) == "the six or seven baselines"


def _gaps(*ours):
    paper = [dict(source="paper", benchmark="mini-imagenet", setting="5-way 1-shot", seeds=math.nan, gap=-2.8,
                  ci95=math.nan, error_ratio=1.09, error_ratio_lo=math.nan, error_ratio_hi=math.nan),
             dict(source="paper", benchmark="fc100", setting="5-way 5-shot", seeds=math.nan, gap=2.2, ci95=math.nan,
                  error_ratio=0.88, error_ratio_lo=math.nan, error_ratio_hi=math.nan)]
    return pd.DataFrame(paper + [dict(source="ours", benchmark="omniglot-minimal", **o) for o in ours])


def test_the_paper_gap_sentence_gives_our_ratio_with_its_interval_and_claims_only_what_it_shows():
    overlap = dict(setting="5-way 1-shot", seeds=3, gap=-3.85, ci95=3.59, error_ratio=1.71, error_ratio_lo=1.02,
                   error_ratio_hi=2.85)
    one_seed = dict(setting="5-way 5-shot", seeds=1, gap=-1.77, ci95=math.nan, error_ratio=1.94,
                    error_ratio_lo=math.nan, error_ratio_hi=math.nan)
    text = rr.paper_gap_sentence(_gaps(overlap, one_seed))
    assert "ranges from -2.8 to +2.2 points" in text and "from 0.88 to 1.09 times" in text
    assert ("5-way 1-shot -3.9 ± 3.6 points (3 seeds), an error rate 1.71 [1.02, 2.85] times MetaOptNet-SVM's: above "
            "the paper's ratios, but the interval overlaps them, so being further off than the paper is not shown") in text
    assert ("5-way 5-shot -1.8 points (1 seed), an error rate 1.94 times MetaOptNet-SVM's: above the paper's ratios, "
            "but with no interval (one seed)") in text
    assert "further behind MetaOptNet than in the paper" not in text
    shown = dict(overlap, error_ratio_lo=1.20)
    assert ("1.71 [1.20, 2.85] times MetaOptNet-SVM's: the whole interval above the paper's ratios: MTL is further "
            "behind MetaOptNet than in the paper") in rr.paper_gap_sentence(_gaps(shown))
    inside = dict(overlap, error_ratio=1.0, error_ratio_lo=0.8, error_ratio_hi=1.3)
    assert rr.paper_gap_sentence(_gaps(inside)).endswith("times MetaOptNet-SVM's: within the paper's ratios.")
    pending = dict(overlap, gap=math.nan)
    assert "Ours" not in rr.paper_gap_sentence(_gaps(pending))


def test_cost_sentences_name_who_reached_the_target_and_who_did_not():
    cost = pd.DataFrame([
        dict(ways=5, shots=1, method="mtl", target_val_acc=94.8, target_from="metaoptnet-svm",
             images_to_target_minus_1=math.inf, seconds_to_target_minus_1=math.inf),
        dict(ways=5, shots=1, method="r2d2", target_val_acc=94.8, target_from="metaoptnet-svm",
             images_to_target_minus_1="never", seconds_to_target_minus_1="never"),
        dict(ways=5, shots=1, method="metaoptnet-svm", target_val_acc=94.8, target_from="metaoptnet-svm",
             images_to_target_minus_1=1.72e5, seconds_to_target_minus_1=146.0)])
    text = rr.cost_sentences(cost)
    assert text == ("- 5-way 1-shot, to 93.8 % validation (metaoptnet-svm's best minus 1 point, every seed): reached by "
                    "metaoptnet-svm (1.72e+05 images, 146 s); not by every seed of mtl, r2d2.")


def test_matched_summary_gives_the_log_scale_interval_and_none_for_one_seed():
    eff = pd.DataFrame([
        dict(ways=5, shots=1, baseline="maml", matched_val_acc=88.31, seeds=3, mtl_images=68000.0,
             baseline_images=346666.7, speedup_images=5.09, speedup_images_lo=2.34, speedup_images_hi=11.08,
             mtl_seconds=53.7, baseline_seconds=667.2, speedup=12.75, speedup_lo=4.36, speedup_hi=37.32),
        dict(ways=5, shots=5, baseline="maml", matched_val_acc=96.47, seeds=1, mtl_images=120000.0,
             baseline_images=1020000.0, speedup_images=8.5, speedup_images_lo=math.nan, speedup_images_hi=math.nan,
             mtl_seconds=147.2, baseline_seconds=2425.8, speedup=16.48, speedup_lo=math.nan, speedup_hi=math.nan)])
    lines = rr.matched_summary(eff).splitlines()
    assert lines[2] == ("| 5-way 1-shot | maml | 3 | 88.3 | 6.8e+04 | 3.47e+05 | 5.09 [2.34, 11.08] | 54 | 667 | "
                        "12.75 [4.36, 37.32] |")
    assert lines[3] == "| 5-way 5-shot | maml | 1 | 96.5 | 1.2e+05 | 1.02e+06 | 8.50 | 147 | 2426 | 16.48 |"


def test_the_matched_summary_and_the_cost_sentence_price_time_at_the_benchmark_where_they_can():
    # the wall-clock (MTL slowed by other work: speedup 0.32) gives way to updates priced at the benchmark (0.74)
    eff = pd.DataFrame([dict(ways=5, shots=1, baseline="metaoptnet-svm", matched_val_acc=90.4, seeds=5,
                             mtl_images=1.44e5, baseline_images=9.12e4, speedup_images=0.64, speedup_images_lo=0.49,
                             speedup_images_hi=0.83, mtl_seconds=431.0, baseline_seconds=146.0, speedup=0.32,
                             speedup_lo=0.15, speedup_hi=0.69, mtl_updates=1200.0, baseline_updates=760.0,
                             speedup_bench=0.74, speedup_bench_lo=0.55, speedup_bench_hi=1.0)])
    lines = rr.matched_summary(eff).splitlines()
    assert lines[0].endswith("| MTL updates | baseline updates | speedup (update time, priced) |")
    assert lines[2].endswith("| 0.64 [0.49, 0.83] | 1200 | 760 | 0.74 [0.55, 1.00] |") and "0.32" not in lines[2]
    assert "0.32 [0.15, 0.69]" in rr.matched_summary(eff.assign(speedup_bench=math.nan))   # no benchmark: wall-clock
    unpriced = pd.concat([eff, eff.assign(baseline="own-method", speedup_bench=math.nan)], ignore_index=True)
    assert rr.matched_summary(unpriced).splitlines()[3].endswith("| 1200 | 760 | - |")   # a row the benchmark lacks
    cost = pd.DataFrame([dict(ways=5, shots=1, method="metaoptnet-svm", target_val_acc=94.8, target_from="r2d2",
                              images_to_target_minus_1=1.78e5, seconds_to_target_minus_1=235.0,
                              bench_seconds_to_target_minus_1=308.1)])
    assert "(1.78e+05 images, 308 s priced)" in rr.cost_sentences(cost)
    assert "(1.78e+05 images, 235 s)" in rr.cost_sentences(cost.assign(bench_seconds_to_target_minus_1="-"))
    two = pd.concat([cost, cost.assign(method="own-method", bench_seconds_to_target_minus_1=math.nan)])
    assert "own-method (1.78e+05 images, not priced)" in rr.cost_sentences(two)


def test_the_speedup_curve_sentence_picks_thresholds_every_seed_reached():
    def row(t, reached, mtl, base, s=math.nan, lo=math.nan, hi=math.nan):
        return dict(ways=5, shots=1, baseline="metaoptnet-svm", threshold=t, seeds=3, reached=reached,
                    mtl_reached=mtl, baseline_reached=base, speedup_images=s, speedup_images_lo=lo,
                    speedup_images_hi=hi, speedup_seconds=s, speedup_seconds_lo=math.nan, speedup_seconds_hi=math.nan)
    curve = pd.DataFrame([row(70, 3, 3, 3, 1.26, 0.47, 3.40), row(80, 3, 3, 3, 1.10), row(85, 2, 3, 2, 1.5),
                          row(90, 3, 3, 3, 0.67, 0.40, 1.11), row(92, 0, 0, 3), row(94, 0, 0, 3), row(95, 0, 0, 1),
                          dict(row(70, 3, 3, 3, 9.0), baseline="protonet")])   # not asked for
    text = rr.speedup_curve_sentences(curve, baselines=("metaoptnet-svm", "maml"))
    assert text == ("- 5-way 1-shot, against metaoptnet-svm (3 seeds): 70 %: 1.26 [0.47, 3.40] in images, 1.26 in "
                    "seconds; 80 %: 1.10 in images, 1.10 in seconds; 90 %: 0.67 [0.40, 1.11] in images, 0.67 in "
                    "seconds; every metaoptnet-svm seed reaches at least 94 %, not every MTL seed gets past 90 %.")


TUNING_MD = """# Tuning on validation

Profile `x`: every method gets the same number of trials.

| setting / method | trial | val acc % | updates | images | train s | stopped |
| --- | --- | --- | --- | --- | --- | --- |
| omniglot-minimal-5w1s/mtl | lr=0.003 | 87.77 | 800 | 96000 | 295.4 | reached 8 epochs |
| omniglot-minimal-5w1s/mtl | **lr=0.01** | **88.87** | 800 | 96000 | 107.1 | reached 8 epochs |
| omniglot-minimal-5w1s/r2d2 | lr=0.03 | 93.09 | 800 | 96000 | 86.1 | reached 8 epochs |
| omniglot-minimal-5w1s/r2d2 | **lr=0.1** | **93.51** | 800 | 96000 | 80.8 | reached 8 epochs |

## Selected values on the edge of their grid

- omniglot-minimal-5w1s/mtl: lr = 0.01 is the highest value tried; the next trial extends the grid to lr = 0.0333
- omniglot-minimal-5w1s/r2d2: lr = 0.1 is the highest value tried; the next trial extends the grid to lr = 0.333
"""


def test_the_tuning_sentence_counts_trials_and_names_the_edges():
    assert rr.tuning_sentence(TUNING_MD) == (
        "Tuning: 4 trials on omniglot-minimal-5w1s validation (2 per method), ranked by validation accuracy only. "
        "2 selected values sit on the edge of the grid searched, so the best value may lie beyond it: mtl's lr = 0.01 "
        "(highest tried), r2d2's lr = 0.1 (highest tried).")
    no_edges = TUNING_MD.split("\n## ")[0]
    assert rr.tuning_sentence(no_edges).endswith("ranked by validation accuracy only.")


PROGRESS_MD = """# Progress of profile `cpu`

3 of 90 few-shot runs complete: 3 of 75 tuning trials and 0 of 15 final runs, whose seeds are 0 of 53 done. Counted from the run records in this folder by `mtl-meta reproduce`.

| setting | method | tuning trials | tuning | final seeds |
| --- | --- | --- | --- | --- |
| omniglot-minimal-5w1s | mtl | 3 of 5 | in progress | 0 of 5 |
"""


def test_progress_text_copies_the_totals_and_the_table_and_names_the_folder(tmp_path):
    d = tmp_path / "figs"
    d.mkdir()
    assert "has not written" in rr.progress_text(str(d))
    (d / "progress.md").write_text(PROGRESS_MD)
    p = d.as_posix()
    text = rr.progress_text(p)
    assert text.startswith(f"Progress of profile `cpu`, from [`{p}/progress.md`]({p}/progress.md). 3 of 90 few-shot "
                           "runs complete: 3 of 75 tuning trials")
    assert f"Counted from the run records in `{p}/` by `mtl-meta reproduce`." in text
    assert text.endswith("| omniglot-minimal-5w1s | mtl | 3 of 5 | in progress | 0 of 5 |")


def test_results_links_point_into_the_folder_read_and_theory_into_its_own(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    frozen, theory = Path("figs/frozen"), Path("figs")
    frozen.mkdir(parents=True)
    pd.DataFrame([_fewshot()]).to_csv(frozen / "fewshot.csv", index=False)
    (frozen / "curves-x-5w1s.png").write_bytes(b"")
    (frozen / "speedup-x-5w1s.png").write_bytes(b"")
    (frozen / "tuning.md").write_text(TUNING_MD)
    (frozen / "reproduction.md").write_text("# Reproduction: profile `frozen-1`\n")
    (theory / "sinusoid.csv").write_text("method\nmtl\n")
    (theory / "sinusoid.md").write_text("# Sinusoid\n\nabout\n\n| method |\n| --- |\n| mtl |\n")
    text = rr.results_text("figs/frozen", theory="figs")
    links = [l.split(")")[0] for l in text.split("](")[1:]]
    assert set(links) == {"figs/frozen/reproduction.md", "figs/frozen/fewshot.md", "figs/frozen/curves-x-5w1s.png",
                          "figs/frozen/speedup-x-5w1s.png", "figs/frozen/tuning.md", "figs/sinusoid.md"}
    assert "profile `frozen-1`" in text and "| mtl | 90.7 ± 2.4 (0.22 M img, 167 s, 1.00x) |" in text
    assert "bootstrap" not in text


def test_a_fewshot_only_section_leaves_the_theory_out_and_has_its_own_markers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("figs").mkdir()
    pd.DataFrame([_fewshot()]).to_csv("figs/fewshot.csv", index=False)
    Path("figs/sinusoid.csv").write_text("method\nmtl\n")
    Path("figs/sinusoid.md").write_text("# Sinusoid\n\nabout\n\n| method |\n| --- |\n| mtl |\n")
    assert "Sinusoid" in rr.results_text("figs", theory="figs")
    assert "Sinusoid" not in rr.results_text("figs", theory=None) and "| mtl | 90.7" in rr.results_text("figs", None)
    key = "readme_results.py figs --fewshot-only"
    nb = {"cells": [{"cell_type": "markdown", "id": "c1", "metadata": {},
                     "source": [f"<!-- BEGIN {key} -->\n", "old\n", f"<!-- END {key} -->\n"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    Path("index.ipynb").write_text(json.dumps(nb))
    rr.cli(["figs", "--fewshot-only", "--update", "index.ipynb"])
    text = "".join(json.loads(Path("index.ipynb").read_text())["cells"][0]["source"])
    assert "| mtl | 90.7" in text and "old" not in text and "Sinusoid" not in text


def test_update_notebook_replaces_only_the_text_between_its_markers(tmp_path):
    key = "readme_results.py --progress figures"
    nb = {"cells": [{"cell_type": "markdown", "id": "c1", "metadata": {},
                     "source": ["Before.\n", "\n", f"<!-- BEGIN {key} -->\n", "old\n", f"<!-- END {key} -->\n", "After."]},
                    {"cell_type": "markdown", "id": "c2", "metadata": {}, "source": ["Other ü."]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "index.ipynb"
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    rr.update_notebook(path, key, "new line 1\n\nnew line 2\n")
    raw = path.read_text(encoding="utf-8")
    out = json.loads(raw)
    assert raw.endswith("}\n") and "Other ü." in raw          # as nbdev writes it: indent 1, unicode kept
    assert [c["id"] for c in out["cells"]] == ["c1", "c2"] and out["cells"][1] == nb["cells"][1]
    assert "".join(out["cells"][0]["source"]) == (f"Before.\n\n<!-- BEGIN {key} -->\n\nnew line 1\n\nnew line 2\n\n"
                                                  f"<!-- END {key} -->\nAfter.")
    with pytest.raises(SystemExit, match="no markdown cell"):
        rr.update_notebook(path, "readme_results.py other", "x")
