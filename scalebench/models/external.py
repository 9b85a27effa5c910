"""Models from outside the zoo: a factory in a file, in an importable module, or in an installed package.

A *model reference* names a factory, ``factory(*, num_classes, in_channels, **config) -> nn.Module``:

- ``path/to/file.py:factory``: a Python file, loaded under a private module name (its folder is put on
  ``sys.path`` while it loads, so it may import its neighbours);
- ``package.module:factory``: an importable module;
- an installed package registers its models in the entry-point group :data:`ENTRY_POINT_GROUP`
  (``[project.entry-points."scalebench.models"]``), the way pytest plugins and timm do: each entry point is
  a callable that registers models with :func:`scalebench.models.register_model`
  (:func:`load_entry_points`).

**Importing a model runs its code.** scalebench does it only when a user names the model on the command line
or in Python; ``submit``, ``leaderboard build`` and ``leaderboard validate`` never import anything a results
file names, and verifying a run whose model lives outside scalebench needs ``--trust-model-code``.

Every model has a :class:`ModelSource`: where its code comes from and a sha256 of that code, so that a changed
architecture gives a new run identity (``docs/own-model.md``):

- a file: the sha256 of the file, with the neighbour files it imports (:func:`source_sha256`);
- a module: the sha256 of the module's file and the neighbours it imports, plus its distribution's name and version when it belongs to an
  installed package;
- the zoo: scalebench's version and the sha256 of the builder's module and every ``scalebench.models`` module
  it imports, transitively (:func:`zoo_source`).

:func:`structure_sha256` fingerprints a built network by its parameter and buffer names and shapes.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import inspect
import re
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path
from typing import Any, Literal

from scalebench.checks import ScalebenchError

#: The entry-point group through which installed packages register models.
ENTRY_POINT_GROUP = "scalebench.models"

SourceKind = Literal["zoo", "file", "module", "entry_point"]


@dataclass(frozen=True)
class ModelSource:
    """Where a model's code comes from: ``kind``, the ``reference`` to import it again, the ``sha256`` of its
    source, and the distribution (name, version) of an installed package, if any."""

    kind: SourceKind
    reference: str
    sha256: str | None = None
    distribution: str | None = None
    version: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_reference(name: str) -> bool:
    """True when ``name`` is a model reference (``file.py:factory`` or ``module:factory``), not a zoo name.

    Example:
        >>> is_reference("gaussdernet"), is_reference("my_model.py:build"), is_reference("pkg.mod:make")
        (False, True, True)
    """
    return ":" in name


def _sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


#: At most this many neighbour files enter a source hash (a guard against a folder of generated code).
MAX_NEIGHBOURS = 200


def _neighbour(folder: Path, dotted: str) -> Path | None:
    """The file of module ``dotted`` inside ``folder`` (``a.b`` -> ``a/b.py`` or ``a/b/__init__.py``), if any."""
    base = folder.joinpath(*dotted.split(".")) if dotted else folder
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if dotted and candidate.is_file():
            return candidate.resolve()
    return None


def _imported_neighbours(path: Path) -> list[Path]:
    """The files next to ``path`` (or in its package, for relative imports) that it imports, read with
    :mod:`ast` (nothing is executed)."""
    import ast

    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
    except (SyntaxError, ValueError):
        return []  # importing the file reports the error
    found: list[Path] = []
    for node in ast.walk(tree):
        names: list[tuple[Path, str]] = []
        if isinstance(node, ast.Import):
            names = [(path.parent, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            folder = path.parent
            for _ in range(max(0, node.level - 1)):
                folder = folder.parent
            module = node.module or ""
            names = [(folder, module)] + [(folder, f"{module}.{a.name}".strip(".")) for a in node.names]
        for folder, dotted in names:
            parts = dotted.split(".")
            for i in range(1, len(parts) + 1):  # a.b.c imports a, a.b and a.b.c
                hit = _neighbour(folder, ".".join(parts[:i]))
                if hit is not None:
                    found.append(hit)
    return found


def source_sha256(path: Path) -> str:
    r"""sha256 of a model file's code: the file's own sha256 when it imports no neighbour file, else the sha256
    of the sorted lines ``<relative path> <sha256>`` of the file and every neighbour it imports, transitively
    (so editing a helper module next to the model gives a new run identity too).

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "m.py").write_text("x = 1\n")
        >>> source_sha256(d / "m.py") == hashlib.sha256(b"x = 1\n").hexdigest()
        True
    """
    path = path.resolve()
    seen, todo = {path}, [path]
    while todo and len(seen) <= MAX_NEIGHBOURS:
        for hit in _imported_neighbours(todo.pop()):
            if hit not in seen:
                seen.add(hit)
                todo.append(hit)
    if len(seen) == 1:
        return _sha256_file(path)
    root = Path(*_common_parts(seen))
    lines = sorted(f"{p.relative_to(root).as_posix()} {_sha256_file(p)}" for p in seen)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def _common_parts(paths: set[Path]) -> tuple[str, ...]:
    parts = [p.parent.parts for p in paths]
    common: list[str] = []
    for level in zip(*parts, strict=False):
        if len(set(level)) != 1:
            break
        common.append(level[0])
    return tuple(common)


def _split(reference: str) -> tuple[str, str]:
    target, sep, attr = reference.rpartition(":")
    if not sep or not target or not attr.isidentifier():
        raise ScalebenchError(
            f"Model reference {reference!r} must be FILE.py:FACTORY or MODULE:FACTORY, e.g. my_model.py:build "
            "or my_package.models:build."
        )
    return target, attr


def _load_file(path: Path) -> Any:
    """Import the Python file ``path`` under a private module name (one module per file content)."""
    if not path.is_file():
        raise ScalebenchError(
            f"Model file {str(path)!r} does not exist; give FILE.py:FACTORY with an existing file."
        )
    name = f"scalebench_user_model_{_sha256_file(path)[:16]}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ScalebenchError(f"Cannot import {path} as a Python file; give FILE.py:FACTORY.")
    module = importlib.util.module_from_spec(spec)
    folder = str(path.parent)
    sys.path.insert(0, folder)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as err:  # the user's code: any error is theirs, reported as one line
        del sys.modules[name]
        raise ScalebenchError(f"Importing model file {path} failed: {type(err).__name__}: {err}") from None
    finally:
        sys.path.remove(folder)
    return module


def _provides(dist: importlib.metadata.Distribution, top: str) -> bool:
    """``dist`` installs the top-level module ``top`` (its ``top_level.txt`` or RECORD says so), or is an
    editable install of a project of that name (whose files live in the project folder)."""
    listed = (dist.read_text("top_level.txt") or "").split()
    files = dist.files or []
    return (
        top in listed
        or any(f.parts and f.parts[0] in (top, f"{top}.py") for f in files)
        or '"editable": true' in (dist.read_text("direct_url.json") or "")
    )


def _distribution(module_name: str, file: str | None = None) -> tuple[str | None, str | None]:
    """(distribution name, version) of the installed package that provides ``module_name``, if any.

    The distribution named like the top-level package is looked up first (about 1 ms, also for editable
    installs); the full scan of every installed distribution (``packages_distributions``, about 140 ms) runs
    only for a module file inside a ``site-packages`` / ``dist-packages`` folder, where the names may differ.
    """
    top = module_name.split(".")[0]
    for candidate in dict.fromkeys((top, top.replace("_", "-"))):
        try:
            dist = importlib.metadata.distribution(candidate)
        except importlib.metadata.PackageNotFoundError:
            continue
        if _provides(dist, top):
            return dist.metadata["Name"] or candidate, dist.version
    installed = file is not None and any(p in ("site-packages", "dist-packages") for p in Path(file).parts)
    names = importlib.metadata.packages_distributions().get(top) or [] if installed else []
    if not names:
        return None, None
    try:
        return names[0], importlib.metadata.version(names[0])
    except importlib.metadata.PackageNotFoundError:
        return names[0], None


def load_factory(reference: str) -> tuple[Callable[..., Any], ModelSource]:
    """The factory a reference names and its :class:`ModelSource`. Imports the user's code (see the module doc).

    Every failure is one ScalebenchError naming the file or module and the factory: a missing file or
    module, a module that raises while importing, a missing attribute, an attribute that is not callable.
    """
    target, attr = _split(reference)
    if target.endswith(".py"):
        path = Path(target).expanduser().resolve()
        module = _load_file(path)
        source = ModelSource("file", f"{path}:{attr}", source_sha256(path))
    else:
        try:
            module = importlib.import_module(target)
        except ModuleNotFoundError as err:
            raise ScalebenchError(
                f"Model module {target!r} cannot be imported ({err}); install it or give FILE.py:FACTORY."
            ) from None
        except Exception as err:
            raise ScalebenchError(
                f"Importing model module {target!r} failed: {type(err).__name__}: {err}"
            ) from None
        file = getattr(module, "__file__", None)
        dist, version = _distribution(target, file)
        source = ModelSource(
            "module",
            reference,
            source_sha256(Path(file)) if file else None,
            distribution=dist,
            version=version,
        )
    factory = getattr(module, attr, None)
    if factory is None:
        raise ScalebenchError(
            f"{target} has no attribute {attr!r}; the reference {reference!r} names a factory."
        )
    if not callable(factory):
        raise ScalebenchError(f"{reference} is a {type(factory).__name__}, not a callable factory.")
    return factory, source


def _find_spec(name: str) -> Any:
    """``importlib.util.find_spec`` that answers None for a name that is not a module (an imported function)."""
    try:
        return importlib.util.find_spec(name)
    except (ImportError, ValueError, AttributeError):
        return None


#: ``from scalebench.models.x import a, b`` / ``from scalebench.models import x`` / ``import scalebench.models.x``
_IMPORT = re.compile(
    r"^[ \t]*from[ \t]+(scalebench\.models[\w.]*)[ \t]+import[ \t]+(?:\(([\w\s,]+)\)|([\w, \t]+))"
    r"|^[ \t]*import[ \t]+(scalebench\.models[\w.]*)",
    re.M,
)


def _imported_model_modules(module_name: str) -> set[str]:
    """``module_name`` and every ``scalebench.models`` module it imports, transitively (read from the source)."""
    seen: set[str] = set()
    todo = [module_name]
    while todo:
        name = todo.pop()
        if name in seen or not name.startswith("scalebench.models.") or name == "scalebench.models.zoo":
            continue  # the package's __init__ and zoo import every model: they are not a model's code
        spec = _find_spec(name)
        if spec is None or not spec.origin or not spec.origin.endswith(".py"):
            continue
        seen.add(name)
        for frm, grouped, names, imp in _IMPORT.findall(Path(spec.origin).read_text()):
            if imp:
                todo.append(imp)
                continue
            todo.append(frm)
            for item in (grouped or names).split(","):
                if item.strip():
                    todo.append(f"{frm}.{item.split()[0]}")
    return seen


@cache
def _modules_sha256(module_name: str) -> str:
    digest = hashlib.sha256()
    for name in sorted(_imported_model_modules(module_name)):
        spec = _find_spec(name)
        if spec is not None and spec.origin and spec.origin.endswith(".py"):
            digest.update(name.encode() + b"\0" + Path(spec.origin).read_bytes() + b"\0")
    return digest.hexdigest()


def zoo_source(builder: Callable[..., Any]) -> ModelSource:
    """The :class:`ModelSource` of a zoo builder: scalebench's version and the sha256 of the sources of its
    module and of every ``scalebench.models`` module that module imports (so an edit of a shared layer, e.g.
    ``scalespace.py``, changes the identity of every model built on it)."""
    from scalebench import __version__

    module = inspect.getmodule(builder)
    name = module.__name__ if module is not None else builder.__module__
    qual = getattr(builder, "__qualname__", getattr(builder, "__name__", "builder"))
    return ModelSource("zoo", f"{name}:{qual}", _modules_sha256(name), "scalebench", __version__)


def module_source(builder: Callable[..., Any]) -> ModelSource:
    """The :class:`ModelSource` of a builder registered from a module outside ``scalebench.models`` (an installed
    package's entry point, or a test): the sha256 of its module's file and its distribution, if installed."""
    module = inspect.getmodule(builder)
    name = module.__name__ if module is not None else builder.__module__
    file = getattr(module, "__file__", None)
    qual = getattr(builder, "__qualname__", getattr(builder, "__name__", "builder"))
    sha = source_sha256(Path(file)) if file and Path(file).is_file() else None
    if (name == "__main__" or name.startswith("scalebench_user_model_")) and file:
        return ModelSource("file", f"{Path(file).resolve()}:{qual}", sha)  # a script: imported again by path
    dist, version = _distribution(name, file)
    kind: SourceKind = "entry_point" if dist is not None else "module"
    return ModelSource(kind, f"{name}:{qual}", sha, dist, version)


def structure_sha256(model: Any) -> str:
    """sha256 of a network's structure: the names and shapes of its parameters and persistent buffers.

    Example:
        >>> import torch
        >>> structure_sha256(torch.nn.Linear(2, 3)) == structure_sha256(torch.nn.Linear(2, 3))
        True
        >>> structure_sha256(torch.nn.Linear(2, 3)) == structure_sha256(torch.nn.Linear(3, 3))
        False
    """
    text = "\n".join(f"{k}:{tuple(v.shape)}" for k, v in sorted(model.state_dict().items()))
    return hashlib.sha256(text.encode()).hexdigest()


def load_entry_points(register: Callable[[str, Any], None] | None = None) -> list[str]:
    """Run every entry point of :data:`ENTRY_POINT_GROUP` (installed packages' model registrations).

    An entry point's object is called with no argument (a function that calls ``register_model``), or is
    itself registered by ``register(name, obj)`` when it is a factory that has a ``card`` attribute. A plugin
    that fails to load is one ScalebenchError naming it and its distribution. Returns the names loaded.
    """
    loaded = []
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
        try:
            obj = ep.load()
            if register is not None and hasattr(obj, "card"):
                register(ep.name, obj)
            else:
                obj()
        except ScalebenchError:
            raise
        except Exception as err:
            raise ScalebenchError(
                f"The scalebench.models entry point {ep.name!r} of {dist} failed to load: {type(err).__name__}: "
                f"{err}. Fix or uninstall that package."
            ) from None
        loaded.append(ep.name)
    return loaded
