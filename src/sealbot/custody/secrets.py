"""Secret values whose every printable form is masked.

A ``Secret`` shows ``***`` through ``repr``, ``str``, ``format``, pydantic JSON and
pickle, so a secret that ends up in a log line, an exception, an API response or a
task queue by mistake leaks nothing. The value comes out only through ``reveal()``,
which is easy to grep for: outside custody nobody should call it.

Every secret is registered with ``custody.redaction`` the moment it is created, so
even a revealed value that reaches a log through some other path is masked there.
"""

from __future__ import annotations

import hmac
from typing import Any, Final, NoReturn

from sealbot.custody.redaction import MASK, register_secret

HINT_LENGTH: Final = 4


class Secret:
    """A string that refuses to be printed, compared in variable time or pickled in clear."""

    __slots__ = ("_masked", "_value")

    def __init__(self, value: str) -> None:
        if not isinstance(value, str):
            raise TypeError("Secret wraps a str")
        self._value = value
        self._masked = False
        register_secret(value)

    @classmethod
    def _placeholder(cls) -> Secret:
        """What an unpickled secret becomes: a marker that refuses ``reveal()``."""
        blank = cls.__new__(cls)
        blank._value = ""
        blank._masked = True
        return blank

    def reveal(self) -> str:
        """The plaintext. Only custody and the signer call this."""
        if self._masked:
            raise ValueError("this secret was serialised and its value dropped; it cannot be revealed")
        return self._value

    def __repr__(self) -> str:
        return f"Secret('{MASK}')"

    def __str__(self) -> str:
        return MASK

    def __format__(self, spec: str) -> str:
        return MASK

    def __bool__(self) -> bool:
        return bool(self._value)

    def __len__(self) -> int:
        return len(self._value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    __hash__ = None  # type: ignore[assignment]  # a hash would be an oracle on the value

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        # pickle (multiprocessing, caches, task queues) gets a placeholder, never the value
        return (Secret._placeholder, ())

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """Lets pydantic models hold a ``Secret``; their JSON shows the mask."""
        from pydantic_core import core_schema

        return core_schema.no_info_plain_validator_function(
            _to_secret,
            serialization=core_schema.plain_serializer_function_ser_schema(lambda _s: MASK),
        )


def _to_secret(value: object) -> Secret:
    if isinstance(value, Secret):
        return value
    if isinstance(value, str):
        return Secret(value)
    raise TypeError("a secret must be a string")


def _as_secret(value: str | Secret) -> Secret:
    return value if isinstance(value, Secret) else Secret(value)


def hint_of(api_key: str) -> str:
    """The last four characters, all the UI ever shows of an API key (``…AbCd``)."""
    return api_key[-HINT_LENGTH:] if len(api_key) > HINT_LENGTH * 2 else ""


class ApiCredentials:
    """An exchange API key, its secret and (KuCoin, OKX) passphrase, all masked.

    The API key is masked too: it is half of the credential and identifies the
    account to anyone who finds it. ``hint`` is the only part meant to be shown.
    """

    __slots__ = ("api_key", "passphrase", "secret")

    api_key: Secret
    secret: Secret
    passphrase: Secret | None

    def __init__(self, api_key: str | Secret, secret: str | Secret, passphrase: str | Secret | None = None) -> None:
        object.__setattr__(self, "api_key", _as_secret(api_key))
        object.__setattr__(self, "secret", _as_secret(secret))
        object.__setattr__(self, "passphrase", None if passphrase is None else _as_secret(passphrase))

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError("ApiCredentials is immutable")

    @property
    def hint(self) -> str:
        return hint_of(self.api_key.reveal())

    def __repr__(self) -> str:
        extra = f", passphrase='{MASK}'" if self.passphrase is not None else ""
        return f"ApiCredentials(api_key='…{self.hint}', secret='{MASK}'{extra})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiCredentials):
            return NotImplemented
        return (self.api_key == other.api_key and self.secret == other.secret
                and (self.passphrase is None) == (other.passphrase is None)
                and (self.passphrase is None or self.passphrase == other.passphrase))

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, tuple[()]]:
        return (_masked_credentials, ())


def _masked_credentials() -> ApiCredentials:
    placeholder = Secret._placeholder()
    return ApiCredentials(placeholder, placeholder)
