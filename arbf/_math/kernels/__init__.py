"""Compiled and native kernels, grouped by job (only :mod:`arbf._math.seam` imports them).

- :mod:`.runtime` — worker threads, BLAS thread limits, the cache-sized chunk plan;
- :mod:`.hard` — the hard assignment and the fused Lloyd sums, column means, the
  tolerance's variance, the relocation's distances;
- :mod:`.bounds` — exact accelerated Lloyd steps (Hamerly, Yinyang, Elkan bounds);
- :mod:`.exp` — a vectorisable ``exp`` for the compiled soft kernels;
- :mod:`.entmax` — the entmax-1.5 threshold and the row kernel;
- :mod:`.soft` — the soft (softmax / entmax-1.5) statistics of one pass;
- :mod:`.segments` — the backends' native segment sums (scatter-adds);
- :mod:`.dask` — one task per row block of a Dask array, running the NumPy kernels.

Every kernel has the contract of a pure function of :mod:`arbf._math.core` (its tested
reference) and never writes into its inputs.
"""
