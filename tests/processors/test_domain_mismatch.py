"""Whether the ERP ordered what the quote promised (``processors.domain.mismatch``).

Quantities of the same text are taken as the same number without parsing them: these pin that
the answer is still what comparing them as decimals gives, in the order the lines are numbered.
"""

from __future__ import annotations

from typing import Any

import pytest

from processors.domain import mismatch
from processors.domain.mismatch import order_mismatch

pytestmark = pytest.mark.unit


def _lines(*quantities: Any, sku: str = "S") -> dict[str, dict[str, Any]]:
    return {
        str(n): {"sku": sku, "product_id": None, "quantity": q} for n, q in enumerate(quantities, 1)
    }


def _lines_differ(promised: dict[str, Any], ordered: dict[str, Any]) -> list[str]:
    return order_mismatch({"lines": promised}, {"lines": ordered}).get("lines", [])


def test_quantities_are_compared_as_numbers() -> None:
    assert _lines_differ(_lines("2", "1.5"), _lines("2", "1.5")) == []
    assert _lines_differ(_lines("2", "1.5"), _lines("2.00", "1.50")) == []
    assert _lines_differ(_lines("2"), _lines("3")) == ["line 1 quantity 2 != 3"]
    # text that is no number reads as none on both sides, as before
    assert _lines_differ(_lines("two"), _lines("two")) == []
    assert _lines_differ(_lines(None), _lines(None)) == []
    assert _lines_differ(_lines(None), _lines("1")) == ["line 1 quantity None != 1"]


@pytest.mark.parametrize("nan", ["NaN", "nan", "-NaN"])
def test_a_nan_quantity_equals_nothing_not_even_itself(nan: str) -> None:
    assert _lines_differ(_lines(nan), _lines(nan)) == [f"line 1 quantity {nan} != {nan}"]


def test_infinity_equals_itself() -> None:
    assert _lines_differ(_lines("Infinity"), _lines("Infinity")) == []
    assert _lines_differ(_lines("Infinity"), _lines("inf")) == []


def test_every_line_that_differs_is_named_in_line_number_order() -> None:
    promised = {**_lines("1", "2", "3"), "10": {"sku": "S", "quantity": "1"}}
    ordered = {"10": {"sku": "T", "quantity": "2"}, "3": {"sku": "S", "quantity": "3"},
               "2": {"sku": "S", "quantity": "2"}, "4": {"sku": "S", "quantity": "1"}}  # fmt: skip
    assert _lines_differ(promised, ordered) == [
        "line 1 missing in the ERP",
        "line 4 not quoted",
        "line 10 quantity 1 != 2",
        "line 10 sku S != T",
    ]
    assert _lines_differ(_lines("1", sku="A"), _lines("1", sku="B")) == ["line 1 sku A != B"]
    assert _lines_differ(_lines("1", sku="A"), {"1": {"sku": None, "quantity": "1"}}) == []


def test_the_texts_kept_parsed_stay_few() -> None:
    for n in range(mismatch._KEEP_PARSED + 10):
        promise, erp = {"total": f"{n}.000"}, {"total": f"{n}.004"}
        assert order_mismatch(promise, erp) == {}  # within half a cent
    assert len(mismatch._parsed) <= mismatch._KEEP_PARSED
    assert order_mismatch({"total": "1.00"}, {"total": "2.00"}) == {
        "net_total": {"quote": "1.00", "erp": "2.00"}
    }
