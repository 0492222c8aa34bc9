"""Run one benchmark workload and print its JSON result: ``python benchmarks/run.py W1 [--n N]``.

Workloads are defined in benchmarks/WORKLOADS.md; each lives in ``benchmarks/w<k>_*.py`` and
exposes ``run(n: int | None, repeat: int) -> dict``. Results are medians over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import importlib
import json
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))


def workloads() -> dict[str, str]:
    """Workload name -> module: the ``w<k>_*.py`` module that defines ``run`` (a workload may have
    helper scripts beside it, e.g. ``w8_pages.py``, which are run on their own)."""
    found = {}
    for mod in sorted(pkgutil.iter_modules([str(HERE)]), key=lambda m: m.name):
        if mod.name[:1] == "w" and "_" in mod.name and mod.name.split("_")[0][1:].isdigit():
            if "\ndef run(" in (HERE / f"{mod.name}.py").read_text(encoding="utf-8"):
                found.setdefault(mod.name.split("_")[0].upper(), mod.name)
    return dict(sorted(found.items()))


def main(argv: list[str] | None = None) -> int:
    known = workloads()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("workload", choices=sorted(known), type=str.upper)
    parser.add_argument("--n", type=int, default=None, help="size of the workload (its default if omitted)")
    parser.add_argument("--repeat", type=int, default=3, help="runs to take the median of")
    args = parser.parse_args(argv)
    module = importlib.import_module(known[args.workload])
    result = module.run(args.n, args.repeat)
    print(json.dumps(result, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
