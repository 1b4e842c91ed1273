"""Runs that cannot be mixed up (issue 16) and records you can trust when files are damaged or processes die
(issue 26): each case an adversarial user found, as a test.

Every bad input must end in exit code 2 (CLI) or an `MtlMetaError` (library) with one line that says
what was wrong and what to do; an output folder never holds a checkpoint and a summary of different
runs. Library calls are used where the CLI adds nothing, to keep this file fast."""
import json
import os
import pickle
import signal
import subprocess
import sys
import zipfile

import pytest
import torch

from mtl_meta import api
from mtl_meta import core
from mtl_meta.core import MtlMetaError
from mtl_meta.data import load_split
from mtl_meta.train import TrainConfig, load_checkpoint, save_checkpoint

TINY = dict(max_steps=2, episodes_per_epoch=2, val_episodes=2, ways=5, shots=1, queries=1)
TINY_CLI = ["--max-steps", "2", "--episodes-per-epoch", "2", "--val-episodes", "2", "--shots", "1",
            "--queries", "1", "--no-progress"]


@pytest.fixture(autouse=True)
def _own_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _one_line(text_or_exc, *needles):
    msg = str(text_or_exc.value) if hasattr(text_or_exc, "value") else text_or_exc.strip()
    assert len(msg.splitlines()) == 1 and "Traceback" not in msg, msg
    for n in needles:
        assert n in msg, (n, msg)
    return msg


def _cli_fails(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    return _one_line(r.stderr, "mtl-meta: error:", *needles)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    "One tiny protonet run shared by the evaluation cases."
    from mtl_meta.core import data_root
    root = data_root()
    if not (root / "omniglot" / "images_background_small1.zip").exists():
        pytest.skip("Omniglot minimal archives not found; set MTL_META_DATA")
    out = tmp_path_factory.mktemp("trained")
    api.train("protonet", out_dir=out, data_root=root, **TINY)
    return out


# -- 1. resume continues only its own run --------------------------------------------------------------

def test_resume_with_another_method_is_refused_and_names_the_fields(run_cli, omniglot_root, tmp_path):
    out = tmp_path / "run"
    r = run_cli("train", "--method", "maml", *TINY_CLI, "--out", str(out), "--data-root", str(omniglot_root))
    assert r.returncode == 0, r.stderr
    before = (out / "summary.json").read_bytes(), (out / "checkpoint.pt").read_bytes()
    r = run_cli("train", "--method", "fomaml", *TINY_CLI, "--max-steps", "4", "--seed", "3", "--out", str(out),
                "--data-root", str(omniglot_root))
    _cli_fails(r, "cannot resume from", "method: 'maml' there, 'fomaml' now", "seed: 0 there, 3 now", "new --out")
    assert ((out / "summary.json").read_bytes(), (out / "checkpoint.pt").read_bytes()) == before


@pytest.mark.parametrize("first, second", [
    (dict(method="protonet"), dict(method="metaoptnet-rr")),   # other weight layout: was a RuntimeError
    (dict(method="mtl"), dict(method="protonet")),             # other weight layout: was a RuntimeError
    (dict(method="mtl"), dict(method="mtl", augment=True)),
    (dict(method="mtl"), dict(method="mtl", backbone_options={"hidden": 32})),
])
def test_resume_identity_covers_method_backbone_options_and_augmentation(omniglot_root, tmp_path, first, second):
    api.train(out_dir=tmp_path, data_root=omniglot_root, **first, **TINY)
    summary = (tmp_path / "summary.json").read_text()
    with pytest.raises(MtlMetaError) as e:
        api.train(out_dir=tmp_path, data_root=omniglot_root, **second, **{**TINY, "max_steps": 3})
    _one_line(e, "belongs to another run", "there,", "now", "pass a new --out")
    assert (tmp_path / "summary.json").read_text() == summary
    assert load_checkpoint(tmp_path)["metadata"]["method"] == first["method"]


def test_same_run_with_a_larger_budget_still_resumes(omniglot_root, tmp_path):
    api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **TINY)
    s = api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **{**TINY, "max_steps": 3})
    assert s["steps"] == 3 and json.loads((tmp_path / "summary.json").read_text())["steps"] == 3


def test_checkpoint_with_the_right_tag_but_foreign_weights_is_one_line(trained, omniglot_root, tmp_path):
    ckpt = load_checkpoint(trained)
    for name, algorithm in [("shape", {k: v[..., :1].clone() if v.dim() else v for k, v in ckpt["algorithm"].items()}),
                            ("keys", {"not." + k: v for k, v in ckpt["algorithm"].items()})]:
        save_checkpoint(tmp_path / name / "checkpoint.pt", {**{k: v for k, v in ckpt.items() if k != "format"},
                                                            "algorithm": algorithm})
        with pytest.raises(MtlMetaError) as e:
            api.evaluate(tmp_path / name / "checkpoint.pt", episodes=2, data_root=omniglot_root)
        _one_line(e, "holds weights that do not fit", "retrain or pass another checkpoint")
        with pytest.raises(MtlMetaError) as e:   # and resuming from it
            api.train("protonet", out_dir=tmp_path / name, data_root=omniglot_root, **{**TINY, "max_steps": 3})
        _one_line(e, "saved state does not fit this run", "pass a new --out")


# -- 2. one writer per output folder ---------------------------------------------------------------------

def test_second_writer_is_refused_and_touches_nothing(run_cli, omniglot_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with core.OutputLock(out):   # this test process is the first writer
        r = run_cli("train", "--method", "protonet", *TINY_CLI, "--out", str(out), "--data-root", str(omniglot_root))
        _cli_fails(r, f"output folder {out} is in use by process {os.getpid()}", "pass another --out")
        assert sorted(p.name for p in out.iterdir()) == [core.LOCK_NAME]
        from mtl_meta.reproduce import Watch, reproduce
        with pytest.raises(MtlMetaError) as e:
            reproduce("smoke", out=out, only=["environment"], watch=Watch(progress=False))
        _one_line(e, "is in use by process", "pass another --out")
        assert sorted(p.name for p in out.iterdir()) == [core.LOCK_NAME]
    api.train("protonet", out_dir=out, data_root=omniglot_root, **TINY)   # free again once the owner is gone
    assert not (out / core.LOCK_NAME).exists()


def test_lock_of_a_killed_writer_is_taken_over(omniglot_root, tmp_path):
    code = ("import sys, time; from mtl_meta.core import OutputLock\n"
            "with OutputLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(MtlMetaError, match=f"in use by process {p.pid}"):
            api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **TINY)
    finally:
        p.send_signal(signal.SIGKILL); p.wait()
    assert json.loads((tmp_path / core.LOCK_NAME).read_text())["pid"] == p.pid   # left behind by kill -9
    api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **TINY)
    assert (tmp_path / "checkpoint.pt").exists() and not (tmp_path / core.LOCK_NAME).exists()


# -- 3. downloaded Omniglot is verified --------------------------------------------------------------------

def _official(omniglot_root):
    return lambda url: (omniglot_root / "omniglot" / url.rsplit("/", 1)[1]).read_bytes()


def _flip_inside_member(path):
    "Flip one byte in the middle of the compressed data of the zip's largest PNG member."
    with zipfile.ZipFile(path) as zf:
        info = max((i for i in zf.infolist() if i.filename.endswith(".png")), key=lambda i: i.compress_size)
    raw = bytearray(path.read_bytes())
    name_len, extra_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little"), \
        int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    raw[start + info.compress_size // 2] ^= 0xFF
    path.write_bytes(bytes(raw))


def test_download_records_checksums_and_every_load_verifies_them(omniglot_root, tmp_path):
    from mtl_meta.data import download
    download("omniglot-minimal", tmp_path, fetch=_official(omniglot_root))
    sums = (tmp_path / "omniglot" / "SHA256SUMS").read_text().split()
    assert sums == (omniglot_root / "omniglot" / "SHA256SUMS").read_text().split()
    assert load_split("omniglot-minimal", "val", data_root=tmp_path).n_classes > 0   # decoded and cached
    _flip_inside_member(tmp_path / "omniglot" / "images_background_small2.zip")
    with pytest.raises(MtlMetaError) as e:
        load_split("omniglot-minimal", "val", data_root=tmp_path)
    _one_line(e, "images_background_small2.zip does not match its SHA256", "download it again")


