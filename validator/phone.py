"""Phone numbers to E.164 with Google's libphonenumber metadata (the ``phonenumbers`` package).

One function, used twice: ``messages.py``'s "did you mean" for an ``ADDRESS_E164`` failure (no
region: only a number that carries its own country code), and ``repair.py``'s ``PHONE_E164``
repair (with ``--default-country`` for national numbers). The library parses, drops what it
knows is not part of the number (punctuation, a national trunk prefix such as the ``(0)`` in
``+44 (0)20 7946 0958``), and says whether the result is a valid number; nothing here guesses.
Only rows that already failed reach this module, so its cost is off the column-wide path.
"""

from __future__ import annotations

import re
from functools import lru_cache

__all__ = ["to_e164"]

# What a written phone number may hold besides digits: '+', the usual separators and spaces.
# Anything else (letters, 'x' for an extension, '*', '#', '?', '_', a run of dots) is a mask,
# an extension or not a phone number: never repaired, never suggested.
_ALLOWED = re.compile(r"[0-9+\-.()/\s]+")
_MASK = re.compile(r"\.\.|--|\+.*\+|\(\s*\)")


@lru_cache(maxsize=4096)
def to_e164(text: str, region: str | None = None) -> str | None:
    """``text`` as E.164 (``+442079460958``) when libphonenumber reads exactly one valid number
    from it, else None.

    A number written with its country code (``+...``) must be valid; one without needs
    ``region`` (an ISO 3166-1 alpha-2 code) and must be valid *for that region*. Masked text
    (``+1214......2``), extensions, letters (``1-800-FLOWERS``) and anything the library cannot
    parse give None.
    """
    stripped = text.strip()
    if not stripped or not _ALLOWED.fullmatch(stripped) or _MASK.search(stripped):
        return None
    if sum(c.isdigit() for c in stripped) < 3:
        return None
    if region is None and not stripped.lstrip("( ").startswith(("+", "00")):
        return None  # no country code and no region: the library would refuse it, slowly
    import phonenumbers
    from phonenumbers import CountryCodeSource, NumberParseException

    # Without a region, '00' (the international prefix ITU-T E.164 recommends) still says the
    # country code follows: read it as a region whose prefix is 00 would, and accept only that.
    idd_only = region is None and stripped.startswith("00")
    try:
        number = phonenumbers.parse(stripped, "GB" if idd_only else region, keep_raw_input=True)
    except NumberParseException:
        return None
    if number.extension:
        return None
    source = number.country_code_source
    if idd_only and source != CountryCodeSource.FROM_NUMBER_WITH_IDD:
        return None
    if source == CountryCodeSource.FROM_DEFAULT_COUNTRY:
        if region is None or not phonenumbers.is_valid_number_for_region(number, region):
            return None
    elif not phonenumbers.is_valid_number(number):
        return None
    return str(phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164))
