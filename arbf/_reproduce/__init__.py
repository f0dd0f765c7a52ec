"""``python -m arbf reproduce``: the paper's experiments (SPEC §3) as figures, data and a report.

- :mod:`.protocols` — the σ-wise and initialisation-wise protocols and the center paths;
- :mod:`.table` — the table, the checks of SPEC §1 on it, CSV/JSON writers;
- :mod:`.figures` — the PNG figures (matplotlib, imported lazily);
- :mod:`.runner` — backends, output folder, progress bar, ``report.md``.
"""

from .runner import BACKENDS, DEFAULT, QUICK, ReproduceError, reproduce

__all__ = ["BACKENDS", "DEFAULT", "QUICK", "ReproduceError", "reproduce"]
