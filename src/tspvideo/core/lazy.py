"""Names a package hands on without importing the modules that hold them until they are used.

A package's ``__init__`` that imported its heavy modules would load torch for every import of a light
module inside it (``tspvideo.train.config`` runs ``tspvideo/train/__init__.py`` first).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, names: dict[str, tuple[str, str]],
               also: tuple[str, ...] = ()) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for a package: ``names`` maps a public name to (module, name there);
    ``also``: the package's own names, listed by ``dir()`` too."""

    def getattr_(name: str) -> object:
        if name not in names:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        module, attribute = names[name]
        return getattr(importlib.import_module(module), attribute)

    def dir_() -> list[str]:
        return sorted([*names, *also])

    return getattr_, dir_
