"""An offline model for code-search questions: deterministic rules instead of an LLM.

``OfflineCodeModel`` implements the ``ChatModel`` protocol for both roles. It reads exactly what
an LLM would read — the controller's rendering of the state and the processor's tool-result
message — and answers in the same formats (native tool calls, a JSON reply, a ``{"ops": [...]}``
state patch). So it drives the very same runtime, tools, events and artifacts as a real model,
with no network and no API key. It is a small rule system, not a recording: it answers three
kinds of question on any repository:

- where is X defined                 -> ``find_definition``
- where is X used / who calls X      -> ``find_definition`` + ``search_code``
- what does file F contain           -> ``read_file``

Anything else gets a best-effort search for the most identifier-like word of the question; a
question with no symbol or file name in it is answered with a question to the user (``ask_user``),
and the user's answer is then read as the question.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from agentcore.errors import ModelOutputError
from agentcore.models.base import ChatRequest, ChatResponse, ToolCallRequest, Usage

OFFLINE_MODEL_NAME = "agentcore-offline"
ASK_SUBJECT = (
    "Which symbol or file should I look for? (for example: where is Cart defined, or what does app/main.py contain)"
)

_STOP = {
    "where", "what", "which", "who", "how", "is", "are", "the", "a", "an", "of", "in", "on", "to", "for",
    "defined", "define", "declared", "definition", "used", "uses", "use", "usage", "usages", "called",
    "calls", "call", "referenced", "references", "does", "do", "file", "contain", "contains", "show", "me",
    "find", "function", "class", "type", "struct", "method", "variable", "constant", "interface", "this",
    "that", "repo", "repository", "code", "codebase", "and", "or", "it", "its", "be", "there", "any", "all",
}  # fmt: skip

_FILE_RE = re.compile(r"(?:`([^`]+\.[A-Za-z0-9]+)`|(?<![\w/.-])((?:[\w.-]+/)*[\w.-]+\.[A-Za-z][A-Za-z0-9]{0,5})\b)")
_IDENT = re.compile(r"[A-Za-z_][\w.]*")
_WORD = re.compile(r"[A-Za-z_][\w]*")
_MATCH_LINE = re.compile(r"^(?P<path>[^\n:]+):(?P<line>\d+): ?(?P<text>.*)$")
_DEF_IN_FILE = re.compile(
    r"^\s*(?:export\s+)?(?:async\s+)?(?:def|class|func|type|interface|function|struct|enum|trait|impl)\s+"
    r"(?:\([^)]*\)\s*)?(?P<name>[A-Za-z_][\w]*)"
)


@dataclass(frozen=True)
class Intent:
    """What the question asks for."""

    kind: str  # "definition" | "usage" | "file" | "search"
    subject: str


def classify(question: str) -> Intent:
    """Read the kind of question and its subject (a symbol or a file path)."""
    q = question.strip()
    low = q.lower()
    file_m = _FILE_RE.search(q)
    wants_file = re.search(r"\b(contain|contents?|in the file|inside|summar|show|what is in|what's in)\b", low)
    if file_m and (wants_file or not re.search(r"\b(defined|declared|used|calls?|referenced)\b", low)):
        return Intent("file", file_m.group(1) or file_m.group(2))
    symbol = _symbol(q)
    if not _IDENT.fullmatch(symbol):
        return Intent("unclear", "")
    if re.search(
        r"\b(used|uses?|using|usages?|call(s|ed|ers|ing)?|referenced|references|imported|raised|thrown|instantiated|"
        r"created|invoked|read|written|returned)\b",
        low,
    ):
        return Intent("usage", symbol)
    if re.search(r"\b(defined|declared|definition|declaration|implemented|where is|where's|find)\b", low):
        return Intent("definition", symbol)
    if symbol.islower() and symbol.isalpha() and "`" not in q:
        return Intent("unclear", "")  # "hello?", "help": a plain word with no question around it
    return Intent("search", symbol)


def _symbol(question: str) -> str:
    ticked = re.findall(r"`([^`]+)`", question)
    if ticked:
        return ticked[0].strip().rstrip("()")
    words = re.findall(r"[A-Za-z_][\w.]*(?:\(\))?", question)
    candidates = [w.rstrip("()").rstrip(".") for w in words if w.lower().rstrip("()") not in _STOP]

    def score(w: str) -> tuple[int, int]:
        shaped = ("_" in w) + ((w != w.lower() and w != w.capitalize()) or w.isupper()) * 2 + ("." in w)
        return (shaped + (w[0].isupper()), len(w))

    return max(candidates, key=score) if candidates else ""


def _usage_sentence(symbol: str, usages: str, definition: str | None) -> str:
    """Uses of ``symbol`` from its usages fact, leaving out the line that defines it."""
    if usages.startswith("no uses"):
        return usages
    defined_at = re.search(r" at (\S+:\d+)", definition or "")
    places = re.findall(r"[^\s,]+:\d+", usages.partition(" at ")[2])
    others = [p for p in places if not defined_at or p != defined_at.group(1)]
    more = re.search(r"and (\d+) more", usages)
    if not others and not more:
        return f"I found no uses of {symbol} besides its definition."
    text = f"{symbol} is used at {', '.join(others)}"
    return text + (f" and {more.group(1)} more places" if more else "") + "."


def _sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for block in re.split(r"^# ", text, flags=re.M):
        if block.strip():
            title, _, body = block.partition("\n")
            out[title.strip()] = body
    return out


def _facts(body: str) -> dict[str, str]:
    facts = {}
    for line in body.splitlines():
        m = re.match(r"^- (?P<key>[^:]+(?::[^:\s]+)*?): (?P<value>.*?)(?: \[source: .*\])?$", line)
        if m:
            facts[m.group("key")] = m.group("value")
    return facts


class OfflineCodeModel:
    """A rule-based controller and processor for code-search questions (see module docstring)."""

    name = OFFLINE_MODEL_NAME

    def __init__(self, max_citations: int = 8) -> None:
        self.max_citations = max_citations

    async def complete(self, request: ChatRequest) -> ChatResponse:
        if request.role == "processor":
            return self._process(request)
        if request.role == "controller":
            return self._control(request)
        raise ModelOutputError(f"the offline model plays controller and processor, not {request.role!r}")

    # -- controller --------------------------------------------------------------------------

    def _control(self, request: ChatRequest) -> ChatResponse:
        text = "\n".join(m.content or "" for m in request.messages if m.role == "user")
        sections = _sections(text)
        task = sections.get("Task", "").strip()
        facts: dict[str, str] = {}
        for title, body in sections.items():
            if title.startswith("Known facts"):
                facts = _facts(body)
        intent = classify(task)
        if intent.kind == "unclear":
            answer = facts.get("user:answer")
            if answer is None:
                return self._json(request, {"ask_user": ASK_SUBJECT})
            intent = classify(answer)
            if intent.kind == "unclear":
                return self._json(request, {"reply": f"I could not find a symbol or file name in {answer!r}."})
        available = {t.name for t in request.tools}
        plan = self._next_calls(intent, facts, available)
        if plan:
            calls = tuple(
                ToolCallRequest(id=f"call_{i}", name=name, arguments=json.dumps(args, sort_keys=True))
                for i, (name, args) in enumerate(plan, 1)
            )
            return ChatResponse(content=None, tool_calls=calls, model=self.name, structured_mode="native_tools")
        return self._json(request, {"reply": self._answer(intent, facts)})

    def _next_calls(self, intent: Intent, facts: dict[str, str], available: set[str]) -> list[tuple[str, dict]]:
        s = intent.subject
        wanted: list[tuple[str, dict]] = []
        if intent.kind == "file":
            if f"file:{s}" not in facts:
                wanted.append(("read_file", {"path": s}))
        else:
            if f"definition:{s}" not in facts:
                wanted.append(("find_definition", {"symbol": s}))
            search = {"query": rf"\b{re.escape(s)}\b", "regex": True} if _WORD.fullmatch(s) else {"query": s}
            if intent.kind in ("usage", "search") and f"usages:{s}" not in facts:
                wanted.append(("search_code", search))
            elif (
                intent.kind == "definition"
                and facts.get(f"definition:{s}", "").startswith("no definition")
                and f"usages:{s}" not in facts
            ):
                wanted.append(("search_code", search))
        return [(name, args) for name, args in wanted if name in available]

    def _answer(self, intent: Intent, facts: dict[str, str]) -> str:
        s = intent.subject
        lines: list[str] = []
        if intent.kind == "file":
            lines.append(facts.get(f"file:{s}", f"I could not read {s}."))
        else:
            definition = facts.get(f"definition:{s}")
            usages = facts.get(f"usages:{s}")
            if definition:
                lines.append(definition)
            if usages and (intent.kind != "definition" or not definition or definition.startswith("no definition")):
                lines.append(_usage_sentence(s, usages, definition))
            if not lines:
                lines.append(f"I found nothing about {s!r} in this repository.")
        return "\n".join(lines)

    # -- processor ---------------------------------------------------------------------------

    def _process(self, request: ChatRequest) -> ChatResponse:
        text = "\n".join(m.content or "" for m in request.messages if m.role == "user")
        head, _, payload = text.partition("\npayload:\n")
        fields = dict(re.findall(r"^(call id|tool|arguments|ok|artifact|error): (.*)$", head, flags=re.M))
        if not fields.get("tool"):  # a user answer: keep it as a fact
            answer = text.partition("answer:\n")[2].split("\n(use source")[0].strip()
            return self._json(request, {"ops": [self._fact("user:answer", answer, "user", None)]})
        tool = fields["tool"]
        try:
            args = json.loads(fields.get("arguments", "{}"))
        except json.JSONDecodeError:
            args = {}
        source = fields.get("call id", "")
        artifact = fields.get("artifact")
        artifact = artifact if artifact and artifact != "none" else None
        ok = fields.get("ok") == "true"
        key, value = self._fact_for(tool, args, payload, ok, fields.get("error"))
        if key is None:
            return self._json(request, {"ops": []})
        return self._json(request, {"ops": [self._fact(key, value, source, artifact)]})

    def _fact_for(self, tool: str, args: dict, payload: str, ok: bool, error: str | None) -> tuple[str | None, str]:
        matches = [m.groupdict() for m in map(_MATCH_LINE.match, payload.splitlines()) if m]
        total_m = re.match(r"^(\d+) (?:match|matches|definition|definitions) ", payload)
        total = int(total_m.group(1)) if total_m else len(matches)
        if tool == "find_definition":
            symbol = str(args.get("symbol", ""))
            if not ok or not matches:
                return f"definition:{symbol}", f"no definition of {symbol!r} found" + (f" ({error})" if error else "")
            first = matches[0]
            value = f"{symbol} is defined at {first['path']}:{first['line']}: `{first['text'].strip()}`"
            others = [f"{m['path']}:{m['line']}" for m in matches[1 : self.max_citations]]
            if others:
                value += f" (other candidates: {', '.join(others)})"
            return f"definition:{symbol}", value
        if tool == "search_code":
            query = str(args.get("query", ""))
            if args.get("regex"):
                query = re.sub(r"\\(.)", r"\1", query.replace("\\b", ""))
            if not ok or not matches:
                return f"usages:{query}", f"no uses of {query!r} found" + (f" ({error})" if error else "")
            cited = [f"{m['path']}:{m['line']}" for m in matches[: self.max_citations]]
            more = total - len(cited)
            value = f"{query} appears {total} time(s), at {', '.join(cited)}" + (
                f" and {more} more" if more > 0 else ""
            )
            return f"usages:{query}", value
        if tool == "read_file":
            path = str(args.get("path", ""))
            if not ok:
                return f"file:{path}", f"{path} could not be read: {error or payload.strip()[:300]}"
            head = payload.splitlines()[0] if payload else path
            total_lines = re.search(r"of (\d+)", head)
            defs = []
            for line in payload.splitlines()[1:]:
                m = re.match(r"^\s*(\d+)\| (.*)$", line)
                if m and (d := _DEF_IN_FILE.match(m.group(2))):
                    defs.append(f"{d.group('name')} ({path}:{m.group(1)})")
            value = f"{path} has {total_lines.group(1) if total_lines else '?'} lines"
            value += f"; it defines {', '.join(defs[:20])}" if defs else "; no definitions found on its first page"
            return f"file:{path}", value
        return None, ""

    @staticmethod
    def _fact(key: str, value: str, source: str, artifact: str | None) -> dict:
        fact = {"key": key, "value": value, "source": source or "offline", "confidence": 1.0}
        if artifact:
            fact["artifact_id"] = artifact
        return {"op": "append_known_facts", "facts": [fact]}

    def _json(self, request: ChatRequest, obj: dict) -> ChatResponse:
        return ChatResponse(
            content=json.dumps(obj, ensure_ascii=False),
            model=self.name,
            usage=Usage(),
            structured_mode="json_decision" if request.role == "controller" else "json_schema",
        )
