"""Money as integer fen (hundredths of a yuan): exact and cheap to add."""

from __future__ import annotations

from decimal import Decimal


def fen(amount: Decimal) -> int:
    return int(amount * 100)


def yuan(fen: int) -> str:
    """Evidence text of an amount: ``"12.50"``."""
    return f"{fen // 100}.{fen % 100:02d}"
