"""Runs that cannot be mixed up (issue 16): each case an adversarial user found, as a test.

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
        from mtl_meta.reproduce import reproduce
        with pytest.raises(MtlMetaError) as e:
            reproduce("smoke", out=out, only=["environment"], progress=False)
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
    stale = [tmp_path / ".checkpoint.pt.k1ll3d.tmp", tmp_path / ".summary.json.abc.tmp"]
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