def test_corrupt_zip_member_without_checksums_is_one_line(run_cli, omniglot_root, tmp_path):
    folder = tmp_path / "omniglot"; folder.mkdir()
    for n in ("images_background_small1.zip", "images_background_small2.zip"):
        (folder / n).write_bytes((omniglot_root / "omniglot" / n).read_bytes())
    _flip_inside_member(folder / "images_background_small1.zip")
    r = run_cli("data", "info", "--dataset", "omniglot-minimal", "--data-root", str(tmp_path),
                env={"MTL_META_CACHE": str(tmp_path / "cache")})
    _cli_fails(r, "images_background_small1.zip is corrupt", "download the archive again")


def test_download_with_a_wrong_checksum_writes_nothing(tmp_path):
    from mtl_meta.data import download
    with pytest.raises(MtlMetaError) as e:
        download("omniglot-minimal", tmp_path / "root", fetch=lambda url: b"PK\x03\x04 not the archive")
    _one_line(e, "arrived with a wrong SHA256", "try again")
    assert not (tmp_path / "root").exists()


# -- 4. the output folder is checked before any work ---------------------------------------------------------

def test_output_folder_that_is_a_file_fails_before_training(run_cli, tmp_path):
    f = tmp_path / "some_file"; f.write_text("keep me")
    # the data root does not exist either: the output folder must be reported first, before any data is read
    r = run_cli("train", *TINY_CLI, "--out", str(f), "--data-root", str(tmp_path / "no-data"))
    _cli_fails(r, f"output folder {f} is a file, not a folder", "pass another --out")
    with pytest.raises(MtlMetaError) as e:
        api.train("protonet", out_dir=f / "sub", data_root=tmp_path / "no-data", **TINY)
    _one_line(e, "cannot write into the output folder", "pass another --out")
    assert f.read_text() == "keep me"


# -- 5. one-line errors instead of tracebacks ------------------------------------------------------------------

@pytest.mark.parametrize("lr", ["nan", "inf", "-1"])
def test_learning_rate_must_be_finite_and_positive(lr):
    with pytest.raises(MtlMetaError) as e:
        TrainConfig(lr=float(lr))
    _one_line(e, "lr must be")


def test_bad_train_arguments_fail_before_the_folder_is_made(run_cli, omniglot_root, tmp_path):
    r = run_cli("train", *TINY_CLI, "--lr", "nan", "--out", str(tmp_path / "a"), "--data-root", str(omniglot_root))
    _cli_fails(r, "lr must be a finite positive number, got nan")
    with pytest.raises(MtlMetaError) as e:
        api.train("protonet", out_dir=tmp_path / "b", data_root=omniglot_root, device="banana", **TINY)
    _one_line(e, "unknown device 'banana'")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


@pytest.mark.parametrize("args, needle", [(["--queries", "0"], "--queries 1 or more"),
                                          (["--ways", "1"], "--ways 2 or more")])
def test_evaluate_episode_shapes_that_cannot_be_scored(run_cli, trained, omniglot_root, args, needle):
    r = run_cli("evaluate", "--checkpoint", str(trained / "checkpoint.pt"), "--episodes", "2", *args,
                "--no-progress", "--data-root", str(omniglot_root))
    _cli_fails(r, needle)


def test_mini_imagenet_pickles_with_bad_labels_are_one_line(tmp_path):
    import numpy as np
    folder = tmp_path / "mini-imagenet"; folder.mkdir()
    x = np.zeros((4, 84, 84, 3), np.uint8)
    cases = [("miniImageNet_category_split_test.pkl", {"data": x, "labels": ["a", "a", "b", "b"]}, "integer class ids"),
             ("mini-imagenet-cache-test.pkl", {"image_data": x, "class_dict": {"n1": [0, 1], "n2": [2, 99]}},
              "image indices between 0 and 3")]
    for name, content, needle in cases:
        for f in folder.iterdir(): f.unlink()
        (folder / name).write_bytes(pickle.dumps(content))
        with pytest.raises(MtlMetaError) as e:
            load_split("mini-imagenet", "test", data_root=tmp_path)
        _one_line(e, needle)


# -- 6. temporary files of a killed writer are removed -------------------------------------------------------------

def test_stale_temp_files_are_removed_when_the_folder_is_next_opened(omniglot_root, tmp_path):
    stale = [tmp_path / ".checkpoint.pt.mtl-meta-k1ll3d00.tmp", tmp_path / ".summary.json.mtl-meta-abc12345.tmp"]
    for p in stale:
        p.write_bytes(b"half a file")
    api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **TINY)
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "history.csv", "summary.json"]


# -- 7. smaller ones ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_on_a_machine_without_cuda_is_not_called_corrupt(trained, omniglot_root):
    with pytest.raises(MtlMetaError) as e:
        api.evaluate(trained / "checkpoint.pt", episodes=2, device="cuda", data_root=omniglot_root)
    msg = _one_line(e, "no usable CUDA GPU", "--device cpu")
    assert "corrupt" not in msg


def test_a_run_folder_works_as_checkpoint(trained, omniglot_root):
    res = api.evaluate(trained, episodes=2, adapt="centroid", data_root=omniglot_root)
    assert 0 <= res.mean <= 1


def test_evaluate_help_shows_a_plain_percent(run_cli):
    r = run_cli("evaluate", "--help")
    assert r.returncode == 0 and "95% confidence" in r.stdout and "%%" not in r.stdout


def test_outputs_are_readable_as_new_files_are(trained):
    umask = os.umask(0); os.umask(umask)
    for name in ("checkpoint.pt", "summary.json"):
        assert (trained / name).stat().st_mode & 0o777 == 0o666 & ~umask


def test_failed_download_does_not_create_the_data_root(tmp_path):
    from mtl_meta.data import download
    def offline(url): raise OSError("network unreachable")
    with pytest.raises(MtlMetaError) as e:
        download("omniglot-minimal", tmp_path / "new-root", fetch=offline)
    _one_line(e, "cannot download")
    assert not (tmp_path / "new-root").exists()


def test_restricted_unpickler_refuses_allocation_by_size(tmp_path):
    from mtl_meta.data import safe_pickle_load
    bomb = b"\x80\x02cbuiltins\nbytearray\nJ\x00\xe1\xf5\x05\x85R."   # bytearray(10**8) in 32 bytes
    (tmp_path / "bomb.pkl").write_bytes(bomb)
    with pytest.raises(MtlMetaError) as e:
        safe_pickle_load(tmp_path / "bomb.pkl")
    _one_line(e, "refused bytearray(int)")


# -- what already held: kept as regression tests ---------------------------------------------------------------

def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path, run_cli):
    marker = tmp_path / "pwned"
    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))
    torch.save({"format": "mtl-meta-checkpoint-v1", "metadata": Evil()}, tmp_path / "checkpoint.pt")
    r = run_cli("evaluate", "--checkpoint", str(tmp_path / "checkpoint.pt"), "--no-progress")
    _cli_fails(r, "is corrupt or unsafe to load")
    assert not marker.exists()



# ======================================================================================================
# Issue 26: records you can trust when files are damaged or processes die
# ======================================================================================================

FAST = ["--set", "epochs=1", "episodes_per_epoch=2", "val_episodes=2", "test_episodes=2", "test_queries=1"]
TRIAL, FINAL = "tune-omniglot-minimal-5w1s-protonet-t0", "omniglot-minimal-5w1s-protonet"


def _reproduce(run_cli, out, root, *only, extra=(), env=None):
    return run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--no-progress", "--data-root", str(root),
                   "--only", *only, *FAST, *extra, env=env)


