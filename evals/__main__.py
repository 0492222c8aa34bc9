"""``python -m evals``: ask the offline code-search agent the questions in ``evals/questions.json`` and
print a score per kind (see evals/README.md).

Options: ``--subset ci`` (the quick set CI runs), ``--kind KIND`` (repeatable), ``--json`` (one JSON
object instead of the table), ``--show-failures``, ``--cache-dir DIR`` (where the code indexes go;
default: a temporary directory, so every run starts cold), ``--min-overall 0.9 --min-concept 0.8``
(exit 1 below these).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time

from evals.runner import load_questions, run_questions, score_table


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals", description=__doc__.splitlines()[0])
    parser.add_argument("--subset", choices=["all", "ci"], default="all")
    parser.add_argument("--kind", action="append", default=[])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--show-failures", action="store_true")
    parser.add_argument("--cache-dir")
    parser.add_argument("--min-overall", type=float, default=0.0)
    parser.add_argument("--min-concept", type=float, default=0.0)
    parser.add_argument("--questions", help="another questions file of the same shape (a held-out set)")
    args = parser.parse_args(argv)
    questions = load_questions(args.questions, subset=args.subset, kinds=args.kind)
    with tempfile.TemporaryDirectory(prefix="agentcore-evals-") as tmp:
        started = time.perf_counter()
        results = run_questions(questions, cache_dir=args.cache_dir or tmp)
        elapsed = time.perf_counter() - started
    table = score_table(results)
    if args.json:
        print(json.dumps({**table, "seconds": round(elapsed, 1)}, sort_keys=True))
    else:
        for kind, row in table["kinds"].items():
            print(f"{kind:18} {row['correct']:3}/{row['total']:<3} {row['score']:.0%}")
        print(f"{'overall':18} {table['correct']:3}/{table['total']:<3} {table['score']:.0%}   ({elapsed:.1f} s)")
    if args.show_failures:
        for r in results:
            if not r.ok:
                print(f"\n[{r.id}] {r.question[:120]}\n  why: {r.why}\n  reply: {r.reply[:600]}", file=sys.stderr)
    concept = table["kinds"].get("concept", {"score": 1.0})["score"]
    return 0 if table["score"] >= args.min_overall and concept >= args.min_concept else 1


if __name__ == "__main__":
    sys.exit(main())
