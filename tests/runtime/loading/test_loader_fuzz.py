"""Robustness of the loader: whatever the input, it answers an `App` or a `DefinitionError`.

A valid pack is mutated at random (keys deleted, renamed or added, values replaced by
values of the wrong kind, field types swapped, random text spliced into the file) and
written as one YAML file, one JSON file or a folder pack. Any other exception is a bug.

Some crashes are already known (see `test_known_crash` at the bottom, strict xfails);
the generators steer clear of exactly those inputs so that this file keeps finding new
ones. Drop the matching guard once a crash is fixed.
"""

from __future__ import annotations

import copy
import json
import re
import tempfile
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ruamel.yaml import YAML

from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from runtime.model import FIELD_TYPES, App

FUZZ = settings(
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

ACCOUNT: dict[str, Any] = {
    "form": "account",
    "label": {"zh": "客户", "en": "Account"},
    "title_field": "name",
    "fields": [
        {"key": "name", "type": "text", "required": True, "max_length": 100},
        {"key": "email", "type": "email", "index": True},
        {"key": "tier", "type": "select", "options": ["gold", "silver"], "default": "silver"},
        {"key": "seats", "type": "integer", "min": 0, "max": 1000, "default": 1},
        {"key": "revenue", "type": "money", "min": 0},
        {"key": "share", "type": "percent", "default": 0.5},
        {"key": "since", "type": "date", "min": "2000-01-01"},
        {"key": "active", "type": "boolean", "default": True},
        {"key": "owner", "type": "user", "default": "current_user"},
        {"key": "number", "type": "auto_number", "pattern": "AC-{YYYY}-{####}"},
        {"key": "sites", "type": "table", "form": "site"},
    ],
    "layout": [
        {"section": "Main", "columns": 2, "fields": ["name", "email", "tier", "seats"]},
        {"section": {"en": "More"}, "fields": ["revenue", "share", "since", "sites"]},
    ],
    "list": {"columns": ["name", "tier", "seats"], "sort": ["-seats", "name"], "page_size": 20},
}

SITE: dict[str, Any] = {
    "form": "site",
    "label": "Site",
    "child": True,
    "fields": [
        {"key": "city", "type": "text", "pattern": "^[A-Z].*$"},
        {"key": "tags", "type": "multi_select", "options": [{"key": "hq"}, "branch"]},
        {"key": "area", "type": "decimal", "precision": 10, "scale": 2},
        {"key": "account", "type": "link", "to": "account", "on_delete": "restrict"},
    ],
}

PACK: dict[str, Any] = {
    "app": "fuzz",
    "label": {"zh": "模糊", "en": "Fuzz"},
    "version": "1.2.3",
    "currency": "EUR",
    "forms": [ACCOUNT, SITE],
}

# Characters ruamel.yaml's reader accepts; any other one is a known crash (see below).
_UNREADABLE = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
readable_text = st.text(st.characters(codec="utf-8").filter(lambda c: not _UNREADABLE.match(c)), max_size=200)
yaml_noise = st.sampled_from(
    [
        ":",
        ": ",
        "- ",
        "{",
        "}",
        "[",
        "]",
        ",",
        "'",
        '"',
        "#",
        "&a ",
        "*a",
        "!x ",
        "|",
        ">",
        "? ",
        "---\n",
        "\t",
        "\n",
        "    ",
        "%YAML 1.2\n",
        "!!str ",
        "~",
        "null",
    ]
)
noise = st.lists(st.one_of(yaml_noise, readable_text), max_size=6).map("".join)

# Values of every JSON-ish kind, plus a few that mean something to the definition model.
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(st.characters(exclude_categories=["Cs"]), max_size=20),
    st.sampled_from(
        [
            *FIELD_TYPES,
            "txt",
            "account",
            "site",
            "id",
            "current_user",
            "set_null",
            "-name",
            "2024-02-30",
            "2021-06-01",
            "2021-06-01T10:00:00",
            "2021-06-01T10:00:00+08:00",
            "1e400",
            "=TODAY()",
            "=",
            "",
            " ",
            0,
            -1,
            10**30,
        ]
    ),
)
json_values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=8), inner, max_size=3),
    ),
    max_leaves=8,
)
unknown_keys = st.one_of(
    st.sampled_from(["requird", "lable", "typ", "colums", "sortt", "on_delet", "forms", "x"]),
    st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=10),
)


