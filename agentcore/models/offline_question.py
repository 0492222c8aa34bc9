"""How the offline model reads a code question: its kind, its subject, and the place it names.

Kinds: ``definition`` (where is X defined; also what X returns or takes and what it inherits from: its
definition's first line shows that), ``usage`` (who calls / where is X used), ``file`` (what
does FILE contain, what is defined in NAME.py), ``members`` (what methods does CLASS have), ``tests`` (which tests cover X: its uses in test files), ``search`` (a name with no verb: tell me about X),
``lookup`` (one plain word and nothing else to go on: ``decoder``, ``what does loads do``, ``Decoder``:
a definition of that word if there is one, and a concept search), ``concept`` (several content words
and no identifier: where are retries handled?) and ``unclear`` (nothing to search for at all:
``hello?``, ``how does it work?``).

Identifiers may be in any script (``Äpfel``, ``Ωmega``), in backticks or quotes, dotted
(``Class.method``, ``json.dumps``) or followed by ``()``. A member may also be named as ``Class::method``,
``Class#method``, ``Class's method`` or "the method of Class" (all read as ``Class.method``); a word after
"in"/"from" ("defined in importlib.resources") is the place to look, not the subject, when another word is. The verbs are recognised in English and in
a few other languages (German, French, Spanish, Italian, Portuguese, Dutch, Russian, Chinese).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_ID = r"[^\W\d][\w$]*(?:\.[^\W\d][\w$]*)*"
_QUOTED = re.compile(r"`([^`\n]{1,200})`|'([^'\s]{1,200})'|\"([^\"\s]{1,200})\"|[«“‘„]([^»”’“\s]{1,200})[»”’“]")
_FILE = re.compile(r"(?<![\w/.-])((?:[\w.-]+/)*[\w-][\w.-]*\.[A-Za-z][A-Za-z0-9]{0,5})(?![\w/])")
_CODE_EXT = re.compile(
    r"\.(?:py|pyi|js|jsx|mjs|cjs|ts|tsx|mts|cts|go|rs|java|kt|c|h|cc|cpp|hpp|rb|php|cs|swift|scala|lua|sh|md|rst"
    r"|txt|toml|cfg|ini|json|yaml|yml)$"
)

_USAGE = re.compile(
    r"\b(?:used|uses?|using|usages?|call(?:s|ed|ers?|ing)?|referenced|references?|refers|imported|imports?|"
    r"raised?|raises|raising|throws?|thrown|catch(?:es)?|caught|instantiated|instantiates?|invoked|invokes?|subclass(?:es|ed)?|depends?|inherits?|inheriting|extends|"
    r"overrides?|overridden|implements)\b"
    r"|verwendet|benutzt|aufgerufen|ruft|genutzt|utilis[ée]+|appel(?:é|ée|le|lent)|usad[oa]|llamad[oa]|llama|"
    r"utilizad[oa]|usat[oa]|chiamat[oa]|chiama|gebruikt|aangeroepen|использу|вызыва|调用|使用|引用",
    re.I,
)
_DEFINITION = re.compile(
    r"\b(?:defined|defines?|declared|declares?|definition|declaration|implemented|implementation|located|lives?|"
    r"where\s+is|where's|which\s+file|find|source\s+of)\b"
    r"|definiert|deklariert|implementiert|d[ée]fini[es]*|d[ée]clar[ée]+|definid[oa]|declarad[oa]|definit[oa]|"
    r"dichiarat[oa]|gedefinieerd|определ|объявл|定义|声明|在哪",
    re.I,
)
_SCOPE = re.compile(
    r"\b(?:in|inside|within|from|of)\s+(?:the\s+)?(?:(?:package|module|class|file|directory|folder|library|namespace)\s+)?"
    r"[`'\"]?(" + _ID + r"(?:/[\w.-]+)*)[`'\"]?(?:\s+(package|module|class|file|directory|folder|library))?",
    re.I,
)
_MEMBER_LIKE = re.compile(r"[A-Z][a-z0-9]+(?:[A-Z][a-z0-9]*)*\.(?:json|yaml|yml|toml|ini|cfg|txt|md|rst)")
"""``Request.json``, ``Response.text``: a class's member that looks like a file name (a file is rarely CamelCase)."""
_STOP = set(
    """where what which who whom how why when is are was were the a an of in on to for from by with and or it its be
    there any all this that these those does do did defined define declared definition declaration implemented
    used uses use usage usages called calls call caller callers referenced references reference imported imports
    file files contain contains content contents show me find function functions class classes type struct method
    methods variable constant interface module package repo repository code codebase project tell about please
    give list what's where's i we you can could would should defines declares located lives live
    wo ist sind wer der die das den dem ein eine und im in welche welcher definiert verwendet aufgerufen ruft auf
    où est sont qui le la les un une et dans défini définie utilisé appelé
    dónde donde está esta es son quién la el los las un una y en definida definido usado llamado
    dove è sono chi il lo gli definito usato chiamato waar wordt función funcion clase método metodo fonction classe méthode
    funktion klasse methode funzione definida definidos définie définies défini wird klasse""".split()
)
_FILLER = set(
    """explain explains describe describes show tell about overview whats what's mean means meaning purpose
    work works working handle handled handles handling happen happens done do does doing there anything
    something thing things stuff logic look looking see need want know understand help code get gets into
    me my our your his her their them they he she i'm im it's decorator decorators exception exceptions enum
    attribute attributes property properties field fields helper helpers object objects""".split()
)
"""Words that frame a question but name nothing to search for (left out when counting content words)."""
_CHAT = {"hello", "hi", "hey", "help", "thanks", "thank", "test", "ok", "okay", "yes", "no", "bye"}
"""A lone word like these is talk, not a question about code: it is put back to the user."""
_MODULE = re.compile(
    r"^(?:what(?:'s| is| does)?|where(?:'s| is)?|which|show|list|outline|contents? of|summari[sz]e|describe|find|open)"
    r"\b[^?]*?\b(?:the\s+)?"
    r"(?:(?:module|file)\s+([\w-]+)|([\w-]+)\s+(?:module|file))\b",
    re.I,
)
"""A file named by its module's name ("what is in the cookies module", "where is the charset module")."""
_PARTS = r"(?:methods|members|attributes|properties|fields|functions|api)"
_OF_CLASS = re.compile(
    r"\bwhat\s+" + _PARTS + r"\s+(?:does|do|has|have|did)\s+(?:the\s+)?(?:class\s+)?[`'\"]?(?P<a>" + _ID + r")\b"
    r"|\b(?:list|show|give|what\s+are|which\s+are|name|outline)\s+(?:me\s+)?(?:all\s+)?(?:of\s+)?(?:the\s+)?"
    + _PARTS + r"\s+(?:of|in|on|for)\s+(?:the\s+)?(?:class\s+)?[`'\"]?(?P<b>" + _ID + r")\b"
    r"|\bwhat\s+(?:does|is\s+in|'s\s+in)\s+(?:the\s+)?class\s+[`'\"]?(?P<c>" + _ID + r")\b"
    r"|\bwhat\s+(?:does|is\s+in|'s\s+in)\s+(?:the\s+)?[`'\"]?(?P<d>" + _ID + r")[`'\"]?\s+class\b"
    r"|(?<![\w$.])(?P<e>" + _ID + r")['’]s\s+" + _PARTS + r"\b"
    r"|\boutline\s+(?:of\s+)?(?:the\s+)?(?:class\s+(?P<f>" + _ID + r")\b|(?P<g>" + _ID + r")\s+class\b)",
    re.I,
)
"""A question about one class's members: "what methods does Logger have", "list the methods of Handler",
"what does the Logger class define", "Logger's methods"."""
_CONSTRUCTOR = re.compile(r"(?<![\w$.])(" + _ID + r")\s+(?:constructor|initiali[sz]er)\b", re.I)
""""the Table constructor": ``Table.constructor`` (the index finds a Python ``__init__`` for it)."""
_PINNED = re.compile(r"[`'\"]?(\S+?)[`'\"]?\s*(?::|::|#)\s*[`'\"]?(" + _ID + r")(?:\(\))?[`'\"]?\s*[?.!]*")
_NOT_SCOPE = {"this", "the", "repo", "repository", "code", "codebase", "project", "here", "it", "which", "what"}
_SEPARATOR = re.compile(r"(?<=[\w$])(?:::|#)(?=[^\W\d])")
"""``Class::method`` (C++, PHP, Rust) and ``Class#method`` (Ruby, JSDoc): the same as ``Class.method``."""
_MEMBER_NOUN = r"method|property|attribute|field|function|member|constructor|decorator|setter|getter|class"
_RELATIONS = {
    "subclasses", "subclass", "children", "parents", "parent", "bases", "base", "instances", "instance", "members",
    "methods", "properties", "fields", "attributes", "signature", "arguments", "parameters", "docstring", "docs",
    "source", "body", "callers", "users", "uses", "name", "names", "type", "types", "purpose", "meaning", "list",
}  # fmt: skip
"""Words that name a relation or a part of a class ("the subclasses of Handler"), never one of its members."""
_POSSESSIVE = re.compile(
    r"(?<![\w$.])(" + _ID + r")(?:\s+(?:class|object|type|module))?['’]s\s+(?:the\s+)?(?=(" + _ID + r")\b"
    r"(\s+(?:" + _MEMBER_NOUN + r")\b)?)",
    re.I,
)
_MEMBER_OF = re.compile(
    r"\bthe\s+(" + _ID + r")(?:\(\))?(?:\s+(" + _MEMBER_NOUN + r"))?\s+(?:of|in|inside|within|on)\s+(?:the\s+)?"
    r"(?:class\s+)?[`'\"]?(" + _ID + r")\b[`'\"]?(?!\s*(?:package|module|file|directory|folder|library|namespace|"
    r"repo|repository|codebase|project)\b)",
    re.I,
)
""""the width property of Console", "the __init__ of BaseModel": ``Console.width``, ``BaseModel.__init__``."""


