"""The expressions of a form at run time: formulas, expression defaults, fetches, rules, required_when.

Each is compiled once into a Python closure. On every write the service builds the
full record (stored values merged with the input, linked values, child rows) and
runs `FormLogic.fill_defaults`, the fetches (runtime/records/fetching.py) and
`FormLogic.apply`, which fills formulas in dependency order (child rows first) and
collects every rule that fails.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from runtime.expressions.checker import Checked, check
from runtime.expressions.parser import parse
from runtime.expressions.to_python import Evaluator, to_python
from runtime.expressions.types import scope_for
from runtime.loading.expression_checks import fetch_order, formula_order
from runtime.model import App, Form
from runtime.model.fields import is_expression_default
from runtime.records.errors import FieldProblem
from runtime.records.values import Converter, ValueProblem

Clock = Callable[[], dt.datetime]
ONE = Decimal(1)
Record = dict[str, Any]


@dataclass
class Computed:
    """One expression bound to a field: a formula or an expression default."""

    key: str
    evaluate: Evaluator
    store: Callable[[Any], Any]
    checked: Checked | None = None


@dataclass
class Fetch:
    """A field's `fetch`: a value carried from the record's links, `follow` or `default`."""

    key: str
    mode: str
    evaluate: Evaluator
    store: Callable[[Any], Any]
    checked: Checked


@dataclass
class RuleLogic:
    """A compiled rule: its check, its message and the fields it names."""

    evaluate: Evaluator
    message: str
    fields: list[str]


@dataclass
class FormLogic:
    """Everything a form computes or checks on write."""

    formulas: list[Computed] = field(default_factory=list)
    defaults: list[Computed] = field(default_factory=list)
    fetches: list[Fetch] = field(default_factory=list)  # in the order they read each other
    rules: list[RuleLogic] = field(default_factory=list)
    required_when: list[tuple[str, Evaluator]] = field(default_factory=list)
    visible_when: list[tuple[str, Evaluator]] = field(default_factory=list)
    links: set[tuple[str, str]] = field(default_factory=set)
    children: set[str] = field(default_factory=set)
    singles: set[tuple[str, str]] = field(default_factory=set)
    link_children: set[tuple[str, str, str]] = field(default_factory=set)  # LOOKUP over a link's rows
    backlinks: set[tuple[str, str | None]] = field(default_factory=set)  # records linking here
    required: set[str] = field(default_factory=set)

    @property
    def active(self) -> bool:
        """True when the form has anything to compute or check."""
        return bool(self.formulas or self.defaults or self.fetches or self.rules or self.required_when)

    def fill_defaults(self, record: Record, path: str, creating: bool) -> list[FieldProblem]:
        """Expression defaults, on create, of the fields still empty."""
        problems: list[FieldProblem] = []
        if creating:
            for item in self.defaults:
                if record.get(item.key) is None:
                    self._store(item, record, path, problems)
        return problems

    def apply(
        self, record: Record, path: str, creating: bool, *, defaults: bool = True
    ) -> list[FieldProblem]:
        """Fill defaults (on create, unless done already) and formulas into `record`;
        answer the failed checks."""
        problems = self.fill_defaults(record, path, creating) if defaults else []
        for item in self.formulas:
            self._store(item, record, path, problems)
        for key in sorted(self.required):
            if record.get(key) is None:
                problems.append(FieldProblem(f"{path}{key}", "required", "is required"))
        for key, condition in self.required_when:
            if record.get(key) in (None, "", []) and condition(record) is True:
                problems.append(FieldProblem(f"{path}{key}", "required", "is required here"))
        for rule in self.rules:
            if rule.evaluate(record) is False:
                names = rule.fields or [None]  # type: ignore[list-item]
                problems.extend(
                    FieldProblem(f"{path}{k}" if k else None, "rule", rule.message) for k in names
                )
        return problems

    def shown(self, record: Record) -> dict[str, bool]:
        """Which fields with a `visible_when` show for this record (null counts as shown)."""
        return {key: condition(record) is not False for key, condition in self.visible_when}

    def needed(self, record: Record) -> set[str]:
        """The fields whose `required_when` holds for this record."""
        return {key for key, condition in self.required_when if condition(record) is True}

    def _store(self, item: Computed, record: Record, path: str, problems: list[FieldProblem]) -> None:
        try:
            record[item.key] = item.store(item.evaluate(record))
        except ValueProblem as exc:
            record[item.key] = None
            problems.append(FieldProblem(f"{path}{item.key}", exc.code, f"computed value {exc}"))


def compile_logic(app: App, form: Form, converters: dict[str, Converter], clock: Clock) -> FormLogic:
    """Compile every expression of `form` (already checked at load)."""
    scope = scope_for(app, form)
    zone = app.zone()
    logic = FormLogic()

    def compiled(text: str) -> Evaluator:
        body = text.lstrip()
        body = body[1:] if body.startswith("=") else text
        checked = check(parse(body), scope, body)
        _note_reads(logic, checked)
        return to_python(checked, clock, zone, app.calendar)

    formulas: dict[str, tuple[Any, set[str]]] = {}
    for spec in form.stored_fields():
        if spec.formula is not None:
            checked = check(parse(spec.formula), scope, spec.formula)
            _note_reads(logic, checked)
            formulas[spec.key] = (spec, checked.fields)
            converter = converters[spec.key]
            evaluate = to_python(checked, clock, zone, app.calendar)
            logic.formulas.append(Computed(spec.key, evaluate, _storer(spec, converter), checked))
        default = getattr(spec, "default", None)
        if isinstance(default, str) and is_expression_default(default):
            logic.defaults.append(Computed(spec.key, compiled(default), _storer(spec, converters[spec.key])))
            if spec.required:
                logic.required.add(spec.key)
        if spec.required_when is not None:
            logic.required_when.append((spec.key, compiled(spec.required_when)))
        if spec.visible_when is not None:
            logic.visible_when.append((spec.key, compiled(spec.visible_when)))
        if spec.fetch is not None:
            checked = check(parse(spec.fetch), scope, spec.fetch)
            _note_reads(logic, checked)
            evaluate = to_python(checked, clock, zone, app.calendar)
            store = _storer(spec, converters[spec.key])
            logic.fetches.append(Fetch(spec.key, spec.fetch_mode, evaluate, store, checked))
            if spec.required:
                logic.required.add(spec.key)
    order = formula_order({key: reads for key, (_, reads) in formulas.items()})
    logic.formulas.sort(key=lambda item: order.index(item.key))
    fetched = fetch_order({item.key: item.checked.fields for item in logic.fetches})
    logic.fetches.sort(key=lambda item: fetched.index(item.key))
    for rule in form.rules:
        evaluate = compiled(rule.check)
        named = rule.fields or sorted(_field_names(rule.check, scope, form))
        logic.rules.append(RuleLogic(evaluate, rule.message.text(), named))
    return logic


def _note_reads(logic: FormLogic, checked: Checked) -> None:
    logic.links.update(checked.links)
    logic.singles.update(checked.singles)
    logic.children.update(table for table, _ in checked.children)
    logic.link_children.update(checked.link_children)
    logic.backlinks.update(checked.backlinks)


def _field_names(text: str, scope: Any, form: Form) -> set[str]:
    checked = check(parse(text), scope, text)
    return {key for key in checked.fields if form.field(key) is not None}


def _storer(spec: Any, converter: Converter) -> Callable[[Any], Any]:
    """Round a computed number to the field's scale, then apply the field's own checks."""
    kind = spec.type
    if kind == "integer":
        return _integer_storer(spec)
    if kind in ("decimal", "money", "percent"):
        scale = spec.scale if kind == "decimal" else (2 if kind == "money" else 6)
        step = Decimal(1).scaleb(-scale)

        def store_number(value: Any) -> Any:
            if isinstance(value, int | Decimal) and not isinstance(value, bool):
                value = Decimal(value).quantize(step, rounding=ROUND_HALF_UP)
            return None if value is None else converter(value)

        return store_number
    return lambda value: None if value is None else converter(value)


def _integer_storer(spec: Any) -> Callable[[Any], Any]:
    """Whole numbers: round half away from zero, then the field's min and max."""
    low, high = spec.min, spec.max

    def store(value: Any) -> Any:
        if value is None:
            return None
        if isinstance(value, Decimal):
            value = int(value.quantize(ONE, rounding=ROUND_HALF_UP))
        if low is not None and value < low:
            raise ValueProblem("min", f"must be at least {low}")
        if high is not None and value > high:
            raise ValueProblem("max", f"must be at most {high}")
        return value

    return store
