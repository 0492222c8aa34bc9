"""An offline model for code-search questions: deterministic rules instead of an LLM.

``OfflineCodeModel`` implements the ``ChatModel`` protocol for both roles. It reads the structured
``ChatRequest.inputs`` each role records (the task and known facts for the controller; the tool, its
arguments and payload for the processor; read back from the prompt text when a request arrives
without them, as over HTTP) and answers in the same formats a real model uses (native
tool calls, a JSON reply, a ``{"ops": [...]}`` state patch), so it drives the very same runtime, tools,
events and artifacts, with no network and no API key. It answers, on any repository:

- where is X defined (``Class.method``, ``module.name``, "in the urllib package") -> ``find_definition``
  (a misspelt name gets the closest defined names, and the best one is looked up);
- who calls / where is X used                    -> ``find_definition`` + ``find_references``
- what does FILE contain / what is defined in NAME.py -> ``outline``
- what methods does CLASS have / the members of CLASS -> ``outline`` with ``members_of`` (a class not found:
  its definition is looked up, so a misspelt name gets the closest names)
- a question with no identifier ("where are retries handled?") -> ``search_concepts``: the best
  functions with the first line of their docstring, cited, and a plain note that it is a best guess;
- a name with no verb ("tell me about X")        -> definition and references;
- one plain word and nothing else ("decoder", "what does loads do", "Decoder") -> ``find_definition``
  of the word and ``search_concepts`` together: a real definition of exactly that name (or the same name
  in another case) first, then the best-matching code, said to be a best guess.

It does not explain what code does, compare designs, or follow data flow; only a question with
nothing to search for ("hello?", "how does it work?") is put back to the user (``ask_user``). Question reading is in
``offline_question``; tool payloads become facts in ``offline_facts``.
"""

from __future__ import annotations

import json
import re
from typing import Any

from agentcore.core.values import TokenUsage
from agentcore.errors import ModelOutputError
from agentcore.models.base import ChatRequest, ChatResponse, ToolCallRequest
from agentcore.models.offline_facts import cut_back, facts_for, joined
from agentcore.models.offline_prompt import inputs_from_prompt
from agentcore.models.offline_question import Intent, classify, content_words, shape

__all__ = ["ASK_SUBJECT", "OFFLINE_MODEL_NAME", "Intent", "OfflineCodeModel", "classify"]

