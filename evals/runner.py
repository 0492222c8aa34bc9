"""Running and scoring the eval questions (``python -m evals``)."""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sysconfig
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentcore.models.offline import OfflineCodeModel
from agentcore.runtime.agent import Agent
from agentcore.storage.memory import MemoryEventStore
from agentcore.tools.code.agent_tools import code_tools

HERE = Path(__file__).resolve().parent
LOCATION = re.compile(r"((?:[\w.-]+/)*[\w.-]+\.\w+):(\d+)")
CI_IDS = {
    "definition-01", "definition-04", "definition-multi-01", "definition-multi-04", "usage-01", "usage-04",
    "outline-01", "outline-02", "concept-02", "concept-03", "concept-06", "typo-01", "not-found-01",
    "odd-01", "odd-04", "odd-05", "class-usage-01", "class-usage-02", "one-word-01", "one-word-04", "one-word-05",
    "outline-08",
    # held_out_s8.json: the kinds session 8 fixed, on the small logging/http/concurrent/unittest/click roots
    "s8-definition-04", "s8-definition-05", "s8-definition-07", "s8-definition-16", "s8-definition-17",
    "s8-definition-18", "s8-definition-multi-04", "s8-class-usage-01", "s8-outline-06", "s8-typo-03",
    "s8-not-found-02", "s8-odd-09", "s8-odd-11", "s8-odd-12", "s8-odd-13", "s8-odd-16", "s8-concept-10",
    # held_out_s8b.json: the second round's kinds, on the same small roots
    "s8b-signature-01", "s8b-signature-04", "s8b-inherits-01", "s8b-inherits-04", "s8b-imported-01",
    "s8b-env-var-07", "s8b-scoped-usage-01", "s8b-scoped-usage-03", "s8b-members-typo-01", "s8b-members-typo-02",
    "s8b-multi-place-03", "s8b-concept-body-02", "s8b-tests-01", "s8b-tests-03",
}  # fmt: skip
"""The quick set CI runs: only the small json/http/urllib/email/logging/click roots, every kind but ``js``
(npm's source is not on every machine); ``s8-*`` ids are in ``held_out_s8.json``, ``s8b-*`` in ``held_out_s8b.json``."""


@dataclass
class Result:
    id: str
    kind: str
    question: str
    ok: bool
    why: str
    reply: str
    seconds: float


def root_path(root: str) -> Path:
    """``stdlib/NAME`` -> the running interpreter's standard library; ``pkg/NAME`` -> an installed package;
    ``npm/PATH`` -> npm's own JavaScript source (``npm root -g``/npm/PATH)."""
    where, _, name = root.partition("/")
    if where == "stdlib":
        return Path(sysconfig.get_paths()["stdlib"]) / name
    if where == "npm":
        npm = shutil.which("npm")
        if npm is None:
            raise SystemExit("the npm questions read npm's own source: install npm (apt-get install npm)")
        top = subprocess.run([npm, "root", "-g"], capture_output=True, text=True, check=True, timeout=60).stdout.strip()
        return Path(top) / "npm" / name
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(f"package {name!r} is not installed: pip install -e '.[dev]' installs every eval package")
    return Path(next(iter(spec.submodule_search_locations)))


def load_questions(path: str | None = None, *, subset: str = "all", kinds: list[str] | None = None) -> list[dict[str, Any]]:
    data = json.loads(Path(path or HERE / "questions.json").read_text(encoding="utf-8"))
    questions = data["questions"]
    if subset == "ci":
        questions = [q for q in questions if q["id"] in CI_IDS]
    if kinds:
        questions = [q for q in questions if q["kind"] in kinds]
    return questions


def _lines(file: Path) -> list[str]:
    """The lines of ``file`` as grep, rg and the code tools number them: split at ``\\n`` only
    (``str.splitlines`` also splits at form feeds, which Python 3.10's ``email/header.py`` has)."""
    return file.read_text(encoding="utf-8", errors="replace").split("\n")


def _line(root: Path, path: str, n: int) -> str:
    try:
        lines = _lines(root / path)
    except OSError:
        return ""
    return lines[n - 1] if 0 < n <= len(lines) else ""


def _matches(root: Path, cited: tuple[str, int], want: dict[str, Any]) -> bool:
    path, n = cited
    if path != want["path"] or want["line_has"] not in _line(root, path, n):
        return False
    then = want.get("then_has")
    return then is None or any(then in _line(root, path, n + k) for k in range(1, 4))