def _slots(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path to a value inside `node` (the root itself excluded)."""
    found: list[tuple[Any, ...]] = []
    if isinstance(node, dict | list):
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            found.append((*path, key))
            found.extend(_slots(value, (*path, key)))
    return found


def _parent(root: Any, path: tuple[Any, ...]) -> Any:
    for part in path[:-1]:
        root = root[part]
    return root


@st.composite
def mutated_packs(draw: st.DrawFn) -> dict[str, Any]:
    """The valid pack with one to five random mutations applied."""
    pack = copy.deepcopy(PACK)
    for _ in range(draw(st.integers(1, 5))):
        slots = _slots(pack)
        if not slots:
            break
        path = draw(st.sampled_from(slots))
        parent, last = _parent(pack, path), path[-1]
        action = draw(st.sampled_from(["delete", "replace", "insert", "rename", "retype", "duplicate"]))
        if action == "delete":
            del parent[last]
        elif action == "replace":
            parent[last] = draw(json_values)
        elif action == "insert" and isinstance(parent, dict):
            parent[draw(unknown_keys)] = draw(json_values)
        elif action == "insert":
            parent.insert(draw(st.integers(0, len(parent))), draw(json_values))
        elif action == "rename" and isinstance(parent, dict):
            new_key = draw(st.sampled_from(["", "_", "x", str(last)[:-1], str(last).upper()]))
            parent[new_key] = parent.pop(last)
        elif action == "retype" and isinstance(parent, dict) and "type" in parent:
            parent["type"] = draw(st.sampled_from([*FIELD_TYPES, "txt", "Text", None]))
        elif action == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[last]))
    return pack


def _yaml_text(data: Any) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.allow_unicode = True
    out = StringIO()
    yaml.dump(data, out)
    return out.getvalue()


def _json_text(data: Any) -> str:
    # Not ensure_ascii: escaped surrogate pairs (\ud83d\ude00) are a known crash. Escape
    # only what the YAML reader refuses raw (DEL, C1 controls), as JSON allows.
    text = json.dumps(data, ensure_ascii=False, indent=1)
    return _UNREADABLE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


@st.composite
def damaged(draw: st.DrawFn, text: str) -> str:
    """`text`, or `text` with random characters spliced in or a slice cut out."""
    how = draw(st.sampled_from(["keep", "keep", "keep", "splice", "cut"]))
    if how == "keep" or not text:
        return text
    start = draw(st.integers(0, len(text)))
    if how == "splice":
        return text[:start] + draw(noise) + text[start:]
    return text[:start] + text[start + draw(st.integers(1, 40)) :]


def _line_count(text: str) -> int:
    """Lines as the loader sees them: files are read with universal newlines, and the YAML
    scanner also breaks lines at NEL, LS and PS."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return 1 + sum(text.count(brk) for brk in "\n\x85\u2028\u2029")


def assert_loads_or_reports(path: Path, files: dict[str, str]) -> None:
    """`load_pack(path)` answers an App, or a DefinitionError with sensible locations."""
    try:
        app = load_pack(path)
    except DefinitionError as exc:
        assert exc.problems, "a DefinitionError without problems"
        for problem in exc.problems:
            assert problem.message, problem
            assert problem.line >= 1 and problem.col >= 1, problem
            if problem.file in files:  # the location is inside the file (or at its end)
                assert problem.line <= _line_count(files[problem.file]), problem
    else:
        assert isinstance(app, App)


def write_and_load(root: Path, pack: Any, layout: str, draw: st.DrawFn) -> None:
    """Write `pack` as a single YAML or JSON file or as a folder pack, damage it, load it."""
    if layout in {"yaml", "json"}:
        body = _yaml_text(pack) if layout == "yaml" else _json_text(pack)
        target = root / f"pack.{layout}"
        text = draw(damaged(body))
        target.write_text(text, encoding="utf-8")
        return assert_loads_or_reports(target, {str(target): text})
    files: dict[str, str] = {}
    forms = pack.pop("forms", None) if isinstance(pack, dict) else None
    files["app.yaml"] = draw(damaged(_yaml_text(pack)))
    for index, form in enumerate(forms if isinstance(forms, list) else []):
        files[f"forms/f{index}.yaml"] = draw(damaged(_yaml_text(form)))
    (root / "forms").mkdir()
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    assert_loads_or_reports(root, files)


def test_the_fuzzed_pack_is_valid_in_every_layout() -> None:
    for layout in ("yaml", "json", "folder"):
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp)
            pack = copy.deepcopy(PACK)
            if layout == "folder":
                forms = pack.pop("forms")
                (root / "forms").mkdir()
                for form in forms:
                    (root / "forms" / f"{form['form']}.yaml").write_text(_yaml_text(form))
                (root / "app.yaml").write_text(_yaml_text(pack))
                app = load_pack(root)
            else:
                text = _yaml_text(pack) if layout == "yaml" else json.dumps(pack)
                (root / f"pack.{layout}").write_text(text, encoding="utf-8")
                app = load_pack(root / f"pack.{layout}")
            assert [f.form for f in app.forms] == ["account", "site"], layout


