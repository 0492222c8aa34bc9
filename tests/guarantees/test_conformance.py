"""RFC 6902 conformance of ``apply_json_patch``: the public json-patch-tests suite, plus strictness.

The suite is vendored in ``tests/data/json-patch-tests`` (from the project's
``shared/conformance/json-patch-tests``; when that copy sits beside the repository, as in CI, a
test checks the two are identical). Records with ``disabled: true``
and records without a ``doc`` (comments) are not run; every other record must give its
``expected`` document, or raise ``PatchError`` when it has an ``error``.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from agentcore.core.fold import apply_json_patch
from agentcore.errors import PatchError

SUITE = Path(__file__).resolve().parents[1] / "data" / "json-patch-tests"
SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "conformance" / "json-patch-tests"
FILES = ("tests.json", "spec_tests.json")


def _load() -> list[Any]:
    missing = [name for name in FILES if not (SUITE / name).is_file()]
    if missing:
        raise RuntimeError(
            f"the JSON Patch conformance suite is missing: no {', '.join(missing)} in {SUITE}. "
            "Restore tests/data/json-patch-tests from the repository."
        )
    params = []
    for name in FILES:
        for i, record in enumerate(json.loads((SUITE / name).read_text(encoding="utf-8"))):
            if record.get("disabled") or "doc" not in record:
                continue
            label = record.get("comment", "").strip().replace(" ", "_")[:60] or "no_comment"
            params.append(pytest.param(record, id=f"{name.removesuffix('.json')}[{i}]-{label}"))
    return params


RECORDS = _load()


def test_the_suite_is_all_there() -> None:
    # tests.json: 95 records, 3 disabled; spec_tests.json: 17 records, 1 disabled
    assert len(RECORDS) == 95 - 3 + 17 - 1
    assert sum(1 for p in RECORDS if "error" in p.values[0]) == 30 + 4


@pytest.mark.parametrize("record", RECORDS)
def test_record(record: dict[str, Any]) -> None:
    doc, patch = record["doc"], record["patch"]
    doc_before, patch_before = copy.deepcopy(doc), copy.deepcopy(patch)
    if "error" in record:
        with pytest.raises(PatchError) as info:
            apply_json_patch(doc, patch)
        assert info.value.op_index is not None, "the error names the failing op"
    else:
        result = apply_json_patch(doc, patch)
        if "expected" in record:
            assert result == record["expected"]
    assert doc == doc_before and patch == patch_before, "inputs are never changed"


# --------------------------------------------------------------------------------------------
# beyond the suite: places where a lax implementation accepts what RFC 6902 forbids


@pytest.mark.parametrize(
    ("doc", "op", "reason"),
    [
        ({"a": 1}, {"op": "test", "path": "/a", "value": True}, "test failed"),
        ({"a": True}, {"op": "test", "path": "/a", "value": 1}, "test failed"),
        ({"a": 0}, {"op": "test", "path": "/a", "value": False}, "test failed"),
        ({"a": [1]}, {"op": "test", "path": "/a", "value": [True]}, "test failed"),
        ({"a": "abc"}, {"op": "test", "path": "/a/0", "value": "a"}, "in a string"),
        ({"a": "abc"}, {"op": "copy", "from": "/a/0", "path": "/b"}, "in a string"),
        ({"a": [1]}, {"op": "test", "path": "/a/-", "value": 1}, "not an array index"),
        ({"a": [1]}, {"op": "add", "path": "/a/01", "value": 2}, "not an array index"),
        ({"a": [1]}, {"op": "add", "path": "/a/+0", "value": 2}, "not an array index"),
        ({"a": [1]}, {"op": "add", "path": "/a/\u0661", "value": 2}, "not an array index"),
        ({"a": [1]}, {"op": "add", "path": "/a/2", "value": 2}, "out of range"),
        ({"a": 1}, {"op": "add", "path": "/b~2", "value": 2}, "invalid escape"),
        ({"a": 1}, {"op": "add", "path": "b", "value": 2}, "must be empty or start with '/'"),
        ({"a": 1}, {"op": "add", "path": 5, "value": 2}, "JSON pointer string"),
        ({"a": 1}, {"op": "move", "from": 3, "path": "/b"}, "JSON pointer string"),
        ({"a": 1}, {"op": "move", "path": "/b"}, "needs a 'from' member"),
        ({"a": 1}, {"op": "add", "value": 2}, "needs a 'path' member"),
        ({"a": 1}, {"op": "replace", "path": "/a"}, "needs a 'value' member"),
        ({"a": 1}, {"path": "/a", "value": 2}, "unknown op None"),
        ({"a": 1}, {"op": ["add"], "path": "/a", "value": 2}, "unknown op"),
        ({"a": 1}, {"op": "merge", "path": "/a", "value": 2}, "valid ops: add, remove"),
        ({"a": {"b": 1}}, {"op": "move", "from": "/a", "path": "/a/b/c"}, "into its own child"),
        ({"a": 1}, {"op": "remove", "path": ""}, "cannot remove the whole document"),
        ({"a": None}, {"op": "add", "path": "/a/b", "value": 2}, "cannot add a member to a null"),
    ],
)
def test_strict_where_the_rfc_is(doc: Any, op: dict[str, Any], reason: str) -> None:
    with pytest.raises(PatchError, match=reason) as info:
        apply_json_patch(doc, [{"op": "test", "path": "", "value": doc}, op])
    assert info.value.op_index == 1


@pytest.mark.parametrize(
    ("doc", "op", "expected"),
    [
        ([], {"op": "add", "path": "", "value": {}}, {}),
        ({"a": 1}, {"op": "replace", "path": "", "value": [1]}, [1]),
        ({"a": 1}, {"op": "test", "path": "/a", "value": 1.0}, {"a": 1}),
        ({"a": {"b": 1}}, {"op": "move", "from": "/a", "path": ""}, {"b": 1}),
        ({"a": [1, 2]}, {"op": "move", "from": "/a/0", "path": "/a/1"}, {"a": [2, 1]}),
        ({"a": 1}, {"op": "move", "from": "/a", "path": "/a"}, {"a": 1}),
        ({"": 1, "a/b": 2, "m~n": 3}, {"op": "remove", "path": "/a~1b"}, {"": 1, "m~n": 3}),
        ({"a": 1}, {"op": "test", "path": "/a", "value": 1, "ignored": "members"}, {"a": 1}),
    ],
)
def test_what_the_rfc_allows(doc: Any, op: dict[str, Any], expected: Any) -> None:
    assert apply_json_patch(doc, [op]) == expected


def test_the_result_shares_nothing_with_the_inputs() -> None:
    doc: dict[str, Any] = {"keep": {"x": [1]}}
    value: dict[str, Any] = {"list": [1, 2]}
    patch = [{"op": "add", "path": "/new", "value": value}, {"op": "copy", "from": "/new", "path": "/twin"}]
    result = apply_json_patch(doc, patch)
    result["new"]["list"].append(3)
    result["keep"]["x"].append(2)
    assert value == {"list": [1, 2]} and doc == {"keep": {"x": [1]}}
    assert result["twin"] == {"list": [1, 2]}


@pytest.mark.parametrize("patch", [{"op": "add"}, "add", None, [["add"]]])
def test_a_malformed_patch_is_a_patch_error(patch: Any) -> None:
    with pytest.raises(PatchError, match=r"must be a list of operations|must be a JSON object"):
        apply_json_patch({}, patch)


def test_the_vendored_suite_matches_the_shared_copy() -> None:
    """The vendored records are the project's shared ones (checked wherever shared/ is at hand)."""
    for name in FILES:
        vendored = json.loads((SUITE / name).read_text(encoding="utf-8"))
        assert len(vendored) > 10, f"{name} looks truncated"
        if (SHARED / name).is_file():
            assert vendored == json.loads((SHARED / name).read_text(encoding="utf-8")), f"{name} differs from shared/"