OFFLINE_MODEL_NAME = "agentcore-offline"
ASK_SUBJECT = (
    "Which symbol or file should I look for? (for example: where is Cart defined, or what does app/main.py contain)"
)


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
        inputs = inputs_from_prompt(request)
        task = str(inputs.get("task") or "")
        shown = {
            str(f["key"]): cut_back(str(f["value"]), int(f.get("cut") or 0))
            for f in inputs.get("facts") or []
            if isinstance(f, dict)
        }
        facts = {k: v for k in shown if "#" not in k and (v := joined(shown, k)) is not None}
        intent = classify(task)
        question = task
        if intent.kind == "unclear":
            answer = question = facts.get("user:answer") or ""
            if "user:answer" not in facts:
                return self._json(request, {"ask_user": ASK_SUBJECT})
            intent = classify(answer)
            if intent.kind == "unclear":
                return self._json(
                    request, {"reply": f"I could not find a symbol, file or topic to look for in {answer!r}."}
                )
        available = {t.name for t in request.tools}
        plan = [(n, a) for n, a in self._next_calls(intent, facts, question) if n in available]
        if plan:
            calls = tuple(
                ToolCallRequest(
                    id=f"call_{i}", name=name, arguments=json.dumps(args, sort_keys=True, ensure_ascii=False)
                )
                for i, (name, args) in enumerate(plan, 1)
            )
            return ChatResponse(content=None, tool_calls=calls, model=self.name, structured_mode="native_tools")
        return self._json(request, {"reply": self._answer(intent, facts)})

    def _next_calls(self, intent: Intent, facts: dict[str, str], question: str) -> list[tuple[str, dict[str, Any]]]:
        s = intent.subject
        backup = [("search_concepts", {"query": question})] if _backup_search(intent, facts, question) else []
        if intent.kind == "lookup":
            return _lookup_calls(intent, facts)
        if intent.kind == "file":
            return backup if f"file:{s}" in facts else [("outline", {"path": s})]
        if intent.kind == "members" and f"members:{s}" not in facts:
            return [("outline", {"path": intent.scope or "", "members_of": s, "max_results": 80})]
        if intent.kind == "members" and not facts[f"members:{s}"].startswith("no class"):
            return []
        if intent.kind == "members" and f"file:{s}" not in facts:  # "what functions does json have": a module
            return [("outline", {"path": s}), ("find_definition", {"symbol": s})]
        if intent.kind == "members" and " could not be read" not in facts[f"file:{s}"]:
            return []
        if intent.kind == "members" and (alt := _suggestion(facts.get(f"definition:{s}", ""))):
            # "what methods does Loger have": the closest class's members
            return [] if f"members:{alt}" in facts else [("outline", {"path": "", "members_of": alt, "max_results": 80})]
        if intent.kind == "concept":
            return [] if "concepts" in facts else [("search_concepts", {"query": s})]
        if intent.kind == "tests":
            return _tests_calls(s, facts)
        wanted: list[tuple[str, dict[str, Any]]] = []
        definition = facts.get(f"definition:{s}")
        if definition is None:
            args: dict[str, Any] = {"symbol": s}
            if intent.scope:
                args["scope"] = intent.scope
            wanted.append(("find_definition", args))
        elif (
            definition.startswith("no definition")
            and (alt := _suggestion(definition))
            and f"definition:{alt}" not in facts
        ):
            wanted.append(("find_definition", {"symbol": alt}))
        if intent.kind in ("usage", "search") and f"usages:{s}" not in facts:
            scoped = {"scope": intent.scope} if intent.scope and intent.kind == "usage" else {}
            wanted.append(("find_references", {"symbol": s, **scoped}))  # "who calls X in the server module"
        same = _same_name(s, definition) if definition is not None else None
        if same and same != s and intent.kind in ("usage", "search") and f"usages:{same}" not in facts:
            wanted.append(("find_references", {"symbol": same}))  # "who calls jsondecoder": JSONDecoder's uses
        if (
            definition is not None
            and definition.startswith("no definition")
            and (not _suggestion(definition) or _ENV_LIKE.fullmatch(s))
            and facts.get(f"usages:{s}", "no uses").startswith("no uses")
            and f"text:{s}" not in facts
        ):
            query = {"query": rf"\b{re.escape(s)}\b", "regex": True} if re.fullmatch(r"\w+", s) else {"query": s}
            wanted.append(("search_code", query))
        return wanted + backup

    def _answer(self, intent: Intent, facts: dict[str, str]) -> str:
        s = intent.subject
        if intent.kind == "lookup":
            return _lookup_answer(intent, facts)
        concepts = facts.get("concepts")
        if intent.kind == "file":
            outline = facts.get(f"file:{s}", f"I could not read {s}.")
            return outline + (f"\nCode matching the rest of the question instead. {concepts}" if concepts else "")
        if intent.kind == "concept":
            return facts.get("concepts", "I found no code matching that description.")
        if intent.kind == "tests":
            return _tests_answer(s, facts)
        members = facts.get(f"members:{s}")
        if intent.kind == "members" and members and not members.startswith("no class"):
            return members
        outline = facts.get(f"file:{s}", " could not be read")
        if intent.kind == "members" and " could not be read" not in outline:
            return outline
        alt = _suggestion(facts.get(f"definition:{s}", "")) if intent.kind == "members" else None
        alt_members = facts.get(f"members:{alt}", "") if alt else ""
        if alt_members and not alt_members.startswith("no class"):
            return f"No class is named {s!r}; did you mean {alt}? {alt_members}"
        lines: list[str] = []
        definition = facts.get(f"definition:{s}")
        alt = _suggestion(definition) if definition and definition.startswith("no definition") else None
        alt_found = facts.get(f"definition:{alt}") if alt else None
        other_case = alt_found is not None and alt is not None and alt.lower() == s.lower()
        same = _same_name(s, definition)
        if other_case:
            lines.append(f"(read as {alt}, the same name in another case) {alt_found}")
        elif definition:
            lines.append(
                definition if same in (None, s) else f"(read as {same}, the same name in another case) {definition}"
            )
        found = definition is not None and not definition.startswith("no definition")
        closest = f"The closest defined name is {alt}: {alt_found}" if alt_found and not other_case else ""
        lead = "Related code" if found else "Code matching the rest of the question instead"
        related = f"{lead}. {concepts}" if concepts else ""
        weak = not found and shape(s) <= 1  # "Logdateien": a capitalised word, more likely not a misspelt name
        text = facts.get(f"text:{s}")
        if text and not found and _ENV_LIKE.fullmatch(s) and "does not appear" not in text:
            lines.append(text)  # "where is OPENAI_BASE_URL read": the places it is written, before any close name
            text = None
        lines += [x for x in ([related, closest] if weak else [closest, related]) if x]
        usages = facts.get(f"usages:{same or s}") or facts.get(f"usages:{s}")
        exact = facts.get(f"usages:{s}", "")
        if same not in (None, s) and " imported " in exact:  # "where is jsonpatch imported": the module, not JsonPatch
            usages = f"{exact}\n{usages}"
        if usages and intent.kind in ("usage", "search"):
            lines.append(usages)
        if text:
            lines.append(text)
        if not lines:
            lines.append(f"I found nothing about {s!r} in this repository.")
        return "\n".join(lines)

    # -- processor ---------------------------------------------------------------------------

    def _process(self, request: ChatRequest) -> ChatResponse:
        inputs = inputs_from_prompt(request)
        if inputs.get("input") == "user_answer":
            answer = str(inputs.get("answer") or "").strip()
            return self._json(request, {"ops": [self._fact([("user:answer", answer)], "user", None)]})
        tool = str(inputs.get("tool") or "")
        args = inputs.get("arguments") if isinstance(inputs.get("arguments"), dict) else {}
        artifact = inputs.get("artifact") or None
        found = facts_for(
            tool, args or {}, str(inputs.get("payload") or ""), bool(inputs.get("ok")), inputs.get("error"),
            self.max_citations,
        )  # fmt: skip
        if not found:
            return self._json(request, {"ops": []})
        source = str(inputs.get("call_id") or "")
        return self._json(request, {"ops": [self._fact(found, source, artifact)]})

    @staticmethod
    def _fact(pairs: list[tuple[str, str]], source: str, artifact: str | None) -> dict:
        facts = []
        for key, value in pairs:
            fact: dict[str, Any] = {"key": key, "value": value, "source": source or "offline", "confidence": 1.0}
            if artifact:
                fact["artifact_id"] = artifact
            facts.append(fact)
        return {"op": "append_known_facts", "facts": facts}

    def _json(self, request: ChatRequest, obj: dict) -> ChatResponse:
        return ChatResponse(
            content=json.dumps(obj, ensure_ascii=False),
            model=self.name,
            usage=TokenUsage(),
            structured_mode="json_decision" if request.role == "controller" else "json_schema",
        )


