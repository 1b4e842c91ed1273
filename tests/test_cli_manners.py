"""Issue 40's small things on the command line: no carriage-return redraws in a log, epoch numbers that agree,
a predict that ends quietly when its reader stops, and probabilities whose scale is said."""
import os
import re
import shutil
import subprocess

from fixtures import write_image_folder
from conftest import BIN

TINY = ["--ways", "2", "--shots", "1", "--queries", "2", "--episodes-per-epoch", "3", "--val-episodes", "2",
        "--val-queries", "2"]


def test_a_redirected_log_gets_lines_not_redraws_and_the_epochs_agree(run_cli, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    env = {"MTL_META_CACHE": str(tmp_path / "cache")}
    # no --no-progress: stderr is a pipe here, as in `mtl-meta train ... > log 2>&1`
    r = run_cli("train", "--method", "protonet", "--dataset", str(folder), *TINY, "--epochs", "3",
                "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.stderr
    assert "\r" not in r.stdout + r.stderr
    epochs = {int(m[1]): float(m[2]) for m in re.finditer(r"^epoch (\d+): .*val acc ([\d.]+)", r.stdout, re.M)}
    assert sorted(epochs) == [1, 2, 3], r.stdout
    best = int(re.search(r"\(epoch (\d+) of (\d+)\)", r.stdout)[1])
    assert epochs[best] == max(epochs.values()) and min(k for k, v in epochs.items() if v == max(epochs.values())) == best


def test_predict_says_the_scale_and_ends_quietly_when_the_reader_stops(run_cli, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    env = {**os.environ, "MTL_META_CACHE": str(tmp_path / "cache")}
    r = run_cli("train", "--method", "protonet", "--dataset", str(folder), *TINY, "--epochs", "1", "--no-progress",
                "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 0, r.stderr
    support = tmp_path / "support"
    for name in ("class00", "class01", "class05"):
        shutil.copytree(folder / name, support / name)
    args = ["predict", "--checkpoint", str(tmp_path / "o"), "--support", str(support), "--query", str(folder),
            "--out", str(tmp_path / "pred.csv")]
    r = run_cli(*args, env=env)
    assert r.returncode == 0 and "3 classes (chance 0.33)" in r.stderr and "not calibrated" in r.stderr
    (tmp_path / "pred.csv").unlink()
    # the reader goes away before a line is written (`| head` that has had enough): no traceback, SIGPIPE's status
    exe = shutil.which("mtl-meta", path=str(BIN)) or "mtl-meta"
    p = subprocess.Popen([exe, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    p.stdout.close()
    err = p.stderr.read().decode()
    assert p.wait(timeout=600) == 141, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err
    assert (tmp_path / "pred.csv").read_text().count("\n") == 49   # the CSV was written before the lines


def test_a_refused_resume_leaves_no_empty_event_file(run_cli, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    env = {"MTL_META_CACHE": str(tmp_path / "cache")}
    common = ["--dataset", str(folder), *TINY, "--epochs", "1", "--no-progress", "--out", str(tmp_path / "o"),
              "--log-dir", str(tmp_path / "tb")]
    assert run_cli("train", "--method", "protonet", *common, env=env).returncode == 0
    files = sorted((tmp_path / "tb").iterdir())
    assert len(files) == 1 and files[0].stat().st_size > 0
    r = run_cli("train", "--method", "protonet", *common, "--lr", "0.5", env=env)   # another run: refused
    assert r.returncode == 2 and "belongs to another run" in r.stderr
    assert sorted((tmp_path / "tb").iterdir()) == files   # nothing new, in particular no empty event file


NETS = '''
from torch import nn
import torchvision

def small(in_channels, width=6):
    return nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())

def imagenet_classifier():
    return torchvision.models.resnet18(num_classes=10)
'''


def test_own_backbone_by_import_path_through_every_command(run_cli, tmp_path):
    folder = write_image_folder(tmp_path / "imgs", classes=12, per_class=4, size=16)
    (tmp_path / "my_nets.py").write_text(NETS)
    env = {"MTL_META_CACHE": str(tmp_path / "cache")}
    common = ["--dataset", str(folder), *TINY, "--epochs", "1", "--no-progress"]
    r = run_cli("train", "--method", "mtl", "--backbone", "my_nets:small", *common, "--out", str(tmp_path / "o"),
                cwd=tmp_path, env=env)
    assert r.returncode == 0, r.stderr
    ckpt = str(tmp_path / "o")
    r = run_cli("evaluate", "--checkpoint", ckpt, "--ways", "2", "--queries", "2", "--episodes", "2", "--json",
                "--no-progress", cwd=tmp_path, env=env)
    assert r.returncode == 0 and '"mean"' in r.stdout, r.stderr
    support = tmp_path / "support"
    for name in ("class00", "class01"):
        shutil.copytree(folder / name, support / name)
    r = run_cli("predict", "--checkpoint", ckpt, "--support", str(support), "--query", str(folder / "class00"),
                cwd=tmp_path, env=env)
    assert r.returncode == 0 and r.stdout.count("\n") == 4, r.stderr
    r = run_cli("export", "--checkpoint", ckpt, "--out", str(tmp_path / "body.pt2"), cwd=tmp_path, env=env)
    assert r.returncode == 0 and (tmp_path / "body.pt2").stat().st_size > 0, r.stderr
    # a classifier that still has its output layer: one warning line that says how to drop it
    r = run_cli("train", "--method", "protonet", "--backbone", "my_nets:imagenet_classifier", *common,
                "--out", str(tmp_path / "c"), cwd=tmp_path, env=env)
    warned = [l for l in r.stderr.splitlines() if "classification layer" in l]
    assert r.returncode == 0 and len(warned) == 1, r.stderr
    assert warned[0].startswith("mtl-meta: warning:") and "fc: Linear(512 -> 10)" in warned[0] and "Identity" in warned[0]
    r = run_cli("train", "--method", "mtl", "--backbone", "my_nets:nothing", *common, "--out", str(tmp_path / "x"),
                cwd=tmp_path, env=env)
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "cannot load backbone 'my_nets:nothing'" in r.stderr


def test_subcommand_help_is_kept_and_answers_without_torch(tmp_path):
    import subprocess
    import sys
    env = {**os.environ, "MTL_META_CACHE": str(tmp_path / "cache"), "COLUMNS": "100"}
    probe = ("import sys; from mtl_meta.cli import main\n"
             "try:\n    rc = main(sys.argv[1:])\nexcept SystemExit as e:\n    rc = e.code\n"
             "print('torch' in sys.modules, rc, file=sys.stderr)")
    run = lambda *a: subprocess.run([sys.executable, "-c", probe, *a], capture_output=True, text=True, env=env,
                                    timeout=300)
    first, second = run("train", "--help"), run("train", "--help")   # built once, then kept
    assert first.stderr.split()[-2:] == ["True", "0"] and second.stderr.split()[-2:] == ["False", "0"]
    assert second.stdout == first.stdout and "--method NAME" in second.stdout
    nested = run("data", "info", "--help")
    assert nested.stderr.split()[-2:] == ["False", "0"] and "--dataset-option" in nested.stdout
    # another width, or plugins, is another key: built again, never a text formatted for something else
    env["COLUMNS"] = "60"
    assert run("train", "--help").stderr.split()[-2:] == ["True", "0"]
    # anything beyond a bare help request goes to the full parser
    assert run("train", "--epochs", "3", "--help").stderr.split()[-2:] == ["True", "0"]