_Q = r"[`'\"]?"
_SIGNATURE = re.compile(
    r"\bwhat\s+(?:does|do|will|would|did)\s+(?:the\s+)?(?:function\s+|method\s+|class\s+)?" + _Q + r"(?P<a>" + _ID
    + r")(?:\(\))?" + _Q + r"\s+(?:return|returns|yield|yields|take|takes|accept|accepts|expect|expects)\b"
    r"|\b(?:what|which)\s+(?:arguments|args|parameters|params|keyword\s+arguments|options)\s+(?:does|do|can)\s+(?:the\s+)?"
    r"(?:function\s+|method\s+|class\s+)?" + _Q + r"(?P<b>" + _ID + r")"
    r"|\b(?:what\s+(?:are|is)|show(?:\s+me)?|give\s+me|list)\s+(?:the\s+)?(?:signature|arguments|args|parameters|params|"
    r"return\s+(?:type|value)|base\s+class(?:es)?|bases|parent\s+class(?:es)?|superclass(?:es)?)\s+(?:of|for)\s+(?:the\s+)?"
    r"(?:function\s+|method\s+|class\s+)?" + _Q + r"(?P<c>" + _ID + r")"
    r"|\b(?:which|what)\s+(?:class(?:es)?|base(?:\s+class)?|type)\s+(?:does|do)\s+(?:the\s+)?" + _Q + r"(?P<d>" + _ID + r")"
    + _Q + r"\s+(?:class\s+)?(?:inherit|extend|subclass|derive)"
    r"|\bwhat\s+does\s+(?:the\s+)?" + _Q + r"(?P<e>" + _ID + r")" + _Q + r"\s+(?:class\s+)?(?:inherit|extend|subclass|derive)"
    r"|\bwhat\s+is\s+(?:the\s+)?" + _Q + r"(?P<f>" + _ID + r")" + _Q + r"(?:'s|\s+class's)\s+(?:signature|base\s+class|return\s+type)",
    re.I,
)
"""A question answered by a definition's first line: what X returns or takes, its signature, what it inherits
from ("what does loads return", "what arguments does dumps take", "which class does StreamHandler inherit from")."""


