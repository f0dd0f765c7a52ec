"""The math layer, in three parts with arrows pointing down only.

- the public functions (:mod:`.objectives`, :mod:`.steps`, :mod:`.responsibilities`,
  :mod:`.entmax`, :mod:`.matching`): validate, then call the seam;
- :mod:`.seam`: the one module that decides which implementation runs;
- :mod:`.core` (the pure Array API reference) and :mod:`.kernels` (compiled and native
  kernels, by job), which never import each other.
"""
