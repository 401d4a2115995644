"""Compiled loops: the one place that asks numba to compile a kernel, and says what happens without it.

Some kernels are loops whose every step is a handful of arithmetic operations (a Frank-Wolfe step,
one grid point of a test inversion): in numpy each step costs more in calls than in arithmetic.
Such a kernel is written as plain loops over arrays and compiled here with numba on first use,
cached on disk (numba's ``cache=True``: only the first call on a machine pays the compilation,
a second or two). Where numba cannot be imported, :func:`jit` returns ``None`` and the caller runs
its numpy implementation, which the tests hold equal to the compiled one.

Examples
--------
>>> import numpy as np
>>> def total(x):
...     s = 0.0
...     for v in x:
...         s += v
...     return s
>>> fn = jit(total, cache=False)
>>> (fn or total)(np.arange(4.0))
6.0
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

__all__ = ["available", "jit"]


@functools.cache
def _numba() -> Any | None:
    try:
        import numba
    except ImportError:  # the numpy implementations take over
        return None
    return numba


def available() -> bool:
    """Whether kernels are compiled (numba can be imported).

    Examples
    --------
    >>> isinstance(available(), bool)
    True
    """
    return _numba() is not None


@functools.cache
def _compile(fn: Callable[..., Any], cache: bool) -> Any:
    return _numba().njit(cache=cache, nogil=True)(fn)


def jit(fn: Callable[..., Any], *, cache: bool = True) -> Callable[..., Any] | None:
    """``fn`` compiled by numba (once per process, cached on disk), or ``None`` without numba.

    ``fn`` must be a module-level function of plain loops over numpy arrays (numba's nopython mode).
    """
    if _numba() is None:
        return None
    return _compile(fn, cache)
