"""Kernel modules of an older commit, loaded next to the current ones for an in-process
A/B (the ``ab_*.py`` scripts): ``git show COMMIT:path`` is written into a temporary file
in ``arbf/_math/kernels`` (so its relative imports resolve) and imported under its own
name; on exit the files and their numba cache files are removed.  Run from a clone with
history."""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

from arbf._math import kernels

KERNELS = Path(kernels.__file__).parent


@contextlib.contextmanager
def old_kernels(commit: str) -> Iterator[Callable[[str, str], ModuleType]]:
    """``with old_kernels("abc1234") as load: old = load("_ab_soft_old",
    "arbf/_math/kernels/soft.py")``."""
    made: list[Path] = []

    def load(name: str, git_path: str) -> ModuleType:
        src = subprocess.check_output(["git", "show", f"{commit}:{git_path}"], text=True)
        path = KERNELS / f"{name}.py"
        path.write_text(src)
        made.append(path)
        spec = importlib.util.spec_from_file_location(f"arbf._math.kernels.{name}", path)
        assert spec is not None and spec.loader is not None
        mod = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = mod
        spec.loader.exec_module(mod)
        return mod

    try:
        yield load
    finally:
        for path in made:
            path.unlink(missing_ok=True)
            for cached in (KERNELS / "__pycache__").glob(f"{path.stem}.*"):
                cached.unlink(missing_ok=True)
