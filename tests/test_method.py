"""The method interface in its own module (issue 24): `mtl_meta.method` sits beneath the trainer, MTL and the
meta-learners; the registry is read when it is used; and moving the interface changed no number.

Module-level imports are only those the code before the move had too: `two_steps` is also run on that code
(`python tests/test_method.py OUT.json` with the old checkout first on PYTHONPATH) to make the reference."""
import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

import mtl_meta
from mtl_meta.episodes import Episode

REFERENCE = Path(__file__).parent / "data" / "method_two_steps_reference.json"
LOWER = ("mtl_meta.train", "mtl_meta.mtl", "mtl_meta.gbml")   # what the method module must not import


def _imports(path: Path, package: str = "mtl_meta") -> set[str]:
    "Absolute names of every module `path` imports, at any depth of its code (functions included)."
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = f"{package}.{node.module}" if node.level and node.module else (package if node.level else node.module)
            out.add(base)
            out |= {f"{base}.{a.name}" for a in node.names}   # `from . import x` imports module x
    return out


def test_the_method_module_imports_none_of_train_mtl_gbml():
    root = Path(mtl_meta.__file__).parent
    seen, todo = set(), ["mtl_meta.method"]
    while todo:   # every mtl_meta module reachable from mtl_meta.method through its imports
        mod = todo.pop()
        if mod in seen or not (root / f"{mod.split('.', 1)[1]}.py").exists():
            continue
        seen.add(mod)
        todo += [m for m in _imports(root / f"{mod.split('.', 1)[1]}.py") if m.startswith("mtl_meta.")]
    assert "mtl_meta.core" in seen and "mtl_meta.episodes" in seen   # the walk follows the imports it should
    assert not seen & set(LOWER), sorted(seen & set(LOWER))
    source = (root / "method.py").read_text(encoding="utf-8")
    assert not [m for m in LOWER if repr(m) in source or f'"{m}"' in source]   # nor by name, through importlib
    # and importing it, in a fresh interpreter, loads none of them
    code = f"import sys, mtl_meta.method; print([m for m in {LOWER!r} if m in sys.modules])"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


def test_the_old_import_paths_are_the_same_objects():
    import mtl_meta.gbml as gbml
    import mtl_meta.method as method
    import mtl_meta.train as train
    assert train.Algorithm is method.Algorithm and gbml.Algorithm is method.Algorithm
    for name in ("ALGORITHMS", "make_algorithm", "algorithm_class", "algorithm_options", "load_plugins", "PLUGINS_ENV"):
        assert getattr(gbml, name) is getattr(method, name), name
    assert list(gbml.ALGORITHMS) == ["mtl", "mtl-tasks", "maml", "fomaml", "anil", "metaoptnet-svm", "metaoptnet-rr",
                                     "r2d2", "protonet"]


def test_a_method_registered_after_import_is_seen_by_compared_methods():
    from mtl_meta.gbml import ALGORITHMS, ProtoNet, compared_methods, make_algorithm
    from mtl_meta.method import register_algorithm
    before = compared_methods()
    assert before == tuple(k for k, c in ALGORITHMS.items() if c.compared) and "mtl-tasks" not in before

    class LateMethod(ProtoNet):
        name = "late-method"

    class LateApart(ProtoNet):
        name = "late-apart"
        compared = False

    try:
        register_algorithm(LateMethod)
        register_algorithm(LateApart)
        assert compared_methods() == before + ("late-method",)          # read at call time, in registry order
        assert type(make_algorithm("late-method", nn.Flatten(), 10, 3)) is LateMethod
    finally:
        ALGORITHMS.pop("late-method", None)
        ALGORITHMS.pop("late-apart", None)
    assert compared_methods() == before


def test_the_batched_episode_rule_is_the_base_class_s():
    from mtl_meta.gbml import MetaLearner
    from mtl_meta.method import Algorithm
    from mtl_meta.mtl import MTL, MTLTaskHeads
    # written once: no method overrides the dispatch, each defines only its per-episode loss
    for cls in (MetaLearner, MTL, MTLTaskHeads):
        assert "episode_loss" not in cls.__dict__ and "task_loss" in cls.__dict__, cls
    assert Algorithm.supports_one_forward is False and MTL.supports_one_forward is True