def _backup_search(intent: Intent, facts: dict[str, str], question: str) -> bool:
    """Whether the question's other words (two or more) deserve a concept search too: the name or file
    it seemed to name found nothing ("how does the robots.txt parser decide ..."), so the run never ends
    on a bare "not found"; or it asks about a name with no verb ("how does the RobotFileParser decide if a
    URL can be fetched?"), so the code doing that comes with the name's definition."""
    if "concepts" in facts or intent.kind in ("lookup", "concept", "unclear"):
        return False
    if intent.kind == "file":
        failed = " could not be read" in facts.get(f"file:{intent.subject}", "")
    else:
        definition = facts.get(f"definition:{intent.subject}")
        failed = definition is not None and definition.startswith("no definition")
    subject = intent.subject.lower()
    others = [w for w in content_words(question) if w.lower() not in subject and subject not in w.lower()]
    return (failed or intent.kind == "search") and len(others) >= 2


_ENV_LIKE = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+|[A-Z][A-Z0-9]{2,}")
"""A CONSTANT_CASE name (``OPENAI_BASE_URL``): when nothing defines it, it is most likely an environment variable
or a config key, found as text (``os.environ.get("OPENAI_BASE_URL")``) rather than through a close name."""

_STRONG = re.compile(r" is defined at \S+ \((?:class|function|method|type|interface|enum|namespace|module) ")


