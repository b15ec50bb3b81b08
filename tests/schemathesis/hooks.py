"""schemathesis hooks for the Gatehouse contract run (run.py loads them through SCHEMATHESIS_HOOKS).

Credentials, decided per case (the spec's security schemes say which endpoints take which):

- any bearer endpoint: the `Authorization` a link supplied (register → me, mint → the proxy or
  the admin API with the new key…) is kept.
- `/admin/…` otherwise: the run's admin credential. With the admin token it was given (an
  access token or API key of an admin), this module first mints an admin API key of the run's
  own (`POST /admin/api-keys`): a key belongs to no login session, so the fuzzer resetting the
  admin's password or revoking the admin's sessions cannot cut the run short. Without
  `API_KEY_PEPPER` (minting answers 500 `misconfigured`) the given token is used as it is.
- the other bearer endpoints otherwise (`/auth/me`, `/auth/password`, `/auth/sessions…`, the
  proxy): the access token of a fuzz user this module registers (anew when the fuzzer has
  disabled it or revoked its session, and every FUZZ_USER_SECONDS).
- everything else goes as generated (no credential, or the declared cookie and CSRF
  parameters with generated or linked values).

The run leaves alone the accounts and API keys that existed before it (the admin's above all): a
request that would revoke such a key, or disable, enable, re-role, reset the password of or
revoke the sessions of such a user, is sent for a well-formed id that names nothing instead
(and is answered 404). Accounts and keys the run creates are fair game.

Environment: GATEHOUSE_BASE_URL (required), GATEHOUSE_ADMIN_TOKEN (optional).
"""

from __future__ import annotations

import os
import secrets
import threading
import time
import unicodedata

import requests
import schemathesis

BASE_URL = os.environ["GATEHOUSE_BASE_URL"].rstrip("/")
GIVEN_ADMIN_TOKEN = os.environ.get("GATEHOUSE_ADMIN_TOKEN") or None
FUZZ_USER_SECONDS = float(os.environ.get("GATEHOUSE_FUZZ_USER_SECONDS", "15"))
BEARER_SCHEMES = {"accessToken", "apiKey"}
# Well-formed ids that name nothing.
UNKNOWN_KEY_ID = "key_" + "a" * 26
UNKNOWN_USER_ID = "usr_" + "a" * 26
# (method, path) of the admin operations that change a user given by `{id}`.
USER_CHANGES = {
    ("POST", "/admin/users/{id}/disable"),
    ("POST", "/admin/users/{id}/enable"),
    ("PUT", "/admin/users/{id}/roles"),
    ("POST", "/admin/users/{id}/password"),
    ("DELETE", "/admin/users/{id}/sessions"),
    ("DELETE", "/admin/users/{id}/sessions/{session_id}"),
}


def _post(path: str, body: dict, token: str | None = None) -> requests.Response:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    return requests.post(f"{BASE_URL}{path}", json=body, headers=headers, timeout=30)


def _get(path: str, token: str, params: dict | None = None) -> requests.Response:
    return requests.get(f"{BASE_URL}{path}", params=params, headers={"authorization": f"Bearer {token}"}, timeout=30)


class _Admin:
    token: str | None = None
    protected_key_ids: set[str] = set()
    protected_user_ids: set[str] = set()

    @classmethod
    def setup(cls) -> None:
        if GIVEN_ADMIN_TOKEN is None:
            return
        cls.token = GIVEN_ADMIN_TOKEN
        keys = _get("/admin/api-keys", cls.token)
        if keys.status_code == 200:
            cls.protected_key_ids.update(k["id"] for k in keys.json()["api_keys"])
        cursor = None
        for _ in range(100):  # up to 20,000 users
            page = _get("/admin/users", cls.token, {"limit": 200, **({"cursor": cursor} if cursor else {})})
            if page.status_code != 200:
                break
            cls.protected_user_ids.update(u["id"] for u in page.json()["users"])
            cursor = page.json()["next_cursor"]
            if cursor is None:
                break
        minted = _post("/admin/api-keys", {"label": "schemathesis run", "role": "admin", "scopes": []}, cls.token)
        if minted.status_code == 201:
            cls.token = minted.json()["key"]
            cls.protected_key_ids.add(minted.json()["api_key"]["id"])


