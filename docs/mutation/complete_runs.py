"""The per-module table of the complete runs on 9dfd96f (docs/testing.md) from the
results files and the triage files next to this script.

    python docs/mutation/complete_runs.py

Each ``results_9dfd96f_*.tsv`` line is ``name<TAB>status<TAB>exit code[<TAB>filed as]``
(``filed as``: the name a survivor's verdict is filed under in ``triage_*.tsv`` when it
is not the mutant's own).  A timeout counts as killed (the mutant never ends).
"""

from __future__ import annotations

import collections
import math
import pathlib

from score import verdicts  # the script's directory is on sys.path

HERE = pathlib.Path(__file__).parent


def main() -> None:
    verdict = verdicts()
    by_mod: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    for f in sorted(HERE.glob("results_9dfd96f_*.tsv")):
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            name, status = parts[0], parts[1]
            c = by_mod[name.split(".x", 1)[0].removeprefix("arbf.")]
            c["mutants"] += 1
            if status == "not run":
                c["not run"] += 1
                continue
            c["tested"] += 1
            if status != "survived":
                c["killed"] += 1
                continue
            c["survived"] += 1
            filed = parts[3] if len(parts) > 3 and parts[3] else name
            c["v_" + verdict.get(filed, "undecided")] += 1
    cols = ["mutants", "tested", "killed", "survived", "v_killed", "v_equivalent",
            "v_undecided", "not run"]  # fmt: skip
    head = ["mutants", "tested", "killed by the suite", "survived", "killed by new tests",
            "equivalent", "undecided", "not run"]  # fmt: skip
    print("| module | " + " | ".join(head) + " | killed / tested |")
    print("|---|" + "---:|" * (len(cols) + 1))
    total: collections.Counter[str] = collections.Counter()
    for c in by_mod.values():
        total.update(c)
    for mod, c in [*sorted(by_mod.items()), ("all", total)]:
        score = 100 * (c["killed"] + c["v_killed"]) / c["tested"] if c["tested"] else math.nan
        print(f"| `{mod}` | " + " | ".join(f"{c[k]:,}" for k in cols) + f" | {score:.1f} % |")


if __name__ == "__main__":
    main()
