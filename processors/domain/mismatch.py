"""Whether the ERP ordered what the quote promised: net total, currency and lines.

Pure, over the ledger's JSON-shaped parts (``processors.domain.reconcile``): amounts and
quantities are decimal texts, compared as numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

__all__ = ["order_mismatch"]

_CENT = Decimal("0.005")
_UNPARSED = object()
_parsed: dict[str, Any] = {}
"""Texts of amounts and quantities lately parsed (a ``Decimal`` is immutable): an order's
amounts are compared again at every change of its ledger entry."""
_KEEP_PARSED = 4096


def _decimal(value: Any) -> Decimal | None:
    if type(value) is not str:
        return _parse(value)
    found = _parsed.get(value, _UNPARSED)
    if found is _UNPARSED:
        if len(_parsed) >= _KEEP_PARSED:
            _parsed.clear()
        found = _parsed[value] = _parse(value)
    return found


def _parse(value: Any) -> Decimal | None:
    if value is None:
        return None
    try:
        return Decimal(str(value))
    except InvalidOperation:
        return None


def _net_promised(promise: Mapping[str, Any]) -> Decimal | None:
    total = _decimal(promise.get("total"))
    return None if total is None else total - (_decimal(promise.get("tax_total")) or 0)


def _net_ordered(erp: Mapping[str, Any]) -> Decimal | None:
    """The ERP order's amount before tax and shipping (the quote's total is net of tax)."""
    total = _decimal(erp.get("total"))
    if total is None:
        return _decimal(erp.get("subtotal"))
    tax = _decimal(erp.get("tax_total")) or 0
    return total - tax - (_decimal(erp.get("shipping_total")) or 0)


def _cents(amount: Decimal) -> str:
    return str(amount.quantize(Decimal("0.01")))


def _same_quantity(want: Any, have: Any) -> bool:
    """Whether two quantities are the same number: the same text (without a NaN, which equals
    nothing) is, without parsing it."""
    if want == have and type(want) is str and "n" not in want and "N" not in want:
        return True
    return _decimal(want) == _decimal(have)


def _lines_agree(promised: Mapping[str, Any], ordered: Mapping[str, Any]) -> bool:
    """Whether :func:`_line_differences` finds none, checked without sorting or wording."""
    if promised.keys() != ordered.keys():
        return False
    for number, want in promised.items():
        have = ordered[number]
        if want is None or have is None:
            return False
        if not _same_quantity(want.get("quantity"), have.get("quantity")):
            return False
        if want.get("sku") and have.get("sku") and want["sku"] != have["sku"]:
            return False
    return True


def _line_differences(promised: Mapping[str, Any], ordered: Mapping[str, Any]) -> list[str]:
    if _lines_agree(promised, ordered):
        return []
    out = []
    for number in sorted(promised.keys() | ordered.keys(), key=int):
        want, have = promised.get(number), ordered.get(number)
        if want is None or have is None:
            out.append(f"line {number} {'missing in the ERP' if have is None else 'not quoted'}")
            continue
        if not _same_quantity(want.get("quantity"), have.get("quantity")):
            out.append(f"line {number} quantity {want.get('quantity')} != {have.get('quantity')}")
        if want.get("sku") and have.get("sku") and want["sku"] != have["sku"]:
            out.append(f"line {number} sku {want['sku']} != {have['sku']}")
    return out


def order_mismatch(promise: Mapping[str, Any], erp: Mapping[str, Any]) -> dict[str, Any]:
    """How the ERP's order differs from the quote's promise: net total (beyond half a cent),
    currency, lines (quantities and SKUs); empty when they agree."""
    differs: dict[str, Any] = {}
    want, have = _net_promised(promise), _net_ordered(erp)
    if want is not None and have is not None and abs(want - have) > _CENT:
        differs["net_total"] = {"quote": _cents(want), "erp": _cents(have)}
    if promise.get("currency") and erp.get("currency") and promise["currency"] != erp["currency"]:
        differs["currency"] = {"quote": promise["currency"], "erp": erp["currency"]}
    if erp.get("lines"):
        lines = _line_differences(promise.get("lines") or {}, erp["lines"])
        if lines:
            differs["lines"] = lines
    return differs