def check_expectation(root: Path, want: dict[str, Any]) -> None:
    """Refuse a question whose expected line is not in the code (the data is checked against the code)."""
    lines = _lines(root / want["path"])
    if not any(want["line_has"] in line for line in lines):
        raise SystemExit(f"bad expectation: {want['line_has']!r} is not in {root / want['path']}")


def score(root: Path, q: dict[str, Any], reply: str) -> tuple[bool, str]:
    """Whether ``reply`` answers ``q`` (see evals/README.md for the rule of each kind), and why not."""
    e = q["expect"]
    cites = [(m.group(1), int(m.group(2))) for m in LOCATION.finditer(reply)]
    if "more chars not shown" in reply:
        return False, "an internal truncation marker reached the reply"
    if "cite" in e and "says" not in e:
        check_expectation(root, e["cite"])
        ok = bool(cites) and _matches(root, cites[0], e["cite"])
        return ok, "" if ok else f"first citation {cites[:1]} is not {e['cite']}"
    for unwanted in e.get("cites_none", []):  # a use that belongs to another class, say
        check_expectation(root, unwanted)
        if any(_matches(root, c, unwanted) for c in cites):
            return False, f"cites {unwanted}, which it should not"
    if "cites_any" in e:
        for want in e["cites_any"]:
            check_expectation(root, want)
        ok = any(_matches(root, c, w) for c in cites for w in e["cites_any"])
        return ok, "" if ok else "no expected use site is cited"
    if "names" in e:
        missing = [n for n in e["names"] if not re.search(rf"\b{re.escape(n)}\b", reply)]
        return not missing, f"missing {missing}" if missing else ""
    if "top3_any" in e:
        first3 = cites[:3]
        for c in first3:
            text = _line(root, *c)
            if any(
                c[0] == w["path"] and ("name" not in w or re.search(rf"\b{re.escape(w['name'])}\b", text))
                for w in e["top3_any"]
            ):  # an entry with no name: the file is the answer ("which file keeps secrets out of the log?")
                return True, ""
        return False, f"first three citations {first3} hold none of {e['top3_any']}"
    if "says" in e:
        said = e["says"].lower() in reply.lower()
        if "cite" in e:
            check_expectation(root, e["cite"])
            ok = said and any(_matches(root, c, e["cite"]) for c in cites)
            return ok, "" if ok else f"wanted {e['says']!r} and a citation of {e['cite']}"
        if "cites_none" in e:  # checked above: it said so and cited none of the wrong places
            return said, "" if said else f"wanted {e['says']!r}"
        first = reply.splitlines()[0] if reply else ""
        ok = said and not LOCATION.search(first)
        return ok, "" if ok else f"wanted {e['says']!r} and no invented location"
    raise SystemExit(f"question {q['id']} has no known expectation")


def run_questions(questions: list[dict[str, Any]], cache_dir: str) -> list[Result]:
    import time

    tools_by_root: dict[str, list[Any]] = {}
    results = []
    for q in questions:
        root = root_path(q["root"])
        if q["root"] not in tools_by_root:
            tools_by_root[q["root"]] = code_tools(root, cache_dir=cache_dir)
        model = OfflineCodeModel()
        started = time.perf_counter()
        run = Agent(model, model, tools_by_root[q["root"]], MemoryEventStore(), max_steps=12).run_sync(q["question"])
        seconds = time.perf_counter() - started
        reply = run.reply or ""
        if run.status != "succeeded":
            results.append(Result(q["id"], q["kind"], q["question"], False, f"run {run.status}: {run.reason}", reply, seconds))
            continue
        ok, why = score(root, q, reply)
        results.append(Result(q["id"], q["kind"], q["question"], ok, why, reply, seconds))
    return results


def score_table(results: list[Result]) -> dict[str, Any]:
    kinds: dict[str, dict[str, Any]] = defaultdict(lambda: {"correct": 0, "total": 0})
    for r in results:
        row = kinds[r.kind.removesuffix("-multi") if r.kind == "definition-multi" else r.kind]
        row = kinds[r.kind]
        row["total"] += 1
        row["correct"] += r.ok
    for row in kinds.values():
        row["score"] = row["correct"] / row["total"]
    correct = sum(r.ok for r in results)
    return {"kinds": dict(kinds), "correct": correct, "total": len(results), "score": correct / max(1, len(results))}
