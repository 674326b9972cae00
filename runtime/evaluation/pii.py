"""Find personal data in text: e-mail addresses, phone numbers and payment card numbers.

Card numbers must pass the Luhn checksum, which keeps order numbers and timestamps of the right length from
being reported; a digit run that is a valid card is not also reported as a phone number. Phone numbers are
10 to 15 digits (E.164's bound), written with a leading ``+`` or with the usual separators, or as one run
of exactly 10 digits. Findings are returned masked: a PII check must not copy the PII into the store.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["Finding", "find_pii", "luhn_valid"]

_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_PHONE = re.compile(
    r"(?<![\w+])(?:\+\d[\d\s().-]{8,18}\d|\(?\d{2,4}\)?[\s.-]\d[\d\s.-]{5,14}\d|\d{10})(?!\w)"
)


@dataclass(frozen=True, slots=True)
class Finding:
    kind: str  # "email", "phone" or "card"
    masked: str
    start: int


def luhn_valid(digits: str) -> bool:
    """The checksum every payment card number carries (ISO/IEC 7812)."""
    if not digits.isdigit() or len(digits) < 2:
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _mask(text: str, keep: int = 2) -> str:
    return text[:keep] + "*" * max(0, len(text) - keep * 2) + text[-keep:] if len(text) > keep * 2 else "***"


def _digits(text: str) -> str:
    return "".join(ch for ch in text if ch.isdigit())


def find_pii(text: str) -> Iterator[Finding]:
    taken: list[range] = []
    for match in _EMAIL.finditer(text):
        user, _, domain = match.group().partition("@")
        yield Finding("email", f"{_mask(user, 1)}@{domain}", match.start())
    for match in _CARD.finditer(text):
        digits = _digits(match.group())
        if 13 <= len(digits) <= 19 and luhn_valid(digits):
            taken.append(range(match.start(), match.end()))
            yield Finding("card", "*" * (len(digits) - 4) + digits[-4:], match.start())
    for match in _PHONE.finditer(text):
        if any(match.start() in span for span in taken):
            continue
        digits = _digits(match.group())
        if 10 <= len(digits) <= 15:
            yield Finding("phone", _mask(digits), match.start())
