"""Amounts between a vendor's decimal strings (``"9.99"``) and the envelope's integer minor units (``999``).

The number of decimals follows ISO 4217: zero for JPY, KRW, ...; three for KWD, BHD, ...; two otherwise.
Connectors use it to fill the inbound envelope's ``data.amount`` and to read it back.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

__all__ = ["decimals", "to_major", "to_minor"]

_ZERO = frozenset("BIF CLP DJF GNF ISK JPY KMF KRW MGA PYG RWF UGX UYI VND VUV XAF XOF XPF".split())  # noqa: SIM905
_THREE = frozenset("BHD IQD JOD KWD LYD OMR TND".split())  # noqa: SIM905


def decimals(currency: str) -> int:
    """The digits after the decimal point of ``currency``'s minor unit."""
    code = currency.upper()
    return 0 if code in _ZERO else 3 if code in _THREE else 2


def to_minor(value: object, currency: str) -> int | None:
    """``value`` (a decimal string or number in major units) as integer minor units; ``None`` when it is no number."""
    if isinstance(value, bool) or value is None or value == "":
        return None
    try:
        amount = Decimal(str(value).strip())
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return int(amount.scaleb(decimals(currency)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_major(amount: int, currency: str) -> Decimal:
    """Integer minor units as a decimal in major units (``999`` USD is ``9.99``)."""
    return Decimal(amount).scaleb(-decimals(currency))
