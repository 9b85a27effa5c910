"""Keyword groups that several networks share, declared once.

A network's config is the keyword parameters of its constructor: the registry reads them, with their
defaults, through :func:`inspect.signature` (:func:`scalebench.models.registry.builder_defaults`). Where
several networks take the same group of keywords (the plain CNN's layout, the head of the scale-equivariant
CNNs, the parameters of the N-Jet layer), the group is declared once, as the keyword parameters of the one
function or class that consumes it, and each network takes it as ``**group``. :func:`takes_keywords_of`
writes the group into the network's signature (so that the registry, ``help()`` and the cards see every key
with its default) and fills the defaults in when the network is built.
"""

import functools
import inspect
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T", bound=type)

_KW = inspect.Parameter.KEYWORD_ONLY


def shared_keywords(source: Callable[..., Any], *, exclude: tuple[str, ...] = ()) -> list[inspect.Parameter]:
    """The keyword-only parameters of ``source`` that have a default, less ``exclude``, in signature order."""
    return [
        p
        for p in inspect.signature(source).parameters.values()
        if p.kind is _KW and p.default is not inspect.Parameter.empty and p.name not in exclude
    ]


def takes_keywords_of(
    source: Callable[..., Any], *, exclude: tuple[str, ...] = (), **defaults: Any
) -> Callable[[T], T]:
    """Class decorator: the class's ``__init__`` takes the keyword group of ``source`` as ``**kwargs``.

    The group's parameters (those of :func:`shared_keywords`, with ``defaults`` replacing their defaults) enter
    the constructor's signature after its own keywords without a default (``num_classes``, ``in_channels``) and
    before its own keywords with one; the wrapped ``__init__`` binds the call to that signature, so an unknown
    or missing keyword fails as in any Python call, and passes every group keyword, defaults filled in.

    Example:
        >>> def layout(*, width: int = 8, depth: int = 2) -> None: ...
        >>> @takes_keywords_of(layout, depth=3)
        ... class Net:
        ...     def __init__(self, *, num_classes: int, bias: bool = True, **group: Any) -> None:
        ...         self.group = group
        >>> str(inspect.signature(Net))
        '(*, num_classes: int, width: int = 8, depth: int = 3, bias: bool = True) -> None'
        >>> Net(num_classes=2, width=4).group
        {'width': 4, 'depth': 3}
    """
    group = shared_keywords(source, exclude=exclude)
    unknown = set(defaults) - {p.name for p in group}
    if unknown:
        raise TypeError(f"{sorted(unknown)} are not keywords of {source.__qualname__}")
    group = [p.replace(default=defaults.get(p.name, p.default)) for p in group]

    def wrap(cls: T) -> T:
        init = cls.__init__
        own = [p for p in inspect.signature(init).parameters.values() if p.kind is not p.VAR_KEYWORD]
        required = [p for p in own if p.kind is not _KW or p.default is inspect.Parameter.empty]
        optional = [p for p in own if p.kind is _KW and p.default is not inspect.Parameter.empty]
        full = inspect.signature(init).replace(parameters=[*required, *group, *optional])

        @functools.wraps(init)
        def __init__(*args: Any, **kwargs: Any) -> None:
            bound = full.bind(*args, **kwargs)
            bound.apply_defaults()
            init(**bound.arguments)

        __init__.__signature__ = full  # type: ignore[attr-defined]
        cls.__init__ = __init__  # type: ignore[misc]
        return cls

    return wrap
