"""The code-search eval's CI subset: every kind, small roots, cold indexes (python -m evals --subset ci)."""

from __future__ import annotations

from pathlib import Path

from evals.runner import HERE, load_questions, run_questions, score, score_table


def test_the_ci_subset_scores_at_least_the_targets(tmp_path: Path) -> None:
    questions = load_questions(subset="ci")
    every_kind = {q["kind"] for q in load_questions()} - {"js"}  # js questions read npm's source, not everywhere
    assert {q["kind"] for q in questions} == every_kind, "the subset covers every kind"
    results = run_questions(questions, cache_dir=str(tmp_path))
    table = score_table(results)
    failed = [(r.id, r.why) for r in results if not r.ok]
    assert table["score"] >= 0.9, failed
    assert table["kinds"]["concept"]["score"] >= 0.5, failed


def test_the_held_out_ci_subset_answers_every_question(tmp_path: Path) -> None:
    """Session 8's held-out kinds (Class::method, X's Y, "the Y of X", patch.object, a source alias against a
    test's definition, module variables...) on the small stdlib roots and click."""
    questions = load_questions(str(HERE / "held_out_s8.json"), subset="ci")
    assert len(questions) >= 15
    results = run_questions(questions, cache_dir=str(tmp_path))
    assert [(r.id, r.why) for r in results if not r.ok] == []


def test_the_second_held_out_ci_subset_answers_every_question(tmp_path: Path) -> None:
    """Session 8's second round (uses scoped to a module, a misspelt class's members, what X returns or inherits,
    environment variables, which tests cover X...) on the same small roots."""
    questions = load_questions(str(HERE / "held_out_s8b.json"), subset="ci")
    assert len(questions) == 14
    results = run_questions(questions, cache_dir=str(tmp_path))
    assert [(r.id, r.why) for r in results if not r.ok] == []


def test_a_concept_expectation_with_no_name_is_any_citation_of_its_file(tmp_path: Path) -> None:
    (tmp_path / "redaction.py").write_text('"""Keeping secrets out of the log."""\n\n\ndef redact(text):\n    return text\n')
    (tmp_path / "other.py").write_text("def redact_more():\n    pass\n")
    q = {"id": "c", "kind": "concept", "expect": {"top3_any": [{"path": "redaction.py"}]}}
    assert score(tmp_path, q, "redaction (module) at redaction.py:1; x at other.py:1")[0]
    assert not score(tmp_path, q, "a at other.py:1; b at other.py:2; c at other.py:1; redaction.py:1")[0]


def test_the_scorer_rejects_wrong_and_marker_answers(tmp_path: Path) -> None:
    (tmp_path / "a.py").write_text("def wanted():\n    pass\n\n\ndef other():\n    pass\n")
    q = {"id": "x", "kind": "definition", "expect": {"cite": {"path": "a.py", "line_has": "def wanted("}}}
    assert score(tmp_path, q, "wanted is defined at a.py:1")[0]
    assert not score(tmp_path, q, "wanted is defined at a.py:5")[0]
    assert not score(tmp_path, q, "wanted is defined at a.py:1 …[40 more chars not shown]")[0]
    other = {"id": "z", "kind": "class-usage", "expect": {"says": "cannot tell", "cites_none": [
        {"path": "a.py", "line_has": "def other("}]}}  # fmt: skip
    assert score(tmp_path, other, "it cannot tell; a.py:1")[0]
    assert not score(tmp_path, other, "it cannot tell; a.py:5")[0], "a use of another class is cited"
    missing = {"id": "y", "kind": "not-found", "expect": {"says": "no definition of 'zz' found"}}
    assert score(tmp_path, missing, "no definition of 'zz' found")[0]
    assert not score(tmp_path, missing, "no definition of 'zz' found, it is at a.py:1")[0]


def test_the_scorer_numbers_lines_as_grep_does_past_a_form_feed(tmp_path: Path) -> None:
    # Python 3.10's email/header.py has form-feed lines; str.splitlines() would count each twice
    (tmp_path / "h.py").write_text("import re\n\x0c\n\nclass Header:\n    pass\n")
    q = {"id": "f", "kind": "definition", "expect": {"cite": {"path": "h.py", "line_has": "class Header"}}}
    assert score(tmp_path, q, "Header is defined at h.py:4")[0]
    assert not score(tmp_path, q, "Header is defined at h.py:5")[0]
