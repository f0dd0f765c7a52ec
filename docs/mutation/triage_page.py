"""Write docs/mutation_triage.md from the triage files next to this script.

    python docs/mutation/triage_page.py

Each ``triage_*.tsv`` holds one line per surviving mutant: ``name<TAB>verdict<TAB>reason``
(verdict ``killed``, ``equivalent``, ``undecided`` or ``original fixed``; for ``killed``
the reason names the test).  The page lists the verdict counts, the reasons given for
three or more mutants, then every survivor by module.
"""

from __future__ import annotations

import collections
import pathlib

HERE = pathlib.Path(__file__).parent
PAGE = HERE.parent / "mutation_triage.md"

INTRO = """\
# Mutation survivors: the triage

This page lists every mutant that survived the mutation run of 2026-12-02 (mutmut 3.8.1 on
f670887, NumPy + array-api-strict, Hypothesis profile `mutation`; see {doc}`testing`,
"Mutation testing") and what became of it:

- **killed**: a test added after the run fails under this mutant (each one checked by
  running the named test with `MUTANT_UNDER_TEST=<mutant>` in a `mutants/` directory that
  mutmut generated, and passing without it);
- **equivalent**: no valid input on any backend tells the mutant from the original by
  its result; the reason is given.  *PERFORMANCE-only* marks mutants that change only how
  the work is done (rows per chunk, which of two implementations tested equal runs,
  an optional precomputed value the callee recomputes);
- **undecided**: neither shown killable nor shown equivalent.

The mutant names are mutmut's (`x_<function>__mutmut_<n>`; methods
`xǁ<Class>ǁ<method>__mutmut_<n>`), numbered as mutmut numbered them on f670887 with that
commit's test selection; `mutmut show <name>` in a run directory prints the change.  (A
later test selection covers more lines of `core/monotone.py`, so mutmut numbers some of
its mutants differently on later commits: the triage of the survivors of the third stop
was done on 6ca6bea's numbering and mapped back, mutant by mutant, by the mutated
function's text.)  The survivors of the complete runs of seven modules on 9dfd96f
(`core/distances.py`, `core/soft.py`, `core/responsibilities.py`, `core/matching.py`,
`core/segments.py`, `core/updates.py`, `fixed_point.py`; `triage_head1.tsv`) carry that
run's numbers, which are f670887's: those modules did not change in between, and mutmut
made as many mutants of each.  The complete runs of `_drivers/engine.py`, `_math/seam.py`
and `core/monotone.py` on 9dfd96f number their mutants differently from f670887 (those
modules changed, or the test selection covers more of their lines): a seam or monotone
survivor whose mutated function is, text for text, a mutant already decided on f670887
keeps that verdict under its f670887 name (matched by the function's body against a tree
mutmut generated on f670887; `results_9dfd96f_engine_seam_monotone.tsv` gives, for every
survivor, the name its verdict is filed under); the others, and every survivor of the
engine (no f670887 tree of it was at hand), are listed with their 9dfd96f number and the
suffix `@9dfd96f` (`triage_head2.tsv`).  This page is written by
`python docs/mutation/triage_page.py`.
"""


def _module(name: str) -> str:
    return name.rsplit(".", 1)[0]


def _order(row: tuple[str, str, str]) -> tuple[str, int]:
    function, _, number = row[0].rpartition("__mutmut_")
    number = number.split("@")[0]  # "12@9dfd96f": numbered on that commit
    return function, int(number) if number.isdigit() else -1


def main() -> None:
    rows: list[tuple[str, str, str]] = []
    for f in sorted(HERE.glob("triage_*.tsv")):
        for line in f.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0].strip():
                rows.append((parts[0].strip(), parts[1].strip(), parts[2].strip()))
    names = [r[0] for r in rows]
    dup = [n for n, c in collections.Counter(names).items() if c > 1]
    if dup:
        raise SystemExit(f"mutants triaged twice: {dup[:5]}")
    out = [INTRO, "| verdict | count |", "|---|---:|"]
    for verdict, c in collections.Counter(r[1] for r in rows).most_common():
        out.append(f"| {verdict} | {c} |")
    out += ["", "## The most frequent reasons for equivalence", "",
            "| reason | mutants |", "|---|---:|"]  # fmt: skip
    reasons = collections.Counter(r[2] for r in rows if r[1] == "equivalent")
    for reason, c in reasons.most_common():
        if c >= 3:
            out.append(f"| {reason.replace('|', chr(92) + '|')} | {c} |")
    out += ["", "Reasons given for fewer than three mutants are in the lists below.", ""]
    by_mod: dict[str, list[tuple[str, str, str]]] = collections.defaultdict(list)
    for r in rows:
        by_mod[_module(r[0])].append(r)
    for mod in sorted(by_mod):
        rs = sorted(by_mod[mod], key=_order)
        counts = collections.Counter(r[1] for r in rs).most_common()
        summary = ", ".join(f"{c} {v}" for v, c in counts)
        out += [f"## `{mod}`", "", f"{len(rs)} survivors: {summary}.", "",
                "| mutant | verdict | test that kills it, or the reason |",
                "|---|---|---|"]  # fmt: skip
        for name, verdict, reason in rs:
            out.append(f"| `{name}` | {verdict} | {reason.replace('|', chr(92) + '|')} |")
        out.append("")
    PAGE.write_text("\n".join(out).rstrip() + "\n")
    print(f"{PAGE}: {len(rows)} survivors")


if __name__ == "__main__":
    main()