_TESTS = re.compile(
    r"\b(?:which|what)\s+tests?\s+(?:cover|covers|exercise|exercises|check|checks|tests?|calls?|uses?|hits?)\s+"
    r"(?:the\s+)?(?:function\s+|method\s+|class\s+)?" + _Q + r"(?P<a>" + _ID + r")"
    r"|\b(?:where|how)\s+(?:is|are)\s+(?:the\s+)?" + _Q + r"(?P<b>" + _ID + r")" + _Q + r"(?:\(\))?\s+tested\b"
    r"|\b(?:the\s+)?(?:tests?|test\s+cases?|unit\s+tests?)\s+(?:for|of|covering)\s+(?:the\s+)?" + _Q + r"(?P<c>" + _ID + r")",
    re.I,
)
"""A question about the tests of a name: "which tests cover assertWarns", "where is parse tested"."""


_ENV_VAR = re.compile(
    r"(?<![\w$])\$?([A-Z][A-Z0-9_]+)[`'\"]?\s+(?:environment|env)(?:\s+var(?:iable)?)?\b"
    r"|\b(?:environment|env)\s+var(?:iable)?s?\s+[`'\"]?\$?([A-Z][A-Z0-9_]+)\b"
)
"""An environment variable named as one ("the PAGER environment variable", "env var $HOME")."""


