"""Every kind of expression error: the exact message and the 0-based offset it points at."""

from __future__ import annotations

import pytest

from runtime.expressions.checker import check
from runtime.expressions.parser import parse
from runtime.expressions.syntax import MAX_DEPTH, MAX_LENGTH, MAX_NODES, ExpressionError
from runtime.expressions.types import BOOLEAN, DATE, DECIMAL, INTEGER, REF, TEXT, Scope, Type

SCOPE = Scope(
    "deal",
    {
        "budget": DECIMAL,
        "visits": INTEGER,
        "name": TEXT,
        "hot": BOOLEAN,
        "due": DATE,
        "source": Type("text", options=("seo", "ads", "referral")),
        "account": REF,
    },
    links={"account": lambda: Scope("account", {"name": TEXT, "industry": TEXT})},
    children={"lines": lambda: Scope("line", {"amount": DECIMAL, "sku": TEXT})},
)


def error(text: str) -> tuple[str, int]:
    """The message and offset of the error in `text`, which must have one."""
    with pytest.raises(ExpressionError) as caught:
        check(parse(text), SCOPE, text)
    return caught.value.message, caught.value.offset


def test_the_message_names_the_position_counting_from_one() -> None:
    with pytest.raises(ExpressionError) as caught:
        parse("budget $ 2")
    assert str(caught.value) == "unexpected character '$' (at character 8)"


def test_unknown_field_suggests_the_closest_name() -> None:
    assert error("visits + budgte") == ("unknown field 'budgte' (did you mean 'budget'?)", 9)


def test_unknown_field_without_a_close_name() -> None:
    assert error("zzz") == ("unknown field 'zzz'", 0)


def test_unknown_linked_field_suggests_the_closest_name() -> None:
    assert error("1 + account.nme") == ("form 'account' has no field 'nme' (did you mean 'name'?)", 4)


def test_unknown_child_column_suggests_the_closest_name() -> None:
    assert error("SUM(lines.amont)") == (
        "the rows of 'lines' have no field 'amont' (did you mean 'amount'?)",
        4,
    )


def test_type_mismatch_points_at_the_wrong_operand() -> None:
    assert error("'abc' + 3") == ("'+' needs a number, not text", 0)
    assert error("3 + 'abc'") == ("'+' needs a number, not text", 4)
    assert error("+'abc'") == ("'+' needs a number, not text", 1)
    assert error("IF(1, 2, 3)") == ("IF's condition needs a boolean value, not integer", 3)
    assert error("ADD_DAYS(due, 'x')") == ("ADD_DAYS's days needs an integer value, not text", 14)
    assert error("MIN(name, 1)") == ("MIN mixes text and integer values", 10)
    assert error("due < 1") == ("cannot compare date with integer", 4)
    assert error("budget and hot") == ("'and' needs a boolean value, not decimal", 0)


def test_wrong_argument_count() -> None:
    assert error("ROUND(budget, 2, 3)") == ("ROUND takes 1 to 2 argument(s), not 3", 0)
    assert error("1 + IF(hot, 1)") == ("IF takes 3 argument(s), not 2", 4)
    assert error("COALESCE()") == ("COALESCE takes 1 or more argument(s), not 0", 0)
    assert error("TODAY(1)") == ("TODAY takes 0 argument(s), not 1", 0)
    assert error("IFS(hot, 1, visits > 2)") == ("IFS takes pairs: condition, value, condition, value …", 0)


def test_unknown_function() -> None:
    assert error("ROUNDD(budget)") == ("unknown function ROUNDD (did you mean 'ROUND'?)", 0)
    assert error("visits + xyzzy(1)") == ("unknown function XYZZY", 9)


def test_unexpected_character() -> None:
    assert error("budget $ 2") == ("unexpected character '$'", 7)
    assert error("name == 'a'; 1") == ("unexpected character ';'", 11)
    assert error("visits + ２") == ("unexpected character '２'", 9)


def test_unterminated_text_is_an_unexpected_quote() -> None:
    assert error("name == 'abc") == ('unexpected character "\'"', 8)


def test_unexpected_end() -> None:
    assert error("(budget + 2") == ("expected ')' but found end of the expression", 11)
    assert error("IF(hot, 1, 2") == ("expected ')' but found end of the expression", 12)
    assert error("visits in [1, 2") == ("expected ']' but found end of the expression", 15)
    assert error("budget +") == ("unexpected end of the expression", 8)
    assert error("account.") == ("expected a field name after '.', found end of the expression", 8)


