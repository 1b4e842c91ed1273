"""Adding a method is one class plus one registry line, in the user's own module: the CLI, the profiles and
the tables see it without any other file changing (issue: 'the registry is the only list')."""
import json
import os
import textwrap

import pytest

TOY = textwrap.dedent('''
    import torch
    import torch.nn.functional as F
    from mtl_meta.gbml import ALGORITHMS, MetaLearner

    class CosineNearestMean(MetaLearner):
        "Query logits: scaled cosine similarity to the class means of the support features."
        name = "cosine-mean"
        inner_loop = "last layer"
        regulariser = "none"
        citation = "a test's toy method"

        def __init__(self, body, ways=5, scale=10.0):
            super().__init__(body, ways)
            self.scale = torch.nn.Parameter(torch.tensor(float(scale)))

        def query_logits(self, episode):
            zs, zq = F.normalize(self.body(episode.support), dim=-1), F.normalize(self.body(episode.query), dim=-1)
            onehot = F.one_hot(episode.support_labels, episode.ways).to(zs.dtype)
            means = F.normalize(onehot.T @ zs, dim=-1)
            return self.scale * zq @ means.T

    ALGORITHMS["cosine-mean"] = CosineNearestMean
''')


@pytest.fixture
def plugin_env(tmp_path):
    (tmp_path / "toy_method.py").write_text(TOY)
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH", "")]))
    return {"MTL_META_PLUGINS": "toy_method", "PYTHONPATH": path}


def test_a_plugin_method_trains_through_the_cli_and_a_profile(run_cli, omniglot_root, tmp_path, plugin_env):
    assert "cosine-mean" in run_cli("train", "--help", env=plugin_env).stdout
    out = tmp_path / "run"
    r = run_cli("train", "--method", "cosine-mean", "--ways", "5", "--shots", "1", "--queries", "2", "--max-steps", "3",
                "--episodes-per-epoch", "3", "--val-episodes", "4", "--no-progress", "--out", str(out),
                "--data-root", str(omniglot_root), env=plugin_env)
    assert r.returncode == 0, r.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metadata"]["method"] == "cosine-mean" and summary["steps"] == 3 and summary["train_images"] == 3 * 5 * 3
    ev = run_cli("evaluate", "--checkpoint", str(out / "checkpoint.pt"), "--episodes", "5", "--json", "--no-progress",
                 "--data-root", str(omniglot_root), env=plugin_env)
    assert ev.returncode == 0 and 0 <= json.loads(ev.stdout)["mean"] <= 1, ev.stderr
    # the comparison profile lists its tuning trials and final runs, and runs one of them
    listing = run_cli("reproduce", "--profile", "cpu", "--list", env=plugin_env).stdout
    assert "tune-omniglot-minimal-5w1s-cosine-mean-t0" in listing and "omniglot-minimal-5w5s-cosine-mean\t" in listing
    rep = run_cli("reproduce", "--profile", "cpu", "--only", "tune-omniglot-minimal-5w1s-cosine-mean-t0", "--out",
                  str(tmp_path / "rep"), "--no-progress", "--data-root", str(omniglot_root),
                  "--set", "epochs=1", "episodes_per_epoch=2", "val_episodes=2", env=plugin_env, timeout=900)
    assert rep.returncode == 0, rep.stdout + rep.stderr
    res = json.loads((tmp_path / "rep/runs/tune-omniglot-minimal-5w1s-cosine-mean-t0/results.json").read_text())
    assert res["method"] == "cosine-mean" and res["experiment"] == "tuning" and res["trial"] == {"lr": 1e-3}
    assert "cosine-mean" in (tmp_path / "rep" / "tuning.md").read_text()


def test_a_missing_plugin_is_one_line(run_cli):
    r = run_cli("train", "--help", env={"MTL_META_PLUGINS": "no_such_module_xyz"})
    assert r.returncode != 0 and "cannot import the plugin module 'no_such_module_xyz'" in r.stderr
    assert "Traceback" not in r.stderr