_FOUND_NAME = re.compile(r" is defined at \S+ \(\S+ (?:[^\s)]*\.)?([^\s).]+)[\s)]")


def _same_name(word: str, definition: str | None) -> str | None:
    """The defined name ``word`` stands for: itself, the found definition's name when it differs only in case
    (``console`` -> ``Console``), or a suggestion equal to it but for case."""
    if definition is None:
        return word
    if not definition.startswith("no definition"):
        found = _FOUND_NAME.search(definition)
        return found.group(1) if found and found.group(1).lower() == word.lower() else word
    alt = _suggestion(definition)
    return alt if alt is not None and alt.lower() == word.lower() else None


def _tests_name(s: str, facts: dict[str, str]) -> str | None:
    """The name whose uses in tests stand for ``s``'s when ``s`` has none: the same name in another case or
    the closest defined one ("subtests" -> ``subTest``)."""
    definition = facts.get(f"definition:{s}")
    same = _same_name(s, definition)
    alt = same if same not in (None, s) else (_suggestion(definition) if definition else None)
    return alt if alt and alt != s else None


def _tests_calls(s: str, facts: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """Which tests cover X: X's uses in test files (and its definition, for a name in another case)."""
    if f"usages:{s}" not in facts:
        return [("find_references", {"symbol": s, "scope": "tests"}), ("find_definition", {"symbol": s})]
    alt = _tests_name(s, facts)
    if facts[f"usages:{s}"].startswith("no uses") and alt and f"usages:{alt}" not in facts:
        return [("find_references", {"symbol": alt, "scope": "tests"})]
    return []


def _tests_answer(s: str, facts: dict[str, str]) -> str:
    alt = _tests_name(s, facts)
    for name in (s, alt):
        uses = facts.get(f"usages:{name}", "") if name else ""
        if uses and not uses.startswith("no uses"):
            read = f"(read as {name}) " if name != s else ""
            return f"{read}Tests that use {name}: {uses}"
    definition = facts.get(f"definition:{s}", "")
    return f"No test file uses {s!r} (by name).\n{definition}".rstrip()


def _lookup_calls(intent: Intent, facts: dict[str, str]) -> list[tuple[str, dict[str, Any]]]:
    """One plain word: its definition (or the same name in another case) and a concept search, at once."""
    wanted: list[tuple[str, dict[str, Any]]] = []
    nothing_matched = facts.get("concepts", "").startswith("I found no code")
    for word in intent.names:
        definition = facts.get(f"definition:{word}")
        name = _same_name(word, definition)
        if name is None and nothing_matched and definition:  # a typo with no concept match: the closest name
            name = _suggestion(definition)
        if name is not None and f"definition:{name}" not in facts:
            wanted.append(("find_definition", {"symbol": name}))
    if "concepts" not in facts:
        wanted.append(("search_concepts", {"query": intent.subject}))
    return wanted


def _lookup_answer(intent: Intent, facts: dict[str, str]) -> str:
    """A class or function named exactly so comes first; the concept matches follow (a best guess)."""
    strong: list[str] = []
    weak: list[str] = []
    for word in intent.names:
        definition = facts.get(f"definition:{word}")
        name = _same_name(word, definition)
        close = _suggestion(definition) if definition and name is None else None
        if close and f"definition:{close}" in facts:  # looked up because nothing else matched
            name = close
        found = facts.get(f"definition:{name}") if name else None
        if not found or found.startswith("no definition"):
            continue
        if name == close:
            found = f"No definition is named {word!r}; did you mean {name}? {found}"
        elif name != word:
            found = f"(read as {name}, the same name in another case) {found}"
        (strong if _STRONG.search(found) else weak).append(found)
    concepts = facts.get("concepts")
    lines = strong[:]
    if concepts and not concepts.startswith("I found no code"):
        lines.append(("Related code. " if strong else "") + concepts)
    lines += weak
    if not lines:
        named = ", ".join(repr(w) for w in intent.names)
        lines.append(f"I found no definition named {named} and no code matching {intent.subject!r}; "
                     "name a function, class or file to search for.")  # fmt: skip
    return "\n".join(lines)


def _suggestion(definition_fact: str) -> str | None:
    m = re.search(r"did you mean (\S+?)[,?]", definition_fact)
    return m.group(1) if m else None