@pytest.fixture(scope="module")
def smoke_out(tmp_path_factory):
    """A tuning trial and its final few-shot run of the smoke profile, trained for two updates (shared, copied per
    test), once for all workers (`cli_once`)."""
    from conftest import cli_once
    from mtl_meta.core import data_root
    root = data_root()
    if not (root / "omniglot" / "images_background_small1.zip").exists():
        pytest.skip("Omniglot minimal archives not found; set MTL_META_DATA")
    r, out = cli_once(tmp_path_factory, "reliability-smoke", "reproduce", "--profile", "smoke", "--out", "{out}",
                      "--no-progress", "--data-root", str(root), "--only", TRIAL, FINAL, *FAST)
    assert r.returncode == 0, r.stderr
    return out


def _copy(src, dst):
    import shutil
    shutil.copytree(src, dst, symlinks=True)
    return dst


def _table_rows(out):
    import pandas as pd
    return sorted(zip(*pd.read_csv(out / "fewshot.csv")[["method", "ways"]].values.T))


# -- 1. a damaged results.json is re-run, never dropped from a table ----------------------------------------

def _damage(path, damage):
    good = json.loads(path.read_text())
    path.write_bytes({"truncated": path.read_bytes()[:200], "binary": b"\xff\xfe\x00\x81 not json",
                      "incomplete": json.dumps({k: v for k, v in good.items() if k != "test_acc"}).encode(),
                      "a list": json.dumps([good]).encode(),
                      "another method": json.dumps({**good, "method": "maml"}).encode(),
                      "a non-finite number": json.dumps({**good, "train_seconds": float("nan")}).encode(),
                      "a negative count": json.dumps({**good, "shots": -3}).encode(),
                      "a seed's accuracy above 1": json.dumps(
                          {**good, "per_seed": [{**good["per_seed"][0], "tests": [
                              {**good["per_seed"][0]["tests"][0], "test_acc": 1.5}]}, *good["per_seed"][1:]]}
                      ).encode()}[damage])
    return good


@pytest.mark.parametrize("damage", ["truncated", "binary", "incomplete", "a list", "another method",
                                    "a non-finite number", "a negative count", "a seed's accuracy above 1"])
def test_damaged_results_json_makes_a_finished_run_incomplete(smoke_out, tmp_path, damage):
    from mtl_meta.profiles import get_profile
    from mtl_meta.reproduce import resolve_tuned, select_trials
    from mtl_meta.runs import is_complete
    out = _copy(smoke_out, tmp_path / "S")
    run = resolve_tuned(get_profile("smoke", [FINAL])[0], json.loads((out / "tuning.json").read_text())["selected"])
    from mtl_meta.cli import _parse_overrides
    from mtl_meta.reproduce import with_overrides
    run = with_overrides(run, _parse_overrides(FAST[1:]))
    assert is_complete(out, run, "smoke")
    _damage(out / "runs" / FINAL / "results.json", damage)
    problems = {}
    assert not is_complete(out, run, "smoke", problems)
    _one_line(problems[FINAL], str(out / "runs" / FINAL / "results.json"))


def test_damaged_results_json_is_run_again_not_dropped(run_cli, smoke_out, omniglot_root, tmp_path):
    import pandas as pd
    out = _copy(smoke_out, tmp_path / "S")
    res = out / "runs" / FINAL / "results.json"
    good = _damage(res, "truncated")
    r = _reproduce(run_cli, out, omniglot_root, TRIAL, FINAL)
    assert r.returncode == 0, r.stderr
    _one_line([l for l in r.stderr.splitlines() if FINAL in l][0], f"run {FINAL} finished earlier but",
              "running it again")
    assert "2 of 2 runs complete" in r.stdout and f"ok       {FINAL}" in r.stdout
    again = json.loads(res.read_text())
    assert again["test_acc"] == good["test_acc"]   # recomputed from the saved checkpoints: the same result
    before, after = (pd.read_csv(o / "fewshot.csv") for o in (smoke_out, out))
    assert "protonet" in set(after.method)          # the method is back in the table, with the same numbers
    pd.testing.assert_frame_equal(before, after)


def test_a_run_that_cannot_be_redone_fails_the_reproduction_and_is_named(run_cli, smoke_out, omniglot_root, tmp_path):
    out = _copy(smoke_out, tmp_path / "S")
    folder = out / "runs" / FINAL
    (folder / "results.json").write_text("{")
    import shutil
    shutil.rmtree(folder / "seed0"); (folder / "seed0").write_text("in the way")   # the rerun cannot train
    r = _reproduce(run_cli, out, omniglot_root, TRIAL, FINAL)
    assert r.returncode == 1
    assert "1 of 2 runs complete" in r.stdout
    assert any(l.startswith(f"mtl-meta: error: run '{FINAL}' failed") for l in r.stderr.splitlines()), r.stderr
    assert not (folder / "results.json").exists()   # the damaged record is gone, not left to stand for the run


def _resolved_profile(figures, profile):
    "Every run the profile holds in `figures` as its records decide it: grid extensions added, final runs resolved."
    from mtl_meta.profiles import get_profile
    from mtl_meta.reproduce import _saved_selection, extension_frontier, resolve_tuned
    runs = get_profile(profile)
    known, _, _ = extension_frontier(figures, [r for r in runs if r.tunes], profile)
    selected = _saved_selection(figures / "tuning.json")
    return [resolve_tuned(r, selected) if r.tuned in selected else r for r in [*runs, *known]]


@pytest.mark.parametrize("profile, folder", [("cpu", "figures"), ("cpu-2026-11", "figures/cpu-2026-11")])
def test_every_committed_run_is_valid_and_belongs_to_its_profile(profile, folder):
    """Issue 37's progress check, part 1: every run folder committed under a profile's folder is a run of that
    profile's current configuration, and every finished one is complete and valid (a partial final run, cut by
    a time limit, holds only finished seeds made with the run's own settings)."""
    from pathlib import Path
    from mtl_meta.runs import is_complete, read_record
    figures = Path(__file__).resolve().parents[1] / folder
    runs = {r.name: r for r in _resolved_profile(figures, profile)}
    folders = [p for p in sorted((figures / "runs").iterdir()) if p.is_dir()]
    assert folders
    for f in folders:
        assert f.name in runs, f"{f} is not a run of profile {profile}"
        run = runs[f.name]
        if (f / "run.json").exists():
            problems = {}
            assert is_complete(figures, run, profile, problems), (f.name, problems)
        else:   # a final run cut by a time limit: its finished seeds, made with these settings
            assert run.tuned, f"{f} has no run.json"
            for seed_file in f.glob("seed*/seed.json"):
                rec = read_record(seed_file)
                assert rec["identity"]["train_config"]["lr"] == run.parameters["train_config"]["lr"], seed_file
                assert rec["identity"]["seed"] in run.parameters["seeds"], seed_file
    if profile == "cpu-2026-11":
        assert all(is_complete(figures, r, profile) for r in runs.values())   # frozen: complete, and nothing new


@pytest.mark.parametrize("profile, folder, extra", [("cpu", "figures", ["--report-only"]),
                                                    ("cpu-2026-11", "figures/cpu-2026-11", [])])
