"""Terminal control sequences from data are inert in everything the CLI prints (issue 17 item 9).

Repository content, tasks, run ids and imported traces carry ESC/CSI/OSC sequences, 8-bit C1
controls, CR, BS, BEL, DEL and Unicode bidi controls (U+202E RLO and friends: "Trojan Source"
reordering); no command may pass one to the terminal. One helper (``agentcore.cli.support.inert``)
turns each into visible ``\\xNN`` or ``\\uNNNN`` text.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from agentcore.cli.commands import cli
from agentcore.cli.support import inert
from agentcore.storage.memory import MemoryEventStore
from agentcore.storage.trace import export_run
from agentcore.testing import demo_agent
from tests.cli.test_conventions import subprocess_env

SEQUENCES = {
    "csi_clear": "\x1b[2J\x1b[H",
    "csi_colour": "\x1b[31;1mRED\x1b[0m",
    "osc_title": "\x1b]0;pwned\x07",
    "osc_hyperlink": "\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "c1_csi": "\x9b2J",
    "c1_osc": "\x9d0;t\x9c",
    "carriage_return": "fake\rreal",
    "backspace": "abc\x08\x08\x08xyz",
    "bell_del_nul": "\x07\x7f\x00",
    "dcs": "\x1bP+q544e\x1b\\",
    "bidi_override": "access = 'user\u202e \u2066// admin?\u2069 \u2066'",  # Trojan Source (CVE-2021-42574)
    "bidi_embed_marks": "a\u202ab\u202bc\u202cd\u202de\u200ef\u200fg\u061ch\u2067i\u2068j",
}
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_inert_leaves_no_control_character_and_shows_each_one(name: str) -> None:
    text = SEQUENCES[name]
    out = inert(f"before {text} after\n\tend")
    assert not RAW.search(out), repr(out)
    assert out.startswith("before ") and out.endswith(" after\n\tend")
    for ch in set(RAW.findall(text)):
        assert (f"\\x{ord(ch):02x}" if ord(ch) <= 0xFF else f"\\u{ord(ch):04x}") in out


def assert_inert(*results: Result) -> None:
    for r in results:
        for stream in (r.stdout_bytes, r.stderr_bytes):
            text = stream.decode("utf-8", errors="strict")
            assert not RAW.search(text), repr(RAW.search(text))


def invoke(*args: str | Path, code: int = 0) -> Result:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
    return result


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, str]:
    """A repository whose code holds every sequence, and one `ask` run over it."""
    base = tmp_path_factory.mktemp("hostile")
    repo = base / "repo"
    (repo / "pkg").mkdir(parents=True)
    body = "".join(f"# {name}: {seq}\n".replace("\x00", "") for name, seq in SEQUENCES.items())  # NUL: binary
    (repo / "pkg" / "evil.py").write_text(
        f"class Evil:  # {SEQUENCES['osc_title']}{SEQUENCES['csi_clear']}{SEQUENCES['c1_csi']}\n    pass\n" + body,
        encoding="utf-8",
    )
    db = base / "runs.db"
    result = invoke("ask", "Where is Evil defined?", "--repo", repo, "--db", db)
    assert "Evil" in result.stdout
    assert_inert(result)
    rid = json.loads(invoke("state", "last", "--db", db).stdout)["run_id"]
    return repo, db, rid


def test_ask_events_why_runs_state_print_inert_text(hostile: tuple[Path, Path, str]) -> None:
    repo, db, rid = hostile
    results = [
        invoke("events", rid, "--db", db),
        invoke("events", rid, "--db", db, "--json"),
        invoke("why", rid, "definition:Evil", "--db", db),
        invoke("why", rid, "definition:Evil", "--db", db, "--json"),
        invoke("runs", "--db", db),
        invoke("state", rid, "--db", db),
        invoke("diff", rid, "0", "8", "--db", db),
        invoke("ask", "Where is Evil defined?", "--repo", repo, "--db", db, "--json"),
    ]
    assert_inert(*results)
    assert "\\x1b]0;pwned\\x07" in results[2].stdout  # the data is still there, made visible
    # JSON stays JSON with the same value: C0 as \u001b (json's own), C1 as \u009b
    doc = json.loads(results[3].stdout)
    assert "\x1b]0;pwned\x07" in doc["fact"]["value"] and "\x9b2J" in doc["fact"]["value"]


@pytest.mark.parametrize("name", sorted(SEQUENCES))
def test_an_imported_trace_with_hostile_ids_and_task(tmp_path: Path, name: str) -> None:
    seq = SEQUENCES[name]
    store = MemoryEventStore()
    ident = seq.replace("\x00", "")  # no store takes a run id or task with NUL (PostgreSQL's text cannot)
    result = asyncio.run(demo_agent({f"k{seq}": f"v{seq}"}, store=store).run(f"task {ident}", run_id=f"run_{ident}x"))
    assert result.status == "succeeded"
    trace = tmp_path / "t.jsonl"
    export_run(store, f"run_{ident}x", trace)
    target = tmp_path / "imported.db"
    imported = invoke("import", trace, "--db", target)
    assert_inert(imported)
    new_id = imported.stdout.strip()
    results = [
        invoke("runs", "--db", target),
        invoke("events", "last", "--db", target),
        invoke("state", "last", "--db", target),
        invoke("why", "last", "nope", "--db", target, code=1),
        invoke("why", "last", f"k{seq}", "--db", target),
        invoke("diff", "last", "0", "3", "--db", target),
        invoke("events", "run_\x1b[2Jnope", "--db", target, code=1),  # an id from the command line, echoed back
        invoke("import", trace, "--db", target),
    ]
    assert_inert(*results)
    assert inert(new_id) == new_id  # stdout shows the id inert


def test_progress_on_a_real_terminal_stream_is_inert(hostile: tuple[Path, Path, str], tmp_path: Path) -> None:
    """Through a real subprocess (rich decides on its own streams): stderr progress and stdout answer."""
    repo, _, _ = hostile
    proc = subprocess.run(
        [sys.executable, "-m", "agentcore", "ask", "Where is Evil defined?", "--repo", str(repo),
         "--db", str(tmp_path / "p.db")],
        capture_output=True, env=subprocess_env(FORCE_COLOR="1", TERM="xterm"), timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    # rich may colour its own output (FORCE_COLOR): only its SGR codes may appear, never the data's
    for stream in (proc.stdout.decode(), proc.stderr.decode()):
        stripped = re.sub(r"\x1b\[[0-9;]*m", "", stream)
        assert not RAW.search(stripped), repr(RAW.search(stripped))
        assert "pwned\x07" not in stream and "\x9b" not in stream


def test_an_artifact_shown_on_a_terminal_is_inert_but_piped_exactly(
    hostile: tuple[Path, Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import agentcore.cli.support as support
    from agentcore.storage.sqlite.store import SQLiteEventStore

    _, db, _ = hostile
    data = "".join(SEQUENCES.values()).replace("\x00", "").encode()  # text (a NUL would make it binary)
    with SQLiteEventStore(db) as s:
        ident = s.artifacts.put(data, "text/plain").id
    assert invoke("artifact", ident, "-o", "-", "--db", db).stdout_bytes == data  # a pipe: the exact bytes
    monkeypatch.setattr(support, "stdout_is_terminal", lambda: True)
    for args in (["-o", "-"], []):
        shown = invoke("artifact", ident, *args, "--db", db)
        assert_inert(shown)
        assert "\\x1b]0;pwned\\x07" in shown.stdout
