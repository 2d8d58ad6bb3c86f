"""UI strings of one page each, merged into :mod:`kakehashi.web.i18n` at import.

A page module holds ``EN`` (Japanese text → English, for templates), ``JS`` (id → Japanese, for the page's
script), ``JS_EN`` (id → English) and optionally ``JA_KEYS`` (code-like keys → Japanese). Keeping each
page's strings in its own module lets pages grow without one huge table.
"""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType


def page_modules() -> list[ModuleType]:
    """Every string module in this package, in name order."""
    return [
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name)
    ]