def test_a_report_only_reproduction_trains_nothing_and_redraws_every_table_byte_identical(run_cli, tmp_path, profile,
                                                                                           folder, extra):
    """Issue 37's progress check, part 2: with no data anywhere, reproducing a copy of the committed folder
    trains nothing (no data root needed) and writes every committed table and record byte for byte again."""
    import shutil
    from pathlib import Path
    repo = Path(__file__).resolve().parents[1]
    shutil.copytree(repo / "figures", tmp_path / "figures", symlinks=True)
    before = {p: p.read_bytes() for p in (tmp_path / folder).rglob("*")
              if p.is_file() and p.suffix in (".md", ".csv", ".json")}
    env = {"MTL_META_DATA": str(tmp_path / "no-data-here"), "HOME": str(tmp_path)}
    r = run_cli("reproduce", "--profile", profile, "--out", folder, "--no-progress", *extra, cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    statuses = [l.split()[0] for l in r.stdout.splitlines() if l.split()[:1] in (["ok"], ["failed"], ["skipped"], ["pending"])]
    assert statuses and "ok" not in statuses and "failed" not in statuses
    after = {p: p.read_bytes() for p in (tmp_path / folder).rglob("*") if p in before}
    changed = sorted(str(p.relative_to(tmp_path)) for p in before if after.get(p) != before[p])
    assert changed == [], changed


def test_pending_cells_have_no_numbers_and_no_verdict():
    """Issue 37's progress check, part 3: in the cpu profile's tables, a final run that is not complete has a
    'pending' row without numbers, and no paired verdict is drawn from a pair with a pending run."""
    from pathlib import Path
    import pandas as pd
    from mtl_meta.runs import is_complete
    figures = Path(__file__).resolve().parents[1] / "figures"
    finals = [r for r in _resolved_profile(figures, "cpu") if r.tuned]
    waiting = {r.parameters["method"] + "/" + r.tuned.split("/")[0].split("-")[-1] for r in finals if not is_complete(figures, r, "cpu")}
    fs = pd.read_csv(figures / "fewshot.csv")
    fs["key"] = fs.method + "/" + fs.run_setting
    assert set(fs[fs.status.str.startswith("pending")].key) == waiting
    assert fs[fs.status.str.startswith("pending")].acc.isna().all() and fs[fs.status == "complete"].acc.notna().all()
    paired = pd.read_csv(figures / "paired.csv")
    one_side = paired.trained.map(lambda t: f"mtl/{t}" in waiting) | (paired.baseline + "/" + paired.trained).isin(waiting)
    assert (paired[one_side].verdict.str.startswith("pending")).all() and paired[one_side].difference.isna().all()
    assert not paired[~one_side].verdict.str.startswith("pending").any()
    progress = (figures / "progress.md").read_text()
    assert f"of {len(finals)} final runs" in progress


def test_every_profile_runs_real_results_pass_the_checks(tmp_path):
    "The committed cpu results, placed as the smoke and paper runs of the same notebooks, pass `record_problem` there too."
    import shutil
    from pathlib import Path
    from mtl_meta.profiles import PROFILES
    from mtl_meta.runs import record_problem
    figures = Path(__file__).resolve().parents[1] / "figures" / "runs"
    for profile, runs in PROFILES.items():
        for run in runs:
            source = figures / ("environment" if run.notebook == "environment.ipynb" else Path(run.notebook).stem)
            if not source.is_dir() or run.notebook == "fewshot.ipynb":   # few-shot: compared field by field above
                continue
            folder = tmp_path / profile / "runs" / run.name
            shutil.copytree(source, folder)
            assert record_problem(tmp_path / profile, run) == "", (profile, run.name)


def test_run_records_of_the_wrong_shape_are_one_line_or_ignored(tmp_path, capsys):
    from mtl_meta.profiles import get_profile
    from mtl_meta.reproduce import select_trials, write_summary
    from mtl_meta.runs import is_complete
    runs = get_profile("smoke")
    trials = [r for r in runs if r.tunes]
    for r in runs:
        (tmp_path / "runs" / r.name).mkdir(parents=True)
        (tmp_path / "runs" / r.name / "run.json").write_text("[1, 2]")   # JSON, but not a run record
    (tmp_path / "tuning.json").write_text(json.dumps([{"selected": {}}]))
    assert not any(is_complete(tmp_path, r, "smoke") for r in runs)
    assert select_trials(tmp_path, trials, "smoke") == {}
    err = capsys.readouterr().err
    _one_line(err, f"{tmp_path / 'tuning.json'} is not a tuning record", "ignoring it")
    write_summary(tmp_path, "smoke", runs, "cmd")
    assert "| environment |" in (tmp_path / "reproduction.md").read_text()


# -- 2. a killed reproduce leaves nothing running; its rerun equals a clean run ----------------------------

def _tagged_processes(tag):
    "Pids of the live processes (not zombies) whose environment holds `tag`."
    from pathlib import Path
    pids = []
    for d in Path("/proc").glob("[0-9]*"):
        try:
            if f"MTL_META_TEST_TAG={tag}".encode() in (d / "environ").read_bytes().split(b"\0") and \
                    (d / "stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                pids.append(int(d.name))
        except (OSError, IndexError):
            continue
    return pids


@pytest.mark.slow   # three notebook kernels: a clean run, a killed one, its rerun
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal and /proc are Linux's")
def test_killed_reproduce_leaves_no_process_and_its_rerun_equals_a_clean_run(run_cli, omniglot_root, tmp_path,
                                                                             smoke_reproduction):
    import time
    import uuid
    import pandas as pd
    from conftest import BIN
    clean, killed = smoke_reproduction[1], tmp_path / "killed"   # the clean run: the smoke profile's, undisturbed
    args = ["--profile", "smoke", "--only", "sinusoid", "--no-progress", "--data-root", str(omniglot_root)]
    tag = uuid.uuid4().hex
    p = subprocess.Popen([str(BIN / "mtl-meta"), "reproduce", *args, "--out", str(killed)],
                         env={**os.environ, "MTL_META_TEST_TAG": tag}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        def kernel_running():
            for pid in _tagged_processes(tag):
                try:
                    if b"ipykernel" in open(f"/proc/{pid}/cmdline", "rb").read():
                        return True
                except OSError:
                    pass
            return False
        while not kernel_running():   # the run's process and its notebook kernel are up
            assert p.poll() is None and time.monotonic() < deadline, "the run's kernel never started"
            time.sleep(0.2)
        assert len(_tagged_processes(tag)) >= 3   # reproduce, the run's process, the kernel
    finally:
        p.send_signal(signal.SIGKILL); p.wait()
    deadline = time.monotonic() + 15
    while _tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged_processes(tag) == [], "processes of the killed reproduction are still running"
    r = run_cli("reproduce", *args, "--out", str(killed))
    assert r.returncode == 0, r.stderr
    assert "1 of 1 runs complete" in r.stdout
    a, b = (pd.read_csv(o / "sinusoid.csv") for o in (clean, killed))
    timing = [c for c in a.columns if "seconds" in c or "speedup" in c]
    pd.testing.assert_frame_equal(a.drop(columns=timing), b.drop(columns=timing))
    assert "RuntimeError" not in (killed / "runs" / "sinusoid" / "sinusoid.log").read_text()


def test_run_processes_hold_the_output_folders_lock(tmp_path):
    "The lock of a reproduction is inherited by its runs' processes: free only once the last of them has exited."
    code = ("import os, sys, subprocess, time\nfrom mtl_meta.core import OutputLock, held_lock_fd\n"
            "with OutputLock(sys.argv[1]) as lock:\n"
            "    fd = held_lock_fd(sys.argv[1]); assert fd == lock.fd\n"
            "    c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'], pass_fds=(fd,))\n"
            "    print(c.pid, flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    child = int(p.stdout.readline())
    p.send_signal(signal.SIGKILL); p.wait()
    try:
        lock = core.OutputLock(tmp_path)
        lock.wait_for_dead_owner = 0.5
        with pytest.raises(MtlMetaError, match=f"in use by process {p.pid}"):   # the child still holds it
            with lock:
                pass
    finally:
        os.kill(child, signal.SIGKILL)
    import time
    time.sleep(0.3)
    with core.OutputLock(tmp_path):   # the last holder is gone: free
        pass


# -- 3. locks and outputs never follow a link -------------------------------------------------------------

@pytest.mark.parametrize("kind", ["symlink", "folder", "fifo", "dangling symlink"])
def test_odd_lock_files_are_one_line_and_touch_nothing(run_cli, omniglot_root, tmp_path, kind):
    out = tmp_path / "run"; out.mkdir()
    target = tmp_path / "precious.txt"; target.write_text("keep me")
    lock = out / core.LOCK_NAME
    {"symlink": lambda: lock.symlink_to(target), "folder": lock.mkdir, "fifo": lambda: os.mkfifo(lock),
     "dangling symlink": lambda: lock.symlink_to(tmp_path / "nowhere")}[kind]()
    r = run_cli("train", "--method", "protonet", *TINY_CLI, "--out", str(out), "--data-root", str(omniglot_root))
    _cli_fails(r, f"lock file {lock} is not a plain file", "pass another --out")
    assert target.read_text() == "keep me" and not (tmp_path / "nowhere").exists()
    assert sorted(p.name for p in out.iterdir()) == [core.LOCK_NAME]


def test_history_csv_as_a_symlink_is_replaced_not_followed(omniglot_root, tmp_path):
    target = tmp_path / "precious.txt"; target.write_text("keep me")
    out = tmp_path / "run"; out.mkdir()
    (out / "history.csv").symlink_to(target)
    api.train("protonet", out_dir=out, data_root=omniglot_root, **TINY)
    assert target.read_text() == "keep me"
    assert not (out / "history.csv").is_symlink() and (out / "history.csv").read_text().startswith("epoch,")


# -- 4. history.csv is rebuilt from the checkpoint ----------------------------------------------------------

@pytest.mark.parametrize("damage", ["binary", "truncated", "missing"])
def test_damaged_history_csv_is_rebuilt_from_the_checkpoint(omniglot_root, tmp_path, capsys, damage):
    import csv
    tiny = {**TINY, "max_steps": 4, "episodes_per_epoch": 1}   # one validation per update
    api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **{**tiny, "max_steps": 2})
    path = tmp_path / "history.csv"
    if damage == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe garbage")
    elif damage == "truncated":
        path.write_text(path.read_text().splitlines()[0] + "\n")
    else:
        path.unlink()
    capsys.readouterr()
    s = api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **tiny)
    _one_line(capsys.readouterr().err, f"mtl-meta: warning: {path}", "rebuilt it from the checkpoint's history")
    rows = list(csv.DictReader(open(path)))
    assert [int(r["epoch"]) for r in rows] == [h["epoch"] for h in s["history"]] == [0, 1, 2, 3]
    assert [float(r["val_acc"]) for r in rows] == pytest.approx([h["val_acc"] for h in s["history"]])


# -- 5. experiment notebooks check every parameter before any work ----------------------------------------

def _first_cells(notebook, **values):
    "Execute a notebook's parameters cell, `values` (as papermill injects them) and its checking cell."
    from mtl_meta.runs import experiments_dir
    nb = json.loads((experiments_dir() / notebook).read_text())
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    assert "parameters" in code[0]["metadata"].get("tags", [])
    ns = {}
    exec("".join(code[0]["source"]), ns)
    ns.update(values)
    exec("".join(code[1]["source"]), ns)


@pytest.mark.parametrize("notebook, values, needle", [
    ("fewshot.ipynb", {"test_episodes": -1}, "test_episodes must be 0 (a tuning trial, no test) or more, got -1"),
    ("fewshot.ipynb", {"extra_tests": [[-5, 1]]}, "extra_tests must be a list of [ways, shots] pairs"),
    ("fewshot.ipynb", {"seeds": [-1]}, "seeds must be a non-empty list of distinct seeds"),
    ("fewshot.ipynb", {"seeds": []}, "seeds must be a non-empty list"),
    ("fewshot.ipynb", {"adapt": "magic"}, "adapt must be one of"),
    ("fewshot.ipynb", {"algorithm_options": {"inner_lr": float("nan")}}, "algorithm_options.inner_lr must be a finite"),
    ("fewshot.ipynb", {"method": "maml", "algorithm_options": {"nope": 1}}, "algorithm_options must be made of the options of maml"),
    ("fewshot.ipynb", {"train_config": {"lr": float("nan")}}, "lr must be"),
    ("fewshot.ipynb", {"train_config": {"ways": 1}}, "ways must be at least 2"),
    ("efficiency.ipynb", {"mtl_configs": [{"epochs": 1}, {"epochs": -1}]}, "epochs must be at least 1"),
    ("efficiency.ipynb", {"test_episodes": 0}, "test_episodes must be 1 or more"),
    ("sinusoid.ipynb", {"inner_lr": float("inf")}, "inner_lr must be a finite number, got inf"),
    ("sinusoid.ipynb", {"meta_batch_size": 50, "n_tasks": 10}, "meta_batch_size must be between 1 and n_tasks=10"),
    ("theory.ipynb", {"depths": [0, 4]}, "depths must be a non-empty list of integers, each 1 or more"),
    ("theory.ipynb", {"lambda_taus": [[0.1, -1]]}, "lambda_taus must be a non-empty list of [lambda, tau] pairs"),
    ("environment.ipynb", {"matmul_size": 0}, "matmul_size must be 1 or more"),
])
def test_experiment_notebooks_check_every_parameter_in_their_first_cell(notebook, values, needle):
    with pytest.raises(MtlMetaError) as e:
        _first_cells(notebook, **values)
    _one_line(e, needle)


def test_experiment_notebook_defaults_and_profile_runs_pass_their_checks():
    from mtl_meta.profiles import PROFILES
    from mtl_meta.reproduce import resolve_tuned
    for profile, runs in PROFILES.items():
        for run in runs:
            params = run.parameters
            if run.tuned:   # a final run gets its trial from tuning: any trial of its grid will do here
                grid = [r for r in runs if r.tunes == run.tuned] or [r for r in PROFILES["cpu"] if r.tunes == run.tuned]
                trial = grid[0].parameters["trial"]   # (the regime map is tuned by the cpu profile's trials)
                params = resolve_tuned(run, {run.tuned: {"trial": trial, "run": "t"}}).parameters
            _first_cells(run.notebook, **params)


def test_bad_notebook_parameter_stops_the_reproduction_before_any_folder(run_cli, omniglot_root, tmp_path):
    """A value its experiment's rules refuse stops `reproduce` in one line before anything is made (the notebook's
    own first cell, which reads the same rules, is tested above); the line names the final run, not the tuning
    trial, whose seeds are its own: test settings never reach it."""
    out = tmp_path / "S"
    r = _reproduce(run_cli, out, omniglot_root, TRIAL, FINAL, extra=["seeds=[-1]"])
    _cli_fails(r, f"run {FINAL}: bad parameter value: seeds must be a non-empty list")
    assert not out.exists()


# -- 6. only the tool's own temporary files are swept, after the arguments are checked ----------------------

def test_sweep_spares_other_files_and_waits_for_good_arguments(run_cli, omniglot_root, tmp_path):
    out = tmp_path / "S"; (out / "runs" / "x").mkdir(parents=True)
    mine = [out / ".my-notes.tmp", out / "runs" / "x" / ".draft.tmp", out / ".report.md.tmp"]
    ours = out / "runs" / "x" / ".results.json.mtl-meta-k1ll3d00.tmp"
    for f in [*mine, ours]:
        f.write_text("text")
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--only", "no-such-run", "--no-progress")
    _cli_fails(r, "has no run named 'no-such-run'")
    assert all(f.exists() for f in [*mine, ours])                       # bad arguments: nothing deleted
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--only", "environment", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert all(f.read_text() == "text" for f in mine) and not ours.exists()
    run = tmp_path / "run"; run.mkdir()
    (run / ".my-notes.tmp").write_text("mine"); (run / ".checkpoint.pt.mtl-meta-abcdefgh.tmp").write_text("half")
    with pytest.raises(MtlMetaError):
        api.train("protonet", out_dir=run, data_root=omniglot_root, **{**TINY, "lr": -1.0})
    assert (run / ".checkpoint.pt.mtl-meta-abcdefgh.tmp").exists()     # refused before the sweep
    api.train("protonet", out_dir=run, data_root=omniglot_root, **TINY)
    assert (run / ".my-notes.tmp").read_text() == "mine" and not (run / ".checkpoint.pt.mtl-meta-abcdefgh.tmp").exists()


# -- 7. every float in the configuration is finite ----------------------------------------------------------

@pytest.mark.parametrize("option", ["inner_lr=NaN", "inner_lr=Infinity", "inner_lr=-Infinity"])
def test_non_finite_method_options_are_refused_before_training(run_cli, omniglot_root, tmp_path, option):
    r = run_cli("train", "--method", "maml", "--option", option, *TINY_CLI, "--out", str(tmp_path / "o"),
                "--data-root", str(omniglot_root))
    _cli_fails(r, "method option inner_lr must be a finite number")
    assert not (tmp_path / "o").exists()


def test_non_finite_values_in_nested_options_are_refused(omniglot_root, tmp_path):
    with pytest.raises(MtlMetaError) as e:
        api.train("protonet", out_dir=tmp_path / "o", data_root=omniglot_root,
                  backbone_options={"hidden": [32, float("nan")]}, **TINY)
    _one_line(e, "backbone option hidden[1] must be a finite number, got nan")
    assert not (tmp_path / "o").exists()


# -- 8. one line for the rest --------------------------------------------------------------------------------

@pytest.mark.parametrize("args, needle", [
    (["--seed", "-1"], "seed must be 0 or more, got -1"),
    (["--ways", "1"], "ways must be at least 2"),
    (["--checkpoint-every", "-3"], "checkpoint_every must be 0 or more, got -3"),
    (["--lr-patience", "-1"], "lr_patience must be 0 or more, got -1"),
    (["--device", "meta"], "device 'meta' cannot train or evaluate here"),
])
def test_bad_train_values_are_one_line_before_the_folder_is_made(run_cli, omniglot_root, tmp_path, args, needle):
    r = run_cli("train", "--method", "protonet", *TINY_CLI, *args, "--out", str(tmp_path / "o"),
                "--data-root", str(omniglot_root))
    _cli_fails(r, needle)
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("args, needle", [(["--seed", "-1"], "--seed must be 0 or more, got -1"),
                                          (["--device", "meta"], "device 'meta' cannot train or evaluate here")])
def test_bad_evaluate_values_are_one_line(run_cli, trained, omniglot_root, args, needle):
    r = run_cli("evaluate", "--checkpoint", str(trained / "checkpoint.pt"), "--episodes", "2", *args,
                "--no-progress", "--data-root", str(omniglot_root))
    _cli_fails(r, needle)


def test_disk_full_is_one_line_and_keeps_the_previous_files(trained, omniglot_root, tmp_path, monkeypatch):
    import errno
    import shutil
    out = tmp_path / "run"
    shutil.copytree(trained, out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    def full(fd): raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(os, "fsync", full)
    with pytest.raises(MtlMetaError) as e:
        api.train("protonet", out_dir=out, data_root=omniglot_root, **{**TINY, "max_steps": 3})
    _one_line(e, "(No space left on device); free some space or write elsewhere")
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.name != "history.csv"} == \
        {k: v for k, v in before.items() if k != "history.csv"}
    assert not [p for p in out.iterdir() if core.is_own_temp_file(p.name)]


def test_environment_failures_escaping_as_oserror_are_one_line_in_the_cli(monkeypatch, capsys):
    import errno
    from mtl_meta import cli
    def full(args): raise OSError(errno.ENOSPC, "No space left on device", "/some/file")
    monkeypatch.setattr(cli, "cmd_data_info", full)
    assert cli.main(["data", "info", "--dataset", "omniglot-minimal"]) == 1
    _one_line(capsys.readouterr().err, "mtl-meta: error: cannot write /some/file (No space left on device)")


def test_path_longer_than_the_system_allows_is_one_line(run_cli, omniglot_root, tmp_path):
    r = run_cli("train", "--method", "protonet", *TINY_CLI, "--out", str(tmp_path / ("x" * 300)),
                "--data-root", str(omniglot_root))
    _cli_fails(r, "File name too long", "pass another --out")
    deep = tmp_path / "/".join(["y" * 250] * 20)   # every part fits, the whole path does not
    r = run_cli("train", "--method", "protonet", *TINY_CLI, "--out", str(deep), "--data-root", str(omniglot_root))
    assert r.returncode == 2 and "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_non_utf8_sha256sums_is_one_line(run_cli, omniglot_root, tmp_path):
    folder = tmp_path / "omniglot"; folder.mkdir()
    for n in ("images_background_small1.zip", "images_background_small2.zip"):
        os.symlink(omniglot_root / "omniglot" / n, folder / n)
    (folder / "SHA256SUMS").write_bytes(b"\xff\xfe\x00 not text \x81")
    r = run_cli("data", "info", "--dataset", "omniglot-minimal", "--data-root", str(tmp_path),
                env={"MTL_META_CACHE": str(tmp_path / "cache")})
    _cli_fails(r, f"{folder / 'SHA256SUMS'} is not a text file of checksums", "delete it")


def test_tuning_json_holding_a_list_is_one_warning_and_the_run_goes_on(run_cli, smoke_out, omniglot_root, tmp_path):
    out = _copy(smoke_out, tmp_path / "S")
    (out / "tuning.json").write_text("[1, 2, 3]")
    r = _reproduce(run_cli, out, omniglot_root, TRIAL, FINAL)
    assert r.returncode == 0, r.stderr
    _one_line(r.stderr, f"mtl-meta: warning: {out / 'tuning.json'} is not a tuning record")
    assert "2 of 2 runs complete" in r.stdout and "skipped" in r.stdout
    assert isinstance(json.loads((out / "tuning.json").read_text())["selected"], dict)   # rebuilt from the trials


@pytest.mark.parametrize("body, error", [("raise RuntimeError('half-written plugin')", "RuntimeError: half-written plugin"),
                                         ("import sys; sys.exit(3)", "SystemExit: 3")])   # (the second: probed)
def test_a_plugin_that_raises_on_import_is_one_line_and_help_still_works(run_cli, tmp_path, body, error):
    (tmp_path / "broken_plugin.py").write_text(body + "\n")
    env = {"MTL_META_PLUGINS": "broken_plugin", "PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    r = run_cli("--help", env=env)
    assert r.returncode == 0 and "reproduce" in r.stdout, r.stderr
    if r.stderr.strip():   # the top-level help no longer imports plugins (nor torch); if it ever does, one line
        _one_line(r.stderr, "mtl-meta: warning: the plugin module 'broken_plugin'", error)
    r = run_cli("train", "--out", str(tmp_path / "o"), env=env)
    _cli_fails(r, "the plugin module 'broken_plugin'", "failed while being imported", "fix it or remove it")
    assert not (tmp_path / "o").exists()


# -- probed beyond the list ------------------------------------------------------------------------------

def test_history_csv_that_is_a_folder_is_one_line_before_training(omniglot_root, tmp_path):
    (tmp_path / "history.csv").mkdir()
    with pytest.raises(MtlMetaError) as e:
        api.train("protonet", out_dir=tmp_path, data_root=omniglot_root, **TINY)
    _one_line(e, "history.csv is a folder", "pass another --out")
    assert not (tmp_path / "checkpoint.pt").exists()   # refused before any update


def test_records_that_are_fifos_are_damaged_not_a_hang(tmp_path):
    from mtl_meta.report import read_results
    from mtl_meta.profiles import get_profile
    from mtl_meta.runs import is_complete
    run = get_profile("smoke", ["sinusoid"])[0]
    folder = tmp_path / "runs" / "sinusoid"; folder.mkdir(parents=True)
    os.mkfifo(folder / "results.json"); os.mkfifo(folder / "run.json")   # reading either would block forever
    assert read_results(folder / "results.json") == (None, f"{folder / 'results.json'} is not a plain file")
    assert not is_complete(tmp_path, run, "smoke")


def test_a_run_folder_that_is_a_symlink_is_refused_not_cleared(tmp_path):
    "Clearing a run folder made with other parameters must never follow a link and empty a folder elsewhere."
    from mtl_meta.profiles import get_profile
    from mtl_meta.runs import prepare_run_dir
    run = get_profile("smoke", ["sinusoid"])[0]
    elsewhere = tmp_path / "elsewhere"; elsewhere.mkdir()
    (elsewhere / "run.json").write_text(json.dumps({"config_hash": "another run's"}))
    (elsewhere / "precious.txt").write_text("keep me")
    (tmp_path / "out" / "runs").mkdir(parents=True)
    (tmp_path / "out" / "runs" / "sinusoid").symlink_to(elsewhere)
    with pytest.raises(MtlMetaError) as e:
        prepare_run_dir(tmp_path / "out", run, "smoke")
    _one_line(e, "is a symbolic link", "remove the link or pass another --out")
    assert (elsewhere / "precious.txt").read_text() == "keep me"


# -- issue 39: interrupts, hostile records and odd arguments ----------------------------------------------

def _interrupted(out, tag, root, twice: bool, sigterm: bool = False):
    """Start a smoke reproduction of TRIAL then FINAL, wait until the trial trains, press Ctrl-C (SIGINT to the
    process group; `twice`: then again, to the parent alone, 50 ms later; `sigterm`: instead, SIGTERM to the parent
    alone, as `kill PID` sends). Returns (its arguments, (exit status, stdout, stderr, when the signal came))."""
    import time
    from conftest import BIN
    args = ["reproduce", "--profile", "smoke", "--out", str(out), "--no-progress", "--data-root", str(root),
            "--only", TRIAL, FINAL, "--set", "epochs=3", "episodes_per_epoch=40", "val_episodes=4", "test_episodes=2"]
    p = subprocess.Popen([str(BIN / "mtl-meta"), *args], env={**os.environ, "MTL_META_TEST_TAG": tag},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "runs" / TRIAL / "seed0").exists():   # the trial is training
            assert p.poll() is None and time.monotonic() < deadline, p.communicate()
            time.sleep(0.2)
        time.sleep(1.0)
        asked = time.monotonic()
        if sigterm:
            os.kill(p.pid, signal.SIGTERM)
        else:
            os.killpg(p.pid, signal.SIGINT)
        if twice:
            time.sleep(0.05)
            if p.poll() is None:
                os.kill(p.pid, signal.SIGINT)
        stdout, stderr = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL); p.wait()
    return args, (p.returncode, stdout, stderr, asked)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_ctrl_c_stops_a_reproduction_promptly_and_it_resumes(run_cli, omniglot_root, tmp_path):
    """SIGINT to the process group (a Ctrl-C) stops the running run at once and starts no queued one: exit 130,
    one line that says what will resume, nothing left running, the stopped run's attempt noted; the same
    command then finishes the work."""
    import time
    out, tag = tmp_path / "S", __import__("uuid").uuid4().hex
    args, (returncode, stdout, stderr, asked) = _interrupted(out, tag, omniglot_root, twice=False)
    assert returncode == 130, (stdout, stderr)
    assert time.monotonic() - asked < 30                      # promptly: not after the queued runs
    _one_line(stderr.strip().splitlines()[-1], "mtl-meta: interrupted", "rerun the same command to resume")
    assert "Traceback" not in stderr
    attempts = json.loads((out / "runs" / TRIAL / "attempts.json").read_text())["attempts"]
    assert attempts[-1]["ended"] == "interrupted"
    assert not (out / "runs" / FINAL).exists()                # the queued run never started
    deadline = time.monotonic() + 15
    while _tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged_processes(tag) == []
    r = run_cli(*args)
    assert r.returncode == 0 and "2 of 2 runs complete" in r.stdout, r.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_sigterm_stops_a_reproduction_as_ctrl_c_does(omniglot_root, tmp_path):
    """SIGTERM to the reproduce process alone (`kill PID`, a scheduler's cancel) stops the running run at once and
    starts no queued one: exit 143, one line that says what will resume, nothing left running."""
    import time
    out, tag = tmp_path / "T", __import__("uuid").uuid4().hex
    args, (returncode, stdout, stderr, asked) = _interrupted(out, tag, omniglot_root, twice=False, sigterm=True)
    assert returncode == 143, (stdout, stderr)
    assert time.monotonic() - asked < 30
    _one_line(stderr.strip().splitlines()[-1], "mtl-meta: terminated", "rerun the same command to resume")
    assert "Traceback" not in stderr
    assert json.loads((out / "runs" / TRIAL / "attempts.json").read_text())["attempts"][-1]["ended"] == "interrupted"
    assert not (out / "runs" / FINAL).exists()
    deadline = time.monotonic() + 15
    while _tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged_processes(tag) == []


def test_a_record_cannot_make_the_tool_write_outside_its_folder(run_cli, smoke_out, tmp_path):
    "A data set name with '..' in a results.json (a record that came with a clone) names no file: the record is refused."
    out = _copy(smoke_out, tmp_path / "deep" / "S")
    res = out / "runs" / FINAL / "results.json"
    rec = json.loads(res.read_text())
    rec["dataset"] = "x/../../../ESCAPED"
    res.write_text(json.dumps(rec))
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--no-progress", "--report-only",
                "--only", TRIAL, FINAL, *FAST)
    assert r.returncode == 0, r.stderr
    assert "is not a plain name" in r.stderr
    assert not list(tmp_path.rglob("ESCAPED*"))


def test_a_symlinked_runs_folder_cannot_make_the_tool_delete_outside(run_cli, smoke_out, omniglot_root, tmp_path):
    out = _copy(smoke_out, tmp_path / "S")
    (out / "runs").rename(tmp_path / "V")
    (out / "runs").symlink_to(tmp_path / "V")
    record = tmp_path / "V" / FINAL / "run.json"
    rec = json.loads(record.read_text()); rec["config_hash"] = "0" * 16
    record.write_text(json.dumps(rec))
    keep = tmp_path / "V" / FINAL / "precious.txt"
    keep.write_text("mine")
    r = _reproduce(run_cli, out, omniglot_root, TRIAL, FINAL)
    assert r.returncode != 0 and "leads outside" in r.stdout + r.stderr, (r.stdout, r.stderr)
    assert keep.read_text() == "mine"


def test_set_keys_are_declared_names_never_code(run_cli, tmp_path):
    marker = tmp_path / "X"
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(tmp_path / "S"), "--only", "environment",
                "--set", f"__import__('os').system('touch {marker}')#=1", cwd=tmp_path)
    assert r.returncode == 2 and not marker.exists()
    _one_line(r.stderr, "not a parameter of any run")


