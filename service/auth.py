"""Who may call the service: the JWT bearer token of CDS Hooks 2.0 ("Trusting CDS Clients").

A call carries `Authorization: Bearer <JWT>`, signed by the CDS client with its private key. It is
accepted only when
- its header names an asymmetric algorithm (RS*, PS*, ES*, EdDSA; never `none`, never HMAC) and the
  `kid` of a key in the JWK Set configured for its issuer (inline, or fetched from the configured
  `jwks_url`; a `jku` header is never followed, and must be that URL when given);
- the signature verifies with that key (PyJWT; the key's type and curve must fit the algorithm);
- `iss` is a configured trusted client, `aud` is the URL of the endpoint called (CDS_BASE_URL plus
  its path), `exp` has not passed, `iat` is not in the future, and `jti` is present and has not been
  seen before (kept until the token expires, see storage.py).
Every refusal is a 401 whose message says why; nothing of the token is logged.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Any, Protocol

import jwt
from jwt import PyJWK, PyJWKClient
from jwt.exceptions import PyJWKClientError, PyJWKError

from service.settings import TrustedClient, check_jwks

ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
LEEWAY_S = 30  # clock difference tolerated on exp and iat
JWKS_TTL_S = 300  # a fetched JWK Set is used this long
JWKS_COOLDOWN_S = 30  # an unknown kid refetches the set at most this often
JWKS_TIMEOUT_S = 10
SHOWN = 120  # longest value of the token repeated in an error message


class AuthError(Exception):
    """The call is not authorized (401), or cannot be checked now (503)."""

    def __init__(self, message: str, status: int = 401) -> None:
        super().__init__(message)
        self.message, self.status = message, status


class ReplayGuard(Protocol):
    def first_use(self, issuer: str, jti: str, expires_at: float) -> bool: ...


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= SHOWN else text[: SHOWN - 1] + "…"


class _StaticKeys:
    def __init__(self, jwks: dict[str, Any]) -> None:
        self._keys = {k["kid"]: k for k in jwks["keys"]}

    def get(self, kid: str) -> dict[str, Any] | None:
        return self._keys.get(kid)


class _RemoteKeys:
    """A client's JWK Set fetched from its jwks_url (PyJWKClient's transport), cached for JWKS_TTL_S.

    A failed fetch is not retried for JWKS_COOLDOWN_S (calls meanwhile do not each wait for the
    timeout); the keys fetched before, if any, stay in use until a fetch succeeds."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._client = PyJWKClient(url, cache_jwk_set=False, timeout=JWKS_TIMEOUT_S)
        self._lock = threading.Lock()
        self._keys: dict[str, dict[str, Any]] = {}
        self._fetched = -math.inf
        self._failed = -math.inf
        self._failure: AuthError | None = None

    def _refresh(self) -> None:
        try:
            data = self._client.fetch_data()
            check_jwks(data)
        except (PyJWKClientError, PyJWKError) as error:
            message = f"cannot check the token now: the issuer's JWK Set could not be fetched ({error})"
            raise AuthError(message, 503) from None
        except ValueError as error:
            raise AuthError(f"cannot check the token now: the issuer's JWK Set is unusable ({error})", 503) from None
        self._keys = {k["kid"]: k for k in data["keys"]}
        self._fetched = time.monotonic()

    def get(self, kid: str) -> dict[str, Any] | None:
        with self._lock:
            now = time.monotonic()
            age = now - self._fetched
            due = age > JWKS_TTL_S or (kid not in self._keys and age > JWKS_COOLDOWN_S)
            if due and now - self._failed > JWKS_COOLDOWN_S:
                try:
                    self._refresh()
                except AuthError as error:
                    self._failed, self._failure = now, error
            if not self._keys and self._failure is not None:
                raise self._failure
            return self._keys.get(kid)


class Authenticator:
    def __init__(self, clients: tuple[TrustedClient, ...], replay: ReplayGuard) -> None:
        self._clients = {c.iss: c for c in clients}
        self._keys = {
            c.iss: _RemoteKeys(c.jwks_url) if c.jwks_url is not None else _StaticKeys(c.jwks or {}) for c in clients
        }
        self._replay = replay

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The token's claims if the call may proceed; AuthError saying why not otherwise. Blocking (I/O)."""
        if not authorization:
            raise AuthError(
                "missing Authorization header: this service needs 'Authorization: Bearer <JWT>' signed by a "
                "trusted CDS client (CDS Hooks 2.0)"
            )
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("the Authorization header must be 'Bearer <JWT>'")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise AuthError("the bearer token is not a well-formed JWT") from None

        alg = header.get("alg")
        if alg not in ALGORITHMS:
            raise AuthError(
                f"token alg {_shown(alg)} is not accepted: CDS Hooks tokens are signed with an asymmetric "
                f"algorithm ({', '.join(ALGORITHMS)}), never 'none' or HMAC"
            )
        if header.get("typ") is not None and str(header.get("typ")).upper() != "JWT":
            raise AuthError(f"token typ {_shown(header.get('typ'))} is not JWT")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthError("the token header has no kid naming the key that signed it (CDS Hooks requires one)")
        iss = unverified.get("iss")
        if not isinstance(iss, str) or not iss:
            raise AuthError("the token has no iss claim")
        client = self._clients.get(iss)
        if client is None:
            raise AuthError(f"issuer {_shown(iss)} is not a trusted CDS client of this service")
        jku = header.get("jku")
        if jku is not None and client.jwks_url is not None and jku != client.jwks_url:
            raise AuthError(f"token jku {_shown(jku)} is not the JWK Set URL configured for this issuer")

        jwk = self._keys[iss].get(kid)
        if jwk is None:
            raise AuthError(f"no key with kid {_shown(kid)} in the JWK Set of issuer {_shown(iss)}")
        if jwk.get("use") not in (None, "sig"):
            raise AuthError(f"key {_shown(kid)} is not a signing key (use={_shown(jwk.get('use'))})")
        if jwk.get("alg") not in (None, alg):
            raise AuthError(f"key {_shown(kid)} is for {jwk.get('alg')}, but the token says {alg}")
        try:
            key = PyJWK(jwk, algorithm=alg)
        except (PyJWKError, jwt.InvalidKeyError, ValueError, TypeError):
            raise AuthError(f"key {_shown(kid)} ({jwk.get('kty')}) cannot verify {alg} signatures") from None

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=list(ALGORITHMS),
                audience=audience,
                issuer=iss,
                leeway=LEEWAY_S,
                options={"require": list(REQUIRED_CLAIMS), "enforce_minimum_key_length": True},
            )
        except jwt.MissingRequiredClaimError as error:
            required = ", ".join(REQUIRED_CLAIMS)
            raise AuthError(f"the token has no {error.claim} claim (CDS Hooks requires {required})") from None
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired (exp)") from None
        except jwt.ImmatureSignatureError:
            raise AuthError("the token is not valid yet (iat or nbf in the future)") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"the token's aud does not name the endpoint called: expected {audience}") from None
        except jwt.InvalidSignatureError:
            raise AuthError("the token's signature does not verify with the issuer's key") from None
        except jwt.PyJWTError as error:
            raise AuthError(f"the token is not accepted ({type(error).__name__}: {error})") from None

        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise AuthError("the token's jti must be a non-empty string")
        if not self._replay.first_use(iss, jti, float(claims["exp"]) + LEEWAY_S):
            raise AuthError("the token has been used before (same iss and jti): send a new token with each call")
        return claims