def _two_steps_cases():
    return [("mtl", {}, {}), ("mtl", {}, {"one_forward": True}), ("mtl-tasks", {"n_tasks": 6}, {}),
            ("maml", {"inner_steps": 2, "inner_lr": 0.3}, {}), ("fomaml", {"inner_steps": 2, "inner_lr": 0.3}, {}),
            ("anil", {}, {}), ("anil", {"first_order": True, "inner_steps": 2}, {}), ("anil", {"head_init": "zero"}, {})]


class _Clusters:
    "Seeded float64 episodes of 3-way 1x6x6 images from 8 classes (or from a pool of class tuples), as Trainer expects."
    def __init__(self, pool=None):
        self.means = torch.randn(8, 1, 6, 6, generator=torch.Generator().manual_seed(7), dtype=torch.float64)
        self.g, self.pool = torch.Generator().manual_seed(0), pool

    def sample(self):
        if self.pool is not None:
            cls = self.pool[torch.randint(len(self.pool), (1,), generator=self.g).item()]
        else:
            cls = torch.randperm(8, generator=self.g)[:3]
        def draw(k):
            lab = torch.arange(3).repeat_interleave(k)
            return self.means[cls[lab]] + torch.randn(len(lab), 1, 6, 6, generator=self.g, dtype=torch.float64), lab
        (xs, ys), (xq, yq) = draw(2), draw(3)
        return Episode(xs, ys, xq, yq, cls)

    def state_dict(self): return {"g": self.g.get_state()}
    def load_state_dict(self, s): self.g.set_state(s["g"])


def _train_two_steps(name: str, opts: dict, extra: dict) -> dict:
    "The floating-point state of method `name` (options `opts`) after 2 updates of `extra`'s training config."
    from mtl_meta.gbml import make_algorithm
    from mtl_meta.testing import tiny_body
    from mtl_meta.train import TrainConfig, Trainer
    alg = make_algorithm(name, tiny_body(seed=3), n_classes=8, ways=3, **opts).double()
    cfg = TrainConfig(ways=3, shots=2, queries=3, meta_batch_size=2, episodes_per_epoch=4, epochs=1, lr=1e-2, **extra)
    st = Trainer(alg, _Clusters(pool=getattr(alg, "pool", None)), None, cfg).fit(resume=False)
    assert st.step == 2
    return {k: v.double().flatten().tolist() for k, v in alg.state_dict().items() if v.is_floating_point()}


def two_steps() -> dict:
    "Parameters and buffers of each case after 2 updates in the real Trainer (float64, fixed seeds), as lists."
    out, threads = {}, torch.get_num_threads()
    torch.set_num_threads(1)   # as when the reference was made: one summation order
    try:
        for name, opts, extra in _two_steps_cases():
            key = f"{name} {json.dumps(opts, sort_keys=True)} {json.dumps(extra, sort_keys=True)}"
            out[key] = _train_two_steps(name, opts, extra)
    finally:
        torch.set_num_threads(threads)
    return out


def test_two_training_steps_give_the_parameters_of_the_code_before_the_move():
    """MTL, MTL with per-task heads, MAML, first-order MAML and ANIL (three settings) after 2 updates equal what the
    code before issue 24 computed (tests/data/method_two_steps_reference.json, made by running `two_steps` on commit
    bfab751). On the machine that made it the floats are bit-identical; the test allows 1e-9 (float64 parameters;
    MTL's logits are float32), so that another CPU's rounding cannot fail it while any change of what is computed
    moves the parameters by far more."""
    ref = json.loads(REFERENCE.read_text())
    got = two_steps()
    assert set(got) == set(ref["runs"]) and len(got) == 8
    for case, params in ref["runs"].items():
        assert set(got[case]) == set(params), case
        for k, v in params.items():
            torch.testing.assert_close(torch.tensor(got[case][k], dtype=torch.float64),
                                       torch.tensor(v, dtype=torch.float64), rtol=0, atol=1e-9, msg=f"{case} {k}")
    maml = next(k for k in ref["runs"] if k.startswith("maml "))
    assert {"body.0.weight", "head.weight"} <= set(ref["runs"][maml])   # body and head, not only one of them


if __name__ == "__main__":   # make the reference: PYTHONPATH=<checkout before the move> python tests/test_method.py OUT
    torch.set_num_threads(1)
    runs = two_steps()
    Path(sys.argv[1]).write_text(json.dumps({"made_by": "tests/test_method.py two_steps", "module": mtl_meta.__file__,
                                             "runs": runs}, indent=0) + "\n")
    print(f"{len(runs)} runs from {mtl_meta.__file__} -> {sys.argv[1]}")