def test_set_test_settings_never_reach_tuning_trials(smoke_out):
    "The shared fixture overrides test_episodes for every run; the tuning trial still never sees the test classes."
    import pandas as pd
    trial = json.loads((smoke_out / "runs" / TRIAL / "results.json").read_text())
    assert trial["experiment"] == "tuning" and trial.get("test_episodes", 0) == 0
    assert "test_acc" not in trial
    fs = pd.read_csv(smoke_out / "fewshot.csv")
    assert len(fs[(fs.method == "protonet") & (fs.ways == 5)]) == 1


@pytest.mark.parametrize("command", [["reproduce", "--profile", "smoke", "--only", "environment"],
                                     ["train", "--method", "mtl", "--dataset", "omniglot-minimal", *TINY_CLI]])
def test_an_empty_out_is_refused(run_cli, tmp_path, command):
    r = run_cli(*command, "--out", "", cwd=tmp_path)
    assert r.returncode == 2 and list(tmp_path.iterdir()) == []
    _one_line(r.stderr, "--out is empty")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_in_place_of_a_checksum_file_is_refused_not_waited_on(run_cli, omniglot_root, tmp_path):
    "A FIFO named SHA256SUMS in the data root used to hang `data info` (and every load) forever."
    import shutil
    root = tmp_path / "data"
    shutil.copytree(omniglot_root / "omniglot", root / "omniglot", ignore=shutil.ignore_patterns("SHA256SUMS"))
    os.mkfifo(root / "omniglot" / "SHA256SUMS")
    r = run_cli("data", "info", "--dataset", "omniglot-minimal", "--data-root", str(root), timeout=120)
    assert r.returncode == 2, (r.stdout, r.stderr)
    _one_line(r.stderr, "SHA256SUMS", "not a plain file")


