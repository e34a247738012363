"""``Redactor``: the API key never leaves the hook, in any of the forms a server echoes it in."""

from __future__ import annotations

import json
import string
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from airflow_provider_sei.hooks.redact import REPLACEMENT, Redactor, encoded_forms, secret_segment

#: A key whose secret has every character URL-encoding and JSON treat specially.
KEY = "pat.acct123.tok456.s3cr/3t+v=al~ue"
SECRET = "s3cr/3t+v=al~ue"


def forms_of(secret: str) -> dict[str, str]:
    json_form = json.dumps(secret)[1:-1]
    return {
        "as is": secret,
        "quote": quote(secret),
        "quote, nothing safe": quote(secret, safe=""),
        "quote_plus": quote_plus(secret),
        "json": json_form,
        "json, slash escaped": json_form.replace("/", "\\/"),
        "lower-case escapes": quote(secret, safe="").lower(),
        "upper-case key": secret.upper(),
    }


@pytest.mark.parametrize("form", list(forms_of(KEY)))
def test_every_form_of_the_key_is_removed(form):
    text = f"401: the key {forms_of(KEY)[form]} is not valid"
    redacted = Redactor(KEY)(text)
    assert redacted == f"401: the key {REPLACEMENT} is not valid"


@pytest.mark.parametrize("form", list(forms_of(SECRET)))
def test_the_secret_segment_alone_is_removed_in_every_form(form):
    text = f"token secret={forms_of(SECRET)[form]}&x=1"
    assert Redactor(KEY)(text) == f"token secret={REPLACEMENT}&x=1"


@pytest.mark.parametrize("space", [" ", "\n", "\r\n", "\t", "\n    "])
def test_a_key_folded_by_whitespace_is_still_found(space):
    folded = KEY[:10] + space + KEY[10:25] + space + KEY[25:]
    redactor = Redactor(KEY)
    assert redactor(f"<p>{folded}</p>") == f"<p>{REPLACEMENT}</p>"
    assert redactor.found_in(folded)


def test_account_and_token_ids_are_not_secret():
    assert Redactor(KEY)("account acct123, token tok456") == "account acct123, token tok456"


def test_a_short_secret_segment_is_not_redacted_alone_but_the_key_is():
    key = "pat.acct.tok.abc"
    assert secret_segment(key) is None
    assert Redactor(key)(f"{key} and abc") == f"{REPLACEMENT} and abc"


@pytest.mark.parametrize(
    ("key", "segment"),
    [
        ("pat.a.b.0123456789", "0123456789"),
        ("sat.a.b.0123456789", "0123456789"),
        ("xyz.a.b.0123456789", None),
        ("pat.a.0123456789", None),
        ("plainkey", None),
    ],
)
def test_secret_segment(key, segment):
    assert secret_segment(key) == segment


def test_forms_are_deduplicated_and_longest_first():
    assert encoded_forms("plain") == ["plain"]
    redactor = Redactor(KEY)
    assert len(set(redactor.forms)) == len(redactor.forms)
    assert [len(f) for f in redactor.forms] == sorted(
        (len(f) for f in redactor.forms), reverse=True
    )


def test_no_secret_means_no_change_and_the_repr_shows_no_form():
    assert Redactor()("anything pat.a.b.c") == "anything pat.a.b.c"
    assert Redactor(None, "")("text") == "text"
    assert KEY not in repr(Redactor(KEY))
    assert SECRET not in repr(Redactor(KEY))


def test_several_secrets():
    redactor = Redactor(KEY, "proxy-password-1")
    assert redactor(f"{KEY} via proxy-password-1") == f"{REPLACEMENT} via {REPLACEMENT}"


def test_mask_in_logs_registers_every_form_with_airflow():
    from airflow.sdk.log import redact  # the masker Airflow's task logs go through

    key = "pat.acct.tok.mask-me-0123456789/x"
    Redactor(key).mask_in_logs()
    for form in encoded_forms(key):
        assert form not in str(redact(f"value {form}"))


KEYS = st.text(alphabet=string.ascii_letters + string.digits + "-_.~+/=", min_size=8, max_size=60)
TEXT = st.text(alphabet=string.printable, max_size=80)


@settings(max_examples=300, deadline=None)
@given(key=KEYS, before=TEXT, after=TEXT, encode=st.sampled_from([str, quote, quote_plus]))
def test_no_text_around_a_key_keeps_it_from_being_removed(key, before, after, encode):
    redacted = Redactor(key)(before + encode(key) + after)
    assert encode(key) not in redacted
    assert REPLACEMENT in redacted
