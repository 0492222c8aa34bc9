"""W9: the code index and answers on the whole CPython standard library.

The running interpreter's standard library is copied (``.py`` and other indexed sources, without
``site-packages``, ``dist-packages`` and ``__pycache__``) to a temporary directory, outside the timing.
Then:

- ``index_cold_s`` / ``index_peak_rss_mb``: a fresh process builds the index from nothing (wall time;
  RSS: that process's peak plus ``jobs`` times the largest parse worker's peak, an upper bound of
  what the build holds at once; ``index_cold_cpu_s`` counts the workers' CPU too);
- ``reindex_one_file_s``: one file is changed and ``refresh`` runs;
- ``ask_warm_ms_*``: an in-process ``Agent.run`` with the offline model on the warm index, end to
  end (controller, tools, processor, reply) for a definition, a usage and a concept question;
- ``eval_correct`` / ``eval_total``: ``python -m evals`` on the project's own question set.

Medians over ``repeat`` runs. ``n`` is ignored.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
QUESTIONS = {
    "definition": "Where is JSONDecoder defined?",
    "usage": "Who calls build_opener?",
    "concept": "Where are log files rotated when they get too big?",
}
_COLD = """
import json, resource, sys, time
from agentcore.tools.code.index import SymbolIndex
from agentcore.tools.code.parsing import default_jobs
from agentcore.tools.code.paths import CodeRoot
started = time.perf_counter()
stats = SymbolIndex(CodeRoot(sys.argv[1]), sys.argv[2]).refresh()
me = resource.getrusage(resource.RUSAGE_SELF)
kids = resource.getrusage(resource.RUSAGE_CHILDREN)
print(json.dumps({"seconds": time.perf_counter() - started, "files": stats.files, "jobs": default_jobs(),
                  "cpu_s": me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime,
                  "main_cpu_s": me.ru_utime + me.ru_stime, "rss_mb": me.ru_maxrss / 1024,
                  "worker_rss_mb": kids.ru_maxrss / 1024}))
"""


def copy_stdlib(target: Path) -> Path:
    source = Path(sysconfig.get_paths()["stdlib"])
    skip = shutil.ignore_patterns("site-packages", "dist-packages", "__pycache__", "*.pyc")
    shutil.copytree(source, target, ignore=skip, symlinks=True)
    return target


def cold_build(stdlib: Path, cache: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", _COLD, str(stdlib), str(cache)], env=env, check=True,
                         capture_output=True, text=True, timeout=1800)  # fmt: skip
    return json.loads(out.stdout)


def run(n: int | None, repeat: int) -> dict:
    from agentcore.models.offline import OfflineCodeModel
    from agentcore.runtime.agent import Agent
    from agentcore.storage.memory import MemoryEventStore
    from agentcore.tools.code.agent_tools import code_tools
    from agentcore.tools.code.index import SymbolIndex
    from agentcore.tools.code.paths import CodeRoot

    with tempfile.TemporaryDirectory(prefix="agentcore-w9-") as tmp:
        stdlib = copy_stdlib(Path(tmp) / "stdlib")
        colds = [cold_build(stdlib, Path(tmp) / f"cache{i}") for i in range(repeat)]
        cache = Path(tmp) / "cache0"
        index = SymbolIndex(CodeRoot(stdlib), cache)
        index.refresh()
        touched = stdlib / "json" / "decoder.py"
        reindex = []
        for i in range(repeat):
            with touched.open("a", encoding="utf-8") as f:
                f.write(f"\n# touched {i}\n")
            started = time.perf_counter()
            stats = index.refresh()
            reindex.append(time.perf_counter() - started)
            assert stats.parsed == 1, stats
        index.close()
        tools = code_tools(stdlib, cache_dir=cache)
        asks: dict[str, list[float]] = {k: [] for k in QUESTIONS}
        replies = {}
        for _ in range(repeat + 1):  # the first round warms the tools' connection
            for kind, question in QUESTIONS.items():
                model = OfflineCodeModel()
                started = time.perf_counter()
                result = Agent(model, model, tools, MemoryEventStore()).run_sync(question)
                asks[kind].append((time.perf_counter() - started) * 1000)
                replies[kind] = (result.reply or "")[:200]
    sys.path.insert(0, str(ROOT))
    from evals.runner import load_questions, run_questions, score_table

    with tempfile.TemporaryDirectory(prefix="agentcore-w9-evals-") as tmp:
        table = score_table(run_questions(load_questions(), cache_dir=tmp))
    return {
        "workload": "W9",
        "stdlib": sysconfig.get_paths()["stdlib"],
        "files_indexed": colds[0]["files"],
        "index_cold_s": round(statistics.median(c["seconds"] for c in colds), 2),
        "index_cold_cpu_s": round(statistics.median(c["cpu_s"] for c in colds), 2),
        "index_jobs": colds[0]["jobs"],
        "index_main_cpu_s": round(statistics.median(c["main_cpu_s"] for c in colds), 2),
        "index_peak_rss_mb": round(max(c["rss_mb"] + c["jobs"] * c["worker_rss_mb"] for c in colds), 1),
        "index_main_rss_mb": round(max(c["rss_mb"] for c in colds), 1),
        "index_worker_rss_mb": round(max(c["worker_rss_mb"] for c in colds), 1),
        "reindex_one_file_s": round(statistics.median(reindex), 3),
        **{f"ask_warm_ms_{k}": round(statistics.median(v[1:]), 1) for k, v in asks.items()},
        "replies": replies,
        "eval_correct": table["correct"],
        "eval_total": table["total"],
        "eval_by_kind": {k: f"{v['correct']}/{v['total']}" for k, v in table["kinds"].items()},
        "repeat": repeat,
        "load_average": os.getloadavg()[0],
    }