@pytest.mark.parametrize("name", ["run.json", "results.json"])
def test_deeply_nested_records_are_damaged_records_not_tracebacks(smoke_out, tmp_path, name):
    from mtl_meta.profiles import get_profile
    from mtl_meta.reproduce import collect
    from mtl_meta.runs import is_complete
    out = _copy(smoke_out, tmp_path / "S")
    (out / "runs" / FINAL / name).write_text("[" * 200000 + "]" * 200000)
    final = next(r for r in get_profile("smoke") if r.name == FINAL)
    assert not any(is_complete(out, r, "smoke") for r in [final])   # whatever its parameters: not trusted
    made = collect(out, [TRIAL, FINAL])                               # the tables leave it out, in a word
    assert (name == "run.json") or "nested" in made["problems"][FINAL]


def test_a_poisoned_cache_entry_is_rebuilt(omniglot_root, tmp_path, monkeypatch):
    "A cache entry whose meta.json is nested beyond reason is discarded and rebuilt, not a traceback at every load."
    monkeypatch.setenv("MTL_META_CACHE", str(tmp_path / "cache"))
    first = load_split("omniglot-minimal", "val", data_root=omniglot_root)
    metas = list((tmp_path / "cache").rglob("meta.json"))
    assert metas
    for m in metas:
        m.write_text("[" * 200000 + "]" * 200000)
    again = load_split("omniglot-minimal", "val", data_root=omniglot_root)
    assert len(again.labels) == len(first.labels) and again.class_names == first.class_names


