"""Every public callable of mtl_meta says what it does: a docstring on each function and class in a module's
`__all__`, and on each public method, property, classmethod and staticmethod of those classes (methods added with
fastcore's `@patch` included, since they live in the class's `__dict__` too)."""
import importlib
import inspect
import pkgutil

import mtl_meta


def public_modules():
    "The modules of mtl_meta whose names do not start with an underscore, imported."
    return [importlib.import_module(f"mtl_meta.{m.name}") for m in pkgutil.iter_modules(mtl_meta.__path__)
            if not m.name.startswith("_")]


def undocumented() -> list[str]:
    "`module.name` (or `module.Class.method`) of each public function, class or method without a docstring."
    missing = []
    for mod in public_modules():
        short = mod.__name__.removeprefix("mtl_meta.")
        for name in getattr(mod, "__all__", []):
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if not (obj.__doc__ or "").strip():   # a class's own __doc__, not one inherited from a base
                missing.append(f"{short}.{name}")
            if inspect.isclass(obj):
                missing += [f"{short}.{name}.{k}" for k, v in vars(obj).items()
                            if not k.startswith("_") and (f := _member_function(v)) is not None
                            and not (f.__doc__ or "").strip()]
    return missing


def _member_function(v):
    "The function behind a class member: a method, a property's getter, a classmethod's or staticmethod's function."
    if inspect.isfunction(v):
        return v
    if isinstance(v, property):
        return v.fget
    if isinstance(v, (classmethod, staticmethod)):
        return v.__func__
    return None


def test_the_walk_finds_the_modules_and_their_methods():
    names = {m.__name__ for m in public_modules()}
    assert {"mtl_meta.api", "mtl_meta.cli", "mtl_meta.train"} <= names
    assert not any(n.rsplit(".", 1)[-1].startswith("_") for n in names)
    from mtl_meta.train import Trainer
    assert inspect.isfunction(vars(Trainer)["state_dict"])   # a `@patch`ed method is in the class's __dict__
    from mtl_meta.train import TrainConfig
    assert _member_function(vars(TrainConfig)["from_dict"]) is TrainConfig.from_dict.__func__
    assert _member_function(vars(Trainer)["checkpoint_path"]) is Trainer.checkpoint_path.fget


def test_every_public_callable_has_a_docstring():
    missing = undocumented()
    assert not missing, f"{len(missing)} public callables lack a docstring: {', '.join(missing)}"
