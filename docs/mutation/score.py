"""The mutation score of docs/testing.md ("The whole selection, measured") from a mutmut
run directory and the triage files next to this script.

    python docs/mutation/score.py /path/to/run   # the directory holding mutants/

Per module: mutants, tested, killed by the run, killed by the tests added after it
(triage ``killed``), equivalent, still open, the score (killed / tested) and, over the
random sample of the untested mutants (``sample_f670887.txt``), tested / killed; then
the whole-selection estimate (each module's untested mutants at its sample rate).
"""

from __future__ import annotations

import collections
import glob
import json
import pathlib
import sys

HERE = pathlib.Path(__file__).parent


def verdicts() -> dict[str, str]:
    """Mutant name -> verdict, from every ``triage_*.tsv`` next to this script."""
    verdict: dict[str, str] = {}
    for f in sorted(HERE.glob("triage_*.tsv")):
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 2 and parts[0].strip():
                verdict[parts[0].strip()] = parts[1].strip()
    return verdict


def main(run: str) -> None:
    verdict = verdicts()
    sample = set((HERE / "sample_f670887.txt").read_text().split())
    total = collections.Counter()
    est_killed = 0.0
    print(f"{'module':30} {'mut':>5} {'test':>5} {'kill':>5} {'new':>4} {'equiv':>5} "
          f"{'open':>4} {'score':>6}  sample t/k")  # fmt: skip
    for meta in sorted(glob.glob(f"{run}/mutants/arbf/**/*.py.meta", recursive=True)):
        mod = meta.split("/mutants/arbf/")[1][: -len(".py.meta")]
        c: collections.Counter[str] = collections.Counter()
        for key, code in json.load(open(meta))["exit_code_by_key"].items():
            c["mutants"] += 1
            if code is None:
                c["untested"] += 1
                continue
            c["tested"] += 1
            killed = code != 0 or verdict.get(key) == "killed"
            c["killed"] += code != 0
            c["new"] += code == 0 and verdict.get(key) == "killed"
            c["equiv"] += code == 0 and verdict.get(key) == "equivalent"
            c["open"] += code == 0 and verdict.get(key) not in ("killed", "equivalent")
            if key in sample:
                c["s_tested"] += 1
                c["s_killed"] += killed
            else:
                c["rest_killed"] += killed
        if not c["mutants"]:
            continue
        rate = c["s_killed"] / c["s_tested"] if c["s_tested"] else 1.0
        est_killed += c["rest_killed"] + rate * (c["s_tested"] + c["untested"])
        total.update(c)
        score = 100 * (c["killed"] + c["new"]) / c["tested"] if c["tested"] else float("nan")
        sampled = f"{c['s_tested']}/{c['s_killed']}"
        print(f"{mod:30} {c['mutants']:5} {c['tested']:5} {c['killed']:5} {c['new']:4} "
              f"{c['equiv']:5} {c['open']:4} {score:6.1f}  {sampled}")  # fmt: skip
    t = total
    print(f"tested {t['tested']} of {t['mutants']}: killed {t['killed']} by the run, "
          f"{t['killed'] + t['new']} ({100 * (t['killed'] + t['new']) / t['tested']:.1f} %) "
          f"with the new tests; {t['equiv']} equivalent, {t['open']} open")  # fmt: skip
    print(f"sample: {t['s_killed']} of {t['s_tested']} killed; whole selection "
          f"estimated {100 * est_killed / t['mutants']:.1f} % killed")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
