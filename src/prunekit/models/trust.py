"""Which model names read from a file may be built: trusted sources always, a user's factory only on request.

A checkpoint folder is data, not code. Its ``model.json`` may name a zoo model or a trusted source
(``torchvision:``, ``timm:``, ...: see :data:`prunekit.models.MODEL_SOURCES`); a
``package.module:function`` factory named there is imported only when the user names it again
(``model_factory=`` / ``--model-factory``) or trusts every factory (``trust_factory=True`` /
``--trust-factory``), either per call or for a block of code with :func:`trusting`.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterable, Iterator

from prunekit.errors import PrunekitError
from prunekit.models.factory import shown

_TRUST: ContextVar[tuple[frozenset[str], bool]] = ContextVar("prunekit_factory_trust", default=(frozenset(), False))


@contextmanager
def trusting(factories: Iterable[str] | str | None = (), trust_all: bool = False) -> Iterator[None]:
    """Within the block, checkpoints may build their model with these factories (or any, with ``trust_all``)."""
    names = {factories} if isinstance(factories, str) else set(factories or ())
    old_names, old_all = _TRUST.get()
    token = _TRUST.set((frozenset(old_names | names), old_all or trust_all))
    try:
        yield
    finally:
        _TRUST.reset(token)


def check_trusted(name: str, origin: str, model_factory: str | Iterable[str] | None = None,
                  trust_factory: bool = False, kind: str = "a checkpoint folder") -> None:
    """Raise unless ``name`` (read from ``origin``) is a trusted source or a factory the user allowed.

    Call it before building anything: nothing is imported here.
    """
    from prunekit.models.registry import is_user_factory

    if not is_user_factory(name):
        return
    given = {model_factory} if isinstance(model_factory, str) else set(model_factory or ())
    context_names, context_all = _TRUST.get()
    if trust_factory or context_all or name in given | context_names:
        return
    what = shown(name)
    if given | context_names:
        others = ", ".join(sorted(shown(n) for n in given | context_names))
        raise PrunekitError(f"{origin} asks to import {what} to build its model, not {others}: pass --model-factory "
                            f"{what} (Python: model_factory=...) if you trust it")
    raise PrunekitError(f"{origin} asks to import {what} to build its model; {kind} is data, not code: "
                        f"pass --model-factory {what} (or --trust-factory; Python: model_factory= or "
                        "trust_factory=True) if you trust it")


def allowed(name: str) -> bool:
    """Whether the current :func:`trusting` block lets files name ``name`` (a user's ``package.module:function``
    loss, metric or factory): named in it, or every name trusted."""
    names, trust_all = _TRUST.get()
    return trust_all or name in names