@dataclass(frozen=True)
class Intent:
    """What the question asks for: ``kind``, ``subject`` (a name, a path, or the question) and ``scope``."""

    kind: str
    subject: str
    scope: str | None = None
    names: tuple[str, ...] = ()
    """``lookup``: the word(s) that may name a symbol."""


def shape(word: str) -> int:
    """How much ``word`` looks like an identifier (0: a plain lower-case word)."""
    core = word.rsplit(".", 1)[-1]
    if re.fullmatch(r"[A-Z]{2,}s", core):
        return 0  # an acronym's plural (URLs, APIs) is a word, not a name
    score = 0
    score += 2 * ("_" in core)
    score += 2 * any(c.isupper() for c in core[1:]) * any(c.islower() for c in core)
    score += 2 * (core.isupper() and len(core) > 1 and ("_" in core or any(c.isdigit() for c in core)))
    score += 1 * (core[:1].isupper() and not core.isupper())
    score += 2 * ("." in word)
    return score


def _candidates(question: str) -> list[tuple[int, int, str]]:
    """``(shape, position, word)`` for each word that may name a symbol."""
    out = []
    for m in re.finditer(_ID + r"(?:\(\))?", question):
        word = m.group(0).removesuffix("()").rstrip(".")
        if word.lower() in _STOP or not word:
            continue
        if _CODE_EXT.search(word):
            continue
        out.append((shape(word) + 3 * m.group(0).endswith("()"), m.start(), word))
    return out


def _quoted(question: str) -> list[str]:
    found = []
    for m in _QUOTED.finditer(question):
        text = next(g for g in m.groups() if g is not None).strip().removesuffix("()")
        if re.fullmatch(_ID, text) or _FILE.fullmatch(text):
            found.append(text)
    return found


def _scope(question: str, subject: str) -> str | None:
    for m in _SCOPE.finditer(question):
        word = m.group(1).rstrip(".")
        if word == subject or word.lower() in _NOT_SCOPE or word.lower() in _STOP:
            continue
        return word
    return None


def _members(q: str) -> str:
    """``q`` with a member named the ways people write it rewritten as ``Class.member`` (see the module docstring)."""
    q = _SEPARATOR.sub(".", q)

    def possessive(m: re.Match[str]) -> str:
        owner, member, noun = m.group(1), m.group(2), m.group(3) or ""
        if owner.lower() in _STOP or member.lower() in _STOP | _FILLER:
            return m.group(0)
        if shape(owner) < 1 and not noun and shape(member) < 1:  # "the logger's handlers": words
            return m.group(0)
        return f"{owner}."  # the member follows: "the cursor's execute method" -> "the cursor.execute method"

    def member_of(m: re.Match[str]) -> str:
        member, noun, owner = m.group(1), (m.group(2) or "").lower(), m.group(3)
        if member.lower() in (_STOP if noun else _STOP | _FILLER) or owner.lower() in _STOP | _NOT_SCOPE | _FILLER:
            return m.group(0)
        if _USAGE.fullmatch(member) or _DEFINITION.fullmatch(member) or (not noun and member.lower() in _RELATIONS):
            return m.group(0)  # "the subclasses of Handler", "the callers of parse": a question about Handler
        if shape(owner) < 1 and noun in ("", "class"):  # "the size of the terminal": words, not names
            return m.group(0)
        return f"the {owner}.{member}" + (f" {noun}" if noun else "")

    q = _MEMBER_OF.sub(member_of, _POSSESSIVE.sub(possessive, q))
    return _CONSTRUCTOR.sub(lambda m: f"{m.group(1)}.constructor" if shape(m.group(1)) >= 1 else m.group(0), q)