def test_unexpected_token() -> None:
    assert error("1 2") == ("unexpected '2'", 2)
    assert error("[1]") == ("unexpected '['", 0)


def test_chained_comparison() -> None:
    assert error("1 < visits < 3") == ("comparisons cannot be chained; join them with 'and'", 11)
    assert error("visits == 1 != hot") == ("comparisons cannot be chained; join them with 'and'", 12)


def test_select_literal_that_is_not_an_option() -> None:
    assert error("source == 'sea'") == (
        "'sea' is not an option (did you mean 'seo'?); options: seo, ads, referral",
        10,
    )
    assert error("'xyz' != source") == ("'xyz' is not an option; options: seo, ads, referral", 0)
    assert error("source in ['seo', 'adds']") == (
        "'adds' is not an option (did you mean 'ads'?); options: seo, ads, referral",
        18,
    )


def test_child_column_outside_an_aggregate() -> None:
    assert error("lines.amount > 3") == (
        "'lines.amount' holds many values; use SUM, AVG, MIN, MAX or COUNT",
        0,
    )
    assert error("budget + lines.amount") == (
        "'lines.amount' holds many values; use SUM, AVG, MIN, MAX or COUNT",
        9,
    )
    assert error("MIN(lines.amount, 1)") == (
        "'lines.amount' holds many values; use SUM, AVG, MIN, MAX or COUNT",
        4,
    )
    assert error("lines > 0") == ("'lines' holds rows; use COUNT(lines)", 0)


def test_aggregate_of_something_that_is_not_rows() -> None:
    message = "SUM takes the rows of a table field or backlink, such as SUM(lines.amount)"
    assert error("SUM(budget)") == (message, 4)
    assert error("AVG(lines)") == ("name a column: AVG(lines.field)", 4)
    assert error("SUM(lines.sku)") == ("SUM needs a number, not text", 4)


def test_too_long() -> None:
    assert MAX_LENGTH == 2000
    parse("1" + " " * (MAX_LENGTH - 1))  # exactly at the limit
    assert error("1" + " " * MAX_LENGTH) == ("the expression is longer than 2000 characters", 2000)


def test_too_deep() -> None:
    assert MAX_DEPTH == 40
    parse("(" * (MAX_DEPTH - 1) + "1" + ")" * (MAX_DEPTH - 1))
    assert error("(" * MAX_DEPTH + "1" + ")" * MAX_DEPTH) == (
        "the expression nests deeper than 40 levels",
        40,
    )
    assert error("-" * 45 + "1") == ("the expression nests deeper than 40 levels", 40)


def test_too_many_nodes() -> None:
    assert MAX_NODES == 400
    parse("+".join(["1"] * 200))  # 399 nodes
    # the 401st node is the 200th '+', at offset 399
    assert error("1+" * 300 + "1") == ("the expression has more than 400 parts", 399)


def test_null_compared_with_an_order() -> None:
    assert error("visits < null") == ("null cannot be compared with '<'; use == or !=", 7)
    assert error("null >= due") == ("null cannot be compared with '>='; use == or !=", 5)


def test_empty_expression() -> None:
    assert error("") == ("the expression is empty", 0)
    assert error(" \n\t") == ("the expression is empty", 0)


def test_bad_literals() -> None:
    assert error("name == 'a\\qb'") == ("unknown escape \\q", 10)
    assert error("due == #2026-02-30#") == ("invalid date '2026-02-30': day is out of range for month", 7)
    assert error("visits in []") == ("the list after 'in' is empty", 11)


@pytest.mark.parametrize("digits", ["-2", "11", "visits", "2.5", "null", "true"])
def test_round_digits_are_a_literal_from_0_to_10(digits: str) -> None:
    assert error(f"ROUND(budget, {digits})") == ("ROUND's digits must be a whole number from 0 to 10", 14)


def test_numbers_every_database_can_hold() -> None:
    parse("9223372036854775807")
    assert error("visits + 9223372036854775808") == ("the number is too large (integers stop below 2^63)", 9)
    assert error("1" * 39) == ("the number has more than 38 digits", 0)
    assert error("visits * 1." + "5" * 38) == ("the number has more than 38 digits", 9)