_Admin.setup()


class _FuzzUser:
    lock = threading.Lock()
    token: str | None = None
    obtained = 0.0
    registrations = 0
    failed = False

    @classmethod
    def access_token(cls) -> str | None:
        with cls.lock:
            if cls.failed:
                return None
            if cls.token is None or time.monotonic() - cls.obtained > FUZZ_USER_SECONDS:
                email = f"fuzz.{secrets.token_hex(6)}@example.com"
                body = {"email": email, "password": secrets.token_urlsafe(16), "refresh_token_in_body": True}
                res = _post("/auth/register", body)
                if res.status_code != 201:
                    # Registration closed or limited: the bearer endpoints then go without.
                    cls.failed = cls.token is None
                    return cls.token
                cls.token = res.json()["access_token"]
                cls.obtained = time.monotonic()
                cls.registrations += 1
            return cls.token

    @classmethod
    def invalidate(cls, token: str) -> None:
        """The fuzzer disabled the user, reset its password or revoked its session: start anew."""
        with cls.lock:
            if cls.token == token:
                cls.token = None


def _security_schemes(operation) -> set[str]:
    raw = operation.definition.raw
    security = raw.get("security", operation.schema.raw_schema.get("security", []))
    return {name for requirement in security for name in requirement}


def _linked_bearer(case) -> str | None:
    """The bearer token a link put on the case (no other source sets `Authorization` here)."""
    for name, value in (case.headers or {}).items():
        if name.lower() == "authorization" and isinstance(value, str):
            scheme, _, token = value.partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


@schemathesis.auth(refresh_interval=None, retry_on=[])
class GatehouseAuth:
    def get(self, case, context):
        operation = context.operation
        if not (_security_schemes(operation) & BEARER_SCHEMES):
            return None
        linked = _linked_bearer(case)
        if linked is not None:
            # Kept (mint → the admin API with the new key, register → me…), and marked as the
            # case's real credential: `ignored_auth` then checks that the operation refuses the
            # same request without it and with a wrong one.
            return linked
        if operation.path.startswith("/admin/"):
            return _Admin.token
        return _FuzzUser.access_token()

    def set(self, case, data, context):
        case.headers = case.headers or {}
        for name in [name for name in case.headers if name.lower() == "authorization"]:
            del case.headers[name]
        case.headers["Authorization"] = f"Bearer {data}"


@schemathesis.hook
def before_call(context, case, kwargs):
    """Leaves the accounts and keys that existed before the run alone (see the module docstring);
    keeps new accounts' emails to one script per part (see _single_script_email)."""
    path, method = case.operation.path, case.operation.method.upper()
    if method == "POST" and path in ("/auth/register", "/admin/users"):
        # Every phase, the stateful one too, goes through here (see _single_script_email).
        case.body = _single_script_email(case.body)
    if method == "POST" and path == "/auth/login":
        case.body = _without_assertion(case.body)
    params = case.path_parameters
    if not params:
        return
    if (method, path) == ("DELETE", "/admin/api-keys/{id}") and params.get("id") in _Admin.protected_key_ids:
        params["id"] = UNKNOWN_KEY_ID
    if (method, path) in USER_CHANGES and params.get("id") in _Admin.protected_user_ids:
        params["id"] = UNKNOWN_USER_ID