def classify(question: str) -> Intent:
    """Read the kind of question, its subject and the place it names (see the module docstring)."""
    q = " ".join(question.split())
    pinned = _PINNED.fullmatch(q)  # "tasks.py: gather", "client.py::HTTPResponse.read": that name in that file
    if pinned and _FILE.fullmatch(pinned.group(1)) and _CODE_EXT.search(pinned.group(1)):
        return Intent("definition", pinned.group(2), pinned.group(1))
    of_class = _OF_CLASS.search(q)
    cls = next((g for g in of_class.groups() if g), "") if of_class else ""
    if cls and cls.lower() not in _STOP | _NOT_SCOPE and not re.search(
        re.escape(cls) + r"(?:[`'\"]?\s+(?:module|file|package)\b|[/.]\w)", q, re.I
    ):  # not "the functions in json/encoder.py" nor "what methods does the cookies module have"
        return Intent("members", cls, _scope(q, cls))
    tests = _TESTS.search(q)
    name = next((g for g in tests.groups() if g), "") if tests else ""
    if name and name.lower() not in _STOP | _NOT_SCOPE | _FILLER:
        return Intent("tests", name.removesuffix("()"))
    signature = _SIGNATURE.search(q)
    name = next((g for g in signature.groups() if g), "") if signature else ""
    if name and name.lower() not in _STOP | _NOT_SCOPE | _FILLER:
        return Intent("definition", name, _scope(q, name))
    q = _members(q)
    quoted = _quoted(q)
    files = [f for f in quoted if _FILE.fullmatch(f) and _CODE_EXT.search(f)] or [
        m.group(1) for m in _FILE.finditer(q) if _CODE_EXT.search(m.group(1))
    ]
    if _USAGE.search(q) or _DEFINITION.search(q):  # "where is Request.json used": a method, not a data file
        files = [f for f in files if not _MEMBER_LIKE.fullmatch(f)]
    names = [w for w in quoted if not (_FILE.fullmatch(w) and _CODE_EXT.search(w))]
    usage = bool(_USAGE.search(q))
    definition = bool(_DEFINITION.search(q))
    env = _ENV_VAR.search(q)  # "the PAGER environment variable": a capitalised word code only quotes
    symbol = names[0] if names else (env.group(1) or env.group(2)) if env else _best_symbol(q, usage or definition)
    module = _MODULE.search(q)
    word = (module.group(1) or module.group(2)) if module else ""
    if word and not files and not usage and word.lower() not in _NOT_SCOPE | _STOP and symbol in ("", word):
        return Intent("file", word)  # "what does the server module contain": the file server.*
    if files:
        path = files[0]
        names_a_symbol = bool(symbol) and symbol not in path  # a plain word is a symbol only when a verb frames it
        if names_a_symbol and (usage or definition) and not re.match(r"\s*what\b", q, re.I):
            return Intent("usage" if usage else "definition", symbol, path)
        return Intent("file", path)
    if not symbol:
        return _unnamed(q)
    scope = _scope(q, symbol) or _qualifier(q, symbol)
    if usage:
        return Intent("usage", symbol, scope)
    if definition:
        return Intent("definition", symbol, scope)
    return Intent("search", symbol, scope)


def _qualifier(question: str, symbol: str) -> str | None:
    """The word before a name and its kind ("the mock patch decorator"): where to look first."""
    m = re.search(
        r"(?<![\w$.'’])(" + _ID + r")\s+" + re.escape(symbol) + r"\s+(?:function|class|method|decorator|constant|type)\b",
        question,
    )
    word = m.group(1) if m else ""
    return word if len(word) > 1 and word.lower() not in _STOP | _FILLER | _NOT_SCOPE else None


def content_words(question: str) -> list[str]:
    """The words of ``question`` that may say what to look for (question words and fillers left out)."""
    words = [w.rstrip(".") for w in re.findall(_ID, question)]
    return [w for w in words if len(w) >= 2 and w.lower() not in _STOP and w.lower() not in _FILLER]


