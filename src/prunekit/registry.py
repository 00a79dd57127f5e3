"""Name -> factory registries (models, datasets, criteria), in the style of timm's ``register_model``."""

from __future__ import annotations

from typing import Callable, Generic, Iterator, TypeVar

from prunekit.errors import UnknownNameError

T = TypeVar("T", bound=Callable)


class Registry(Generic[T]):
    """A named collection of callables; ``register`` is a decorator that adds one."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}
        self._canonical: dict[str, str] = {}

    def register(self, name: str | None = None, *aliases: str) -> Callable[[T], T]:
        """Decorator: add ``fn`` under ``name`` (default: its ``__name__``) and any aliases."""

        def add(fn: T) -> T:
            for key in (name or fn.__name__, *aliases):
                if key in self._items:
                    raise ValueError(f"{self.kind} {key!r} is registered twice")
                self._items[key] = fn
                self._canonical[key] = name or fn.__name__
            return fn

        return add

    def get(self, name: str) -> T:
        """The callable registered as ``name``; an unknown name raises with the list of valid ones."""
        try:
            return self._items[name]
        except KeyError:
            raise UnknownNameError(
                f"unknown {self.kind} {name!r}; valid {self.kind}s: {', '.join(self.names())}"
            ) from None

    def canonical(self, name: str) -> str:
        """The name ``name`` is an alias of (itself if it is not one)."""
        return self._canonical.get(name, name)

    def names(self) -> list[str]:
        """All registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