@schemathesis.hook
def after_call(context, case, response):
    """A fuzz user's token refused as `invalid_token` (not a wrong current password): a new user."""
    token = _FuzzUser.token
    if response.status_code != 401 or token is None:
        return
    sent = (case.headers or {}).get("Authorization", "")
    challenge = " ".join(response.headers.get("www-authenticate", []))
    if sent == f"Bearer {token}" and 'error_description="invalid_token"' in challenge:
        _FuzzUser.invalidate(token)


def _script_mode(body):
    # Deterministic (a hypothesis strategy must be): every other generated email.
    if isinstance(body, dict) and "refresh_token_in_body" not in body and len(str(body.get("email", ""))) % 2 == 0:
        return {**body, "refresh_token_in_body": True}
    return body


# Scripts whose letters Unicode names after them, one word, none of whose letters or marks is
# default-ignorable: a letter named so belongs to that script.
_SCRIPT_WORDS = {
    "LATIN", "GREEK", "CYRILLIC", "ARMENIAN", "HEBREW", "ARABIC", "DEVANAGARI", "BENGALI",
    "GURMUKHI", "GUJARATI", "ORIYA", "TAMIL", "TELUGU", "KANNADA", "MALAYALAM", "SINHALA", "THAI",
    "LAO", "TIBETAN", "MYANMAR", "GEORGIAN", "HANGUL", "ETHIOPIC", "CHEROKEE", "HIRAGANA",
    "KATAKANA",
}


def _script_of(ch):
    """The script of a character the email rules surely keep as it is, None for ASCII
    non-letters, False for any character the rules might fold, drop or count apart."""
    if ch.isascii():
        return "LATIN" if ch.isalpha() else None
    if unicodedata.category(ch)[0] not in "LM" or len(ch.lower()) != 1:
        return False
    if unicodedata.normalize("NFKC", ch) != ch or unicodedata.normalize("NFKC", ch.lower()) != ch.lower():
        return False
    name = unicodedata.name(ch, "")
    word = name.split(" ")[0]
    return word if word in _SCRIPT_WORDS and "FILLER" not in name else False


def _single_script_part(part):
    script, out = None, []
    for ch in part:
        s = _script_of(ch)
        if s is False or (s is not None and script is not None and s != script):
            ch, s = "0", None
        script = script or s
        out.append(ch)
    return "".join(out)


def _single_script_email(body):
    """An email the schema allows but the server refuses made acceptable: each character that
    mixes scripts within a part, or that normalization might fold or drop, becomes `0`.

    The `Email` schema cannot say "single-script" (JSON Schema patterns have no script classes),
    so a generated email may mix scripts or hold characters that normalization folds, and be
    refused with 400 although the schema allows it, which positive_data_acceptance reports.
    """
    email = body.get("email") if isinstance(body, dict) else None
    if not isinstance(email, str) or email.count("@") != 1:
        return body
    local, domain = email.split("@")
    fixed = _single_script_part(local) + "@" + ".".join(_single_script_part(label) for label in domain.split("."))
    return {**body, "email": fixed}


def _without_assertion(body):
    """A login's `webauthn` member left out (null).

    A passkey assertion is valid only for a challenge the server issued and still holds, which
    no schema can say: one generated for a login whose password is right (a linked one) is
    refused with 400, which positive_data_acceptance would report. The member is covered by
    tests/e2e/passkey-second-factor.test.mjs.
    """
    if isinstance(body, dict) and body.get("webauthn") is not None:
        return {**body, "webauthn": None}
    return body


@schemathesis.hook
def before_generate_body(context, strategy):
    """Half of the registrations that leave `refresh_token_in_body` out ask for it.

    Only a refresh token in the body can be carried by a link (register → refresh, → logout,
    → the cookie refresh): without this, most generated registrations leave it out and get it as
    a cookie, and the refresh chains rarely run. Registrations with `false` or `null`, and the
    other half, still take the cookie path.
    """
    operation = context.operation
    if operation is not None and operation.method.upper() == "POST" and operation.path == "/auth/register":
        return strategy.map(_script_mode)
    return strategy
