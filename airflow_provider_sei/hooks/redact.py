"""One redactor for every string that leaves the hook: the API key never does, in any form.

A server or proxy can echo the key back in many shapes, and each shape has leaked somewhere
before: URL-encoded in a 401 message, only its secret part, split by a line break in an HTML
page, inside a redirect's ``Location`` or a ``Content-Disposition`` filename. The forms
removed here are:

* the key itself;
* its URL-encoded forms (``quote`` with and without ``/`` safe, ``quote_plus``) and its JSON
  string form (``/`` escaped as ``\\/``);
* the secret segment of a ``pat.<account>.<token>.<secret>`` or ``sat.…`` key, alone, in the
  same forms (the account and token ids are not secret);
* each of the above with any whitespace inside it (a key folded over two lines).

Matching ignores case (an escaped ``%2f`` is the same as ``%2F``): that can only remove more,
never less. Every form is also registered with Airflow's ``mask_secret``, so task logs mask it
even where a string does not pass through this class.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

REPLACEMENT = "***"
_KEY_PREFIXES = ("pat", "sat")
#: A secret segment shorter than this is not redacted alone (it would mangle ordinary text);
#: the whole key still is.
_MIN_SEGMENT = 8


def secret_segment(api_key: str) -> str | None:
    """Return the ``<secret>`` of a ``pat.<account>.<token>.<secret>`` (or ``sat.``) key."""
    parts = api_key.split(".")
    if len(parts) == 4 and parts[0] in _KEY_PREFIXES and len(parts[3]) >= _MIN_SEGMENT:
        return parts[3]
    return None


def encoded_forms(secret: str) -> list[str]:
    """``secret`` as it may appear in a URL, a query string or a JSON document, deduplicated."""
    in_json = json.dumps(secret)[1:-1]
    forms = [
        secret,
        quote(secret, safe=""),
        quote(secret),
        quote_plus(secret),
        in_json,
        in_json.replace("/", "\\/"),  # JSON may escape "/" (PHP, some Java encoders do)
    ]
    return list(dict.fromkeys(form for form in forms if form))


class Redactor:
    """Removes every form of the given secrets from text.

    :param secrets: the API key (and anything else never to show); empty ones are ignored.
    """

    def __init__(self, *secrets: str | None) -> None:
        forms: list[str] = []
        for secret in secrets:
            if not secret:
                continue
            forms += encoded_forms(secret)
            segment = secret_segment(secret)
            if segment:
                forms += encoded_forms(segment)
        # Longest first: the whole key goes before its segment would cut it in two.
        self.forms: tuple[str, ...] = tuple(sorted(dict.fromkeys(forms), key=len, reverse=True))
        self._pattern = _pattern(self.forms) if self.forms else None

    def __call__(self, text: str) -> str:
        """``text`` with every form of every secret replaced by ``***``."""
        if self._pattern is None or not text:
            return text
        return self._pattern.sub(REPLACEMENT, text)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({len(self.forms)} forms)"

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds a form of a secret."""
        return self._pattern is not None and bool(text) and self._pattern.search(text) is not None

    def mask_in_logs(self) -> None:
        """Register every form with Airflow's secrets masker (task logs, rendered fields)."""
        from airflow.providers.common.compat.sdk import mask_secret

        for form in self.forms:
            mask_secret(form)


def _pattern(forms: Iterable[str]) -> re.Pattern[str]:
    # Whitespace may sit between any two characters of a form: "pat.a.b.se\ncret".
    alternatives = (r"\s*".join(re.escape(char) for char in form) for form in forms)
    return re.compile("|".join(alternatives), re.IGNORECASE)
