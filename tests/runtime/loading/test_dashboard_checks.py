"""Dashboards are checked at load: each mistake is one exact `file:line:col: message`."""

from __future__ import annotations

from pathlib import Path

import pytest

from runtime.loading.loader import load_pack
from runtime.loading.problems import DefinitionError
from tests.support import write_files, write_pack

DEAL = """\
form: deal
label: Deal
fields:
  - {key: title, type: text}
  - {key: amount, type: money}
  - {key: owner, type: user}
  - {key: closes, type: date}
"""


def problems(tmp_path: Path, dashboard: str) -> list[str]:
    pack = write_files(write_pack(tmp_path / "pack", {"deal": DEAL}), {"dashboards/d.yaml": dashboard})
    with pytest.raises(DefinitionError) as caught:
        load_pack(pack)
    return [str(p) for p in caught.value.problems]


def test_a_sound_dashboard_loads(tmp_path: Path) -> None:
    body = (
        "dashboard: d\nlabel: D\nwidgets:\n"
        "  - {key: w, label: W, chart: bar, source: deal,"
        " dimensions: [{key: m, field: closes, bucket: month}],"
        " measures: [{key: n, agg: count}]}\n"
    )
    pack = write_files(write_pack(tmp_path / "pack", {"deal": DEAL}), {"dashboards/d.yaml": body})
    assert [d.dashboard for d in load_pack(pack).dashboards] == ["d"]


def test_fields_measures_and_buckets_are_checked_where_they_are_written(tmp_path: Path) -> None:
    body = (
        "dashboard: d\nlabel: D\nwidgets:\n"
        "  - key: w\n    label: W\n    chart: bar\n    source: deal\n"
        "    dimensions: [{key: t, field: title, bucket: month}]\n"
        "    measures: [{key: s, agg: sum, field: title},"
        " {key: r, agg: ratio, numerator: s, denominator: nope}]\n"
        "    sort: -size\n"
    )
    assert problems(tmp_path, body) == [
        "dashboards/d.yaml:8:49: a bucket needs a date field; 'title' is text",
        "dashboards/d.yaml:9:42: sum needs a number field; 'title' is text",
        "dashboards/d.yaml:9:98: unknown measure 'nope'",
        "dashboards/d.yaml:10:11: sort by an unknown key 'size'",
    ]


def test_a_widget_shape_and_a_filter_are_checked(tmp_path: Path) -> None:
    body = (
        "dashboard: d\nlabel: D\nwidgets:\n"
        "  - {key: w, label: W, chart: pie, source: deal, measures: [{key: n, agg: count}]}\n"
        '  - {key: v, label: V, chart: number, source: deal, where: "amount + 1",'
        " measures: [{key: n, agg: count}]}\n"
    )
    wrong_filter = "dashboards/d.yaml:5:61: the expression gives a decimal value; this needs a boolean value"
    # the widget in error is left out; the rest of the dashboard is still checked, in the same run
    assert problems(tmp_path, body) == ["dashboards/d.yaml:4:5: a pie chart has one dimension", wrong_filter]
    fixed = body.replace("chart: pie,", "chart: number,")
    assert problems(tmp_path, fixed) == [wrong_filter]


def test_a_funnel_refuses_keys_it_would_ignore(tmp_path: Path) -> None:
    body = (
        "dashboard: d\nlabel: D\nwidgets:\n"
        "  - {key: f, label: F, chart: funnel, top: 3,"
        " stages: [{label: A, source: deal}, {label: B, source: deal}]}\n"
    )
    assert problems(tmp_path, body) == [
        "dashboards/d.yaml:4:5: a funnel does not take top: give `where` on its stages",
    ]