def test_a_train_inside_a_folder_a_reproduction_writes_is_refused(tmp_path):
    """`train --out OUT/runs/x/seed0` while a reproduction holds OUT was accepted, and broke the reproduction's
    every rerun; a reproduction around a folder a train writes is refused too."""
    code = ("import os, sys, time\nfrom mtl_meta.core import OutputLock\nos.makedirs(sys.argv[1], exist_ok=True)\n"
            "with OutputLock(sys.argv[1], recursive=True):\n    print('locked', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "OUT")], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(MtlMetaError) as e:
            api.train("mtl", "omniglot-minimal", out_dir=tmp_path / "OUT" / "runs" / "x" / "seed0", **TINY)
        _one_line(e, f"lies inside {(tmp_path / 'OUT').resolve()}", "pass an --out outside it")
        assert not (tmp_path / "OUT" / "runs" / "x" / "seed0" / core.LOCK_NAME).exists()
    finally:
        p.kill(); p.wait()
    inner = tmp_path / "B" / "runs" / "y"
    code = ("import os, sys, time\nfrom mtl_meta.core import OutputLock\nos.makedirs(sys.argv[1], exist_ok=True)\n"
            "with OutputLock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n")
    p = subprocess.Popen([sys.executable, "-c", code, str(inner)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "locked"
        with pytest.raises(MtlMetaError) as e:
            with core.OutputLock(tmp_path / "B", recursive=True):
                pass
        _one_line(e, f"holds {inner.resolve()}")
    finally:
        p.kill(); p.wait()


@pytest.mark.parametrize("options, needle", [({"lam": float("nan")}, "finite"), ({"lam": -1.0}, "0 or more"),
                                             ({"lamb": 1.0}, "takes no option 'lamb'"), ({"lam": "x"}, "a number")])
def test_adaptation_options_are_checked_before_use(options, needle, tmp_path):
    "A NaN ridge penalty gave NaN probabilities and chance accuracy without a word."
    from mtl_meta.adapt import check_adapt_options
    with pytest.raises(MtlMetaError) as e:
        check_adapt_options("ridge", options)
    _one_line(e, needle)
    with pytest.raises(MtlMetaError, match=needle):   # the API says it before it reads any file
        api.predict(tmp_path / "no-checkpoint.pt", tmp_path, tmp_path, adapt="ridge", **options)


def test_predict_out_naming_a_folder_is_one_line(run_cli, tmp_path):
    (tmp_path / "existing").mkdir()
    r = run_cli("predict", "--checkpoint", str(tmp_path / "x.pt"), "--support", str(tmp_path), "--query",
                str(tmp_path), "--out", str(tmp_path / "existing"))
    assert r.returncode == 2 and list((tmp_path / "existing").iterdir()) == []
    _one_line(r.stderr, "is a folder", "path of the CSV file")


def test_a_checkpoint_with_a_damaged_state_field_is_one_line(run_cli, tmp_path):
    "Each damaged field of a checkpoint's saved state: the resume is refused in one line that names the field."
    import shutil
    from fixtures import write_image_folder
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    args = lambda epochs, out: ["train", "--method", "protonet", "--dataset", str(folder), "--ways", "2", "--shots",
                                "1", "--queries", "2", "--val-queries", "2", "--episodes-per-epoch", "2",
                                "--val-episodes", "2", "--epochs", str(epochs), "--no-progress", "--out", str(out)]
    assert run_cli(*args(1, tmp_path / "run")).returncode == 0
    for field, value, says in (("epoch", "3", "state.epoch must be an integer >= 0"),
                               ("history", {"epoch": 0}, "state.history must be a list"),
                               ("seconds", float("nan"), "state.seconds must be a finite number"),
                               ("epoch_sums", [0.0, 1.0], "state.epoch_sums must be three finite numbers")):
        out = tmp_path / f"damaged-{field}"
        shutil.copytree(tmp_path / "run", out)
        ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
        ckpt["state"][field] = value
        torch.save(ckpt, out / "checkpoint.pt")
        _cli_fails(run_cli(*args(2, out)), "cannot resume from", says)   # resuming to train a second epoch


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_second_ctrl_c_ends_at_once_in_one_line(omniglot_root, tmp_path):
    """Two Ctrl-Cs in quick succession: the second waits for nothing, yet the report is still one line (no
    traceback) and nothing is left running."""
    import time
    out, tag = tmp_path / "S", __import__("uuid").uuid4().hex
    _, (returncode, stdout, stderr, asked) = _interrupted(out, tag, omniglot_root, twice=True)
    assert returncode == 130 and time.monotonic() - asked < 30, (stdout, stderr)
    assert "Traceback" not in stderr
    _one_line(stderr.strip().splitlines()[-1], "mtl-meta: interrupted", "rerun the same command to resume")
    deadline = time.monotonic() + 15
    while _tagged_processes(tag) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _tagged_processes(tag) == []   # resuming is the test above's: the stopped run's checkpoints are the same


@pytest.mark.parametrize("setting, says", [("lr=nan", "lr must be a number, got str 'nan'"),
                                           ("epochs=-1", "epochs must be at least 1, got -1"),
                                           ('epochs="3"', "epochs must be a whole number, got str '3'"),
                                           ("adapt=nope", "adapt must be one of logreg, "),
                                           ('algorithm_options={"inner_lr": 0.1}', "algorithm_options must be made of "
                                                                                  "the options of protonet: ")])
def test_set_training_settings_are_typed_before_any_folder(run_cli, tmp_path, setting, says):
    """A `--set` training setting is checked by TrainConfig's own declaration, and a notebook parameter by its
    experiment's rules (`params.EXPERIMENT_RULES`), for every run, before anything is made."""
    out = tmp_path / "R"
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--only", TRIAL, "--set", setting,
                "--no-progress", "--data-root", str(tmp_path))
    _cli_fails(r, f"run {TRIAL}:", says)
    assert not out.exists()


def test_api_training_settings_of_the_wrong_type_are_one_line(tmp_path):
    for bad, says in (({"epochs": "3"}, "epochs must be a whole number"), ({"ways": True}, "ways must be a whole"),
                      ({"amp": 3}, "amp must be text (or unset)")):
        with pytest.raises(MtlMetaError) as e:
            api.train("protonet", out_dir=tmp_path / "o", data_root=tmp_path, **bad)
        _one_line(e, says)
    assert not (tmp_path / "o").exists()


def test_options_the_executor_ignores_and_device_files_are_one_line(run_cli, tmp_path):
    "Found by probing: `--slurm` with the local executor was silently ignored; /dev/zero was said not to exist."
    out = tmp_path / "R"
    r = run_cli("reproduce", "--profile", "smoke", "--out", str(out), "--only", "environment", "--no-progress",
                "--slurm", "partition=gpu")
    _cli_fails(r, "--slurm options apply to cluster jobs", "drop --slurm")
    assert not out.exists()
    if os.path.exists("/dev/zero"):
        _cli_fails(run_cli("evaluate", "--checkpoint", "/dev/zero"), "checkpoint /dev/zero is not a regular file")