@settings(FUZZ, max_examples=90)
@given(pack=mutated_packs(), layout=st.sampled_from(["yaml", "json", "folder"]), data=st.data())
def test_mutated_packs_load_or_report(pack: dict[str, Any], layout: str, data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        write_and_load(Path(tmp), pack, layout, data.draw)


@settings(FUZZ, max_examples=40)
@given(text=readable_text | noise, suffix=st.sampled_from([".yaml", ".json"]))
def test_random_text_as_a_single_file_pack(text: str, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        target = Path(tmp) / f"pack{suffix}"
        target.write_text(text, encoding="utf-8")
        assert_loads_or_reports(target, {str(target): text})


@settings(FUZZ, max_examples=25)
@given(text=readable_text | noise)
def test_random_text_as_app_yaml_and_form_files(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        (root / "forms").mkdir()
        (root / "app.yaml").write_text(text, encoding="utf-8")
        (root / "forms" / "a.yaml").write_text(text, encoding="utf-8")
        form = "form: lead\nlabel: Lead\n" + text + "\nfields: [{key: a, type: text}]\n"
        (root / "forms" / "lead.yaml").write_text(form, encoding="utf-8")
        assert_loads_or_reports(root, {"app.yaml": text, "forms/a.yaml": text, "forms/lead.yaml": form})


# --- crashes found by fuzzing: each must load or become a DefinitionError ---------------------

A_FORM = "form: lead\nlabel: Lead\nfields:\n  - key: a\n    type: {type}\n{extra}"
AN_APP = "app: t\nlabel: Test\nversion: '1'\n"


def _known(reason: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(reason=reason, strict=True)


@pytest.mark.parametrize(
    ("app_text", "form_text"),
    [
        pytest.param(
            AN_APP + "description: bad\x01\n",
            None,
            id="control-character",
        ),
        pytest.param(
            AN_APP + "description: del\x7f\n",
            None,
            id="del-character",
        ),
        pytest.param(
            "app: t\nlabel: Test\nversion: !!int one\n",
            None,
            id="bad-int-tag",
        ),
        pytest.param(
            AN_APP + "currency: !!float x\n",
            None,
            id="bad-float-tag",
        ),
        pytest.param(
            AN_APP + "description: !!bool maybe\n",
            None,
            id="bad-bool-tag",
        ),
        pytest.param(
            AN_APP + "description: &x [*x]\n",
            None,
            id="recursive-alias",
        ),
        pytest.param(
            None,
            '{"form": "\\ud83d\\ude00", "label": "x", "fields": []}\n',
            id="json-surrogate-pair-in-an-error",
        ),
        # Fixed in e81e82e; kept as regressions.
        pytest.param(None, "- form: lead\n", id="form-file-is-a-list"),
        pytest.param(None, "lead\n", id="form-file-is-a-scalar"),
        pytest.param(
            None,
            A_FORM.format(
                type="datetime", extra="    min: 2024-01-01T00:00:00Z\n    max: 2024-06-01T00:00:00\n"
            ),
            id="aware-and-naive-datetime-bounds",
        ),
        pytest.param(
            None,
            A_FORM.format(
                type="datetime",
                extra="    min: 2024-01-01T00:00:00+08:00\n    default: 2024-06-01T00:00:00\n",
            ),
            id="aware-bound-naive-default",
        ),
    ],
)
def test_known_crash(tmp_path: Path, app_text: str | None, form_text: str | None) -> None:
    files = {
        "app.yaml": app_text or "app: t\nlabel: Test\nversion: 1.0.0\n",
        "forms/lead.yaml": form_text or A_FORM.format(type="text", extra=""),
    }
    (tmp_path / "forms").mkdir()
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    assert_loads_or_reports(tmp_path, files)
