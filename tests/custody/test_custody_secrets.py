"""Secret types never show their value: repr, str, format, JSON, pickle, redaction."""

from __future__ import annotations

import copy
import json
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import BaseModel

from sealbot.custody.redaction import redact
from sealbot.custody.secrets import ApiCredentials, Secret

API_KEY = "vmPUZE6mv9SD5VNHk4HlWFsOr6aKE2zvsw0MuIgwCIPy6utIco14y7Ju91duEh8A"
SECRET = "NhqPtmdSJYdKjVHjA7PZj4Mge3R5YNiP1e3UZjInClVN65XAbvqqM6A7H5fATj0j"


class Holder(BaseModel):
    label: str
    secret: Secret


def test_every_printable_form_of_credentials_is_masked() -> None:
    creds = ApiCredentials(API_KEY, SECRET, passphrase="kucoin-passphrase-1")
    forms = [repr(creds), str(creds), f"{creds}", repr(creds.secret), str(creds.secret), f"{creds.secret:>80}",
             repr([creds]), repr({"c": creds.api_key})]
    for form in forms:
        assert SECRET not in form and API_KEY not in form and "kucoin-passphrase-1" not in form
    assert creds.hint == "Eh8A"
    assert repr(creds) == "ApiCredentials(api_key='…Eh8A', secret='***', passphrase='***')"


def test_pickle_and_copy_never_carry_the_value() -> None:
    creds = ApiCredentials(API_KEY, SECRET)
    data = pickle.dumps(creds) + pickle.dumps(creds.secret)
    assert SECRET.encode() not in data and API_KEY.encode() not in data
    restored = pickle.loads(pickle.dumps(creds.secret))
    with pytest.raises(ValueError, match="cannot be revealed"):
        restored.reveal()
    assert copy.deepcopy(creds.secret).reveal() == SECRET


def test_json_forms_are_masked_or_refused() -> None:
    holder = Holder(label="x", secret=SECRET)  # type: ignore[arg-type]
    assert json.loads(holder.model_dump_json()) == {"label": "x", "secret": "***"}
    assert holder.secret.reveal() == SECRET
    with pytest.raises(TypeError):
        json.dumps({"secret": Secret(SECRET)})


def test_creating_a_secret_registers_it_for_redaction() -> None:
    value = "short-but-registered-7"  # not secret-shaped: only registration can mask it
    assert "short-but-registered-7" in redact(f"x {value} y")
    Secret(value)
    assert value not in redact(f"x {value} y {value.encode().hex()}")


# under 8 characters the redactor does not register a secret, so hypothesis's examples
# do not end up masked in other tests' log output
@given(st.text(min_size=1, max_size=7), st.text(min_size=1, max_size=7))
def test_equality_is_by_value(a: str, b: str) -> None:
    assert (Secret(a) == Secret(b)) == (a == b)


def test_a_log_line_written_while_the_redaction_pattern_compiles_does_not_hang(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Compiling the pattern may run the garbage collector, and a finalizer that logs
    (ccxt warns from ``__del__`` about an exchange left open) re-enters ``redact`` on the
    same thread while the registry is busy: it must mask, not wait for itself."""
    import re
    import threading

    from sealbot.custody import redaction

    Secret("a-secret-nobody-registered-before-0451")  # the next redact must compile the pattern
    compile_ = re.compile
    inner: list[str] = []
    finalizers = [lambda: inner.append(redact("from a finalizer: a-secret-nobody-registered-before-0451"))]

    def compile_with_a_finalizer_logging(pattern: str, flags: int = 0) -> re.Pattern[str]:
        while finalizers:  # as the collector does: each finalizer runs once
            finalizers.pop()()
        return compile_(pattern, flags)

    monkeypatch.setattr(redaction.re, "compile", compile_with_a_finalizer_logging)
    outer: list[str] = []
    worker = threading.Thread(target=lambda: outer.append(redact("a-secret-nobody-registered-before-0451")),
                              daemon=True)
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive(), "redact waited for itself"
    assert inner == ["from a finalizer: ***"] and outer == ["***"]