def _unnamed(q: str) -> Intent:
    """A question with no identifier-shaped word: ``lookup`` (one word), ``concept`` (more) or ``unclear``."""
    words = content_words(q)
    if not words or (len(words) == 1 and words[0].lower() in _CHAT and len(q.split()) <= 2):
        return Intent("unclear", "")
    if len(words) == 1:
        return Intent("lookup", q, names=(words[0],))
    return Intent("concept", q)


def _best_symbol(question: str, has_verb: bool) -> str:
    """The most identifier-like word; a plain lower-case word only when a verb frames it as a name. A word
    that names the place ("in importlib.resources") comes last: the subject is another word when there is one."""
    cands = _candidates(question)
    shaped = [c for c in cands if c[0] > 0]
    first_word = re.match(r"\s*[^\W\d][\w]*", question)
    if not has_verb:  # a capitalised first word is sentence case, unless a verb asks where it is defined or used
        shaped = [c for c in shaped if not (c[1] == 0 and c[0] == 1 and first_word)]
    places = {m.start(1) for m in _SCOPE.finditer(question) if not m.group(0).lower().startswith("of")}
    free = [c for c in shaped if c[1] not in places]
    if free:
        return max(free, key=lambda c: (c[0], len(c[2])))[2]
    framed = _framed(question, any_word=bool(shaped)) if has_verb else ""  # "where is files defined in X"
    if framed or not shaped:
        return framed
    return max(shaped, key=lambda c: (c[0], len(c[2])))[2]


def _framed(question: str, any_word: bool = False) -> str:
    """A plain word a verb frames as a name: "where is decode defined", "who calls parse", "the mock patch
    decorator defined" (``patch``); ``any_word``: even a question word ("files") when the question names a place."""
    kinds = r"(?:(?:the|der|die|das|la|le|el|il|a|an)\s+)?(?:(?:function|class|method|constant|variable|type|funktion|klasse|methode|fonction|classe|méthode|función|clase|método|metodo|funzione|funci[oó]n)\s+)?"
    verbs = r"(?:defined|declared|implemented|used|called|imported|referenced|definiert|verwendet|aufgerufen|d[ée]finie?s?|utilis[ée]e?s?|appel[ée]e?s?|definid[oa]|usad[oa]|llamad[oa]|definit[oa]|usat[oa])"
    nouns = r"(?:\s+(?:function|class|method|decorator|constant|variable|type|module|exception|attribute|property|command))?"
    be = r"\b(?:is|are|ist|est|está|è|wird)\s+"
    framed = re.search(be + kinds + "(" + _ID + r")" + nouns + r"\s+" + verbs + r"\b", question, re.I)
    named = re.search(be + r"(?:the\s+)?(" + _ID + r")" + nouns.removesuffix("?") + r"\b", question, re.I)
    framed = framed or named  # "where is the parse function in the urllib package": a kind noun names it too
    framed = framed or re.search(
        r"(?:\b(?:calls?|uses?|imports?|invokes?|raises?|throws?|instantiates?|callers\s+of|uses\s+of|usages\s+of|definition\s+of|declaration\s+of|find)|"
        r"d[ée]fini[es]*|definiert|definid[oa]|definit[oa]|llama\s+a|appelle|ruft)\s+"
        + kinds
        + "("
        + _ID
        + r")(?:\(\))?"
        + nouns
        + r"\s*(?:auf\s*)?(?:\s+(?:in|of|from|inside|within)\b[^?]*)?[?.!]?\s*$",
        question,
        re.I,
    )
    qualified = (
        None
        if framed
        else re.search(  # "is the mock patch decorator defined": the name after its place
            be + r"(?:the\s+)?" + _ID + r"\s+(" + _ID + r")" + nouns.removesuffix("?") + r"\s+" + verbs + r"\b",
            question,
            re.I,
        )
    )  # only with a kind noun: "where is JSON decoding implemented" is a concept question
    found = framed or qualified
    if found and (any_word or (named and named.group(1) == found.group(1)) or found.group(1).lower() not in _STOP):
        return found.group(1)
    return ""
