"""Who may call the service: JWT bearer tokens as CDS Hooks 2.0 specifies, local development mode, CORS,
and the configuration that sets them up.

Keys are made here with `cryptography` (RSA 2048 and EC P-384); tokens are signed with PyJWT, except
the forgeries a well-behaved library refuses to make (an HMAC token keyed with the public key),
which are put together by hand.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Iterator

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from models.cds_hooks import CdsResponse, ErrorBody
from rules import default_context
from service.app import SERVICE_ID, create_app
from service.settings import ConfigError, Settings, load_clients
from tests.cds import dev_settings, local_client

BASE = "https://cds.example.org"
PATH = f"/cds-services/{SERVICE_ID}"
AUD = BASE + PATH
ISS = "https://ehr.example.com/"
PATIENT = "pat-9"

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP384R1())
FORGER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def public_jwk(private: Any, kid: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if isinstance(private, rsa.RSAPrivateKey) else ECAlgorithm
    jwk = algorithm.to_jwk(private.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig"}


JWKS = {"keys": [public_jwk(RSA_KEY, "rsa-1"), public_jwk(EC_KEY, "ec-1")]}


def body(*codes: str) -> dict[str, Any]:
    conditions = [
        {"resource": {"resourceType": "Condition", "subject": {"reference": f"Patient/{PATIENT}"},
                      "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10-cm", "code": c}]}}}
        for c in codes or ("K22.0",)
    ]
    return {
        "hook": "patient-view",
        "hookInstance": str(uuid.uuid4()),
        "context": {"userId": "Practitioner/1", "patientId": PATIENT},
        "prefetch": {"patient": {"resourceType": "Patient", "id": PATIENT, "birthDate": "1980-06-01"},
                     "conditions": {"resourceType": "Bundle", "type": "searchset", "entry": conditions}},
    }


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    out = {"iss": ISS, "aud": AUD, "exp": now + 300, "iat": now, "jti": str(uuid.uuid4())}
    out.update(overrides)
    return {k: v for k, v in out.items() if v is not None}


def token(alg: str = "RS384", key: Any = RSA_KEY, kid: str | None = "rsa-1", headers: dict | None = None,
          **overrides: Any) -> str:
    header = {"kid": kid, **(headers or {})} if kid is not None else dict(headers or {})
    return jwt.encode(claims(**overrides), key, algorithm=alg, headers=header)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, Any], payload: dict[str, Any], sign: Any = None) -> str:
    """A JWS put together by hand, for the tokens PyJWT refuses to make."""
    signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = sign(signing_input.encode()) if sign else b""
    return f"{signing_input}.{_b64(signature)}"


def bearer(value: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {value}"}


@pytest.fixture
def clients_file(tmp_path: Path) -> Path:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps([{"iss": ISS, "jwks": JWKS}]))
    return path


@pytest.fixture
def secured(tmp_path: Path, clients_file: Path) -> Iterator[TestClient]:
    """The app with one trusted client (inline JWK Set); called from an ordinary, non-local address."""
    settings = Settings(clients=load_clients(clients_file), base_url=BASE, data_dir=tmp_path / "data")
    with TestClient(create_app(default_context(), settings=settings)) as client:
        yield client


def refused(response: Any, fragment: str) -> None:
    assert response.status_code == 401, response.text
    assert fragment in ErrorBody.model_validate(response.json()).error
    assert response.headers["www-authenticate"].startswith("Bearer")


# Accepted


@pytest.mark.parametrize(
    ("alg", "key", "kid"),
    [("RS384", RSA_KEY, "rsa-1"), ("RS256", RSA_KEY, "rsa-1"), ("PS384", RSA_KEY, "rsa-1"), ("ES384", EC_KEY, "ec-1")],
)
def test_a_token_signed_by_a_trusted_client_is_accepted(secured: TestClient, alg: str, key: Any, kid: str) -> None:
    response = secured.post(PATH, json=body(), headers=bearer(token(alg, key, kid)))
    assert response.status_code == 200, response.text
    assert CdsResponse.model_validate(response.json()).cards


def test_aud_may_be_a_list_naming_the_endpoint(secured: TestClient) -> None:
    response = secured.post(PATH, json=body(), headers=bearer(token(aud=[AUD, "https://other.example/x"])))
    assert response.status_code == 200, response.text


def test_discovery_needs_no_token(secured: TestClient) -> None:
    assert secured.get("/cds-services").status_code == 200


# Refused, each with a message that says why


def test_alg_none_is_refused(secured: TestClient) -> None:
    unsigned = jwt.encode(claims(), None, algorithm="none", headers={"kid": "rsa-1"})
    refused(secured.post(PATH, json=body(), headers=bearer(unsigned)), "never 'none' or HMAC")
    bare = handmade({"alg": "none", "typ": "JWT", "kid": "rsa-1"}, claims())
    refused(secured.post(PATH, json=body(), headers=bearer(bare)), "never 'none' or HMAC")


def test_hmac_is_refused_whatever_the_key(secured: TestClient) -> None:
    secret = jwt.encode(claims(), "a shared secret of sufficient length!!", algorithm="HS256",
                        headers={"kid": "rsa-1"})
    refused(secured.post(PATH, json=body(), headers=bearer(secret)), "never 'none' or HMAC")
    # the classic confusion: HMAC keyed with the client's public key, which anyone can read
    pem = RSA_KEY.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    confused = handmade({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}, claims(),
                        lambda data: hmac.new(pem, data, hashlib.sha256).digest())
    refused(secured.post(PATH, json=body(), headers=bearer(confused)), "never 'none' or HMAC")


def test_a_forged_signature_is_refused(secured: TestClient) -> None:
    refused(secured.post(PATH, json=body(), headers=bearer(token(key=FORGER_KEY))), "signature does not verify")
    genuine = token()
    head, payload, signature = genuine.split(".")
    tampered_claims = {**json.loads(base64.urlsafe_b64decode(payload + "==")), "iss": ISS, "sub": "admin"}
    tampered = f"{head}.{_b64(json.dumps(tampered_claims).encode())}.{signature}"
    refused(secured.post(PATH, json=body(), headers=bearer(tampered)), "signature does not verify")


def test_an_expired_token_is_refused(secured: TestClient) -> None:
    now = int(time.time())
    refused(secured.post(PATH, json=body(), headers=bearer(token(exp=now - 3600, iat=now - 3900))), "expired")


def test_a_token_issued_in_the_future_is_refused(secured: TestClient) -> None:
    now = int(time.time())
    refused(secured.post(PATH, json=body(), headers=bearer(token(iat=now + 3600, exp=now + 3900))), "not valid yet")


@pytest.mark.parametrize(
    "aud",
    [f"{BASE}/cds-services", f"{BASE}/cds-services/other", f"{PATH}", "https://cds.example.org.evil/cds-services/"
     f"{SERVICE_ID}", f"{AUD}/feedback"],
    ids=["discovery", "other-service", "relative", "other-host", "feedback"],
)
def test_an_aud_other_than_the_endpoint_called_is_refused(secured: TestClient, aud: str) -> None:
    refused(secured.post(PATH, json=body(), headers=bearer(token(aud=aud))), f"expected {AUD}")


def test_an_unknown_issuer_is_refused(secured: TestClient) -> None:
    refused(secured.post(PATH, json=body(), headers=bearer(token(iss="https://stranger.example/"))),
            "is not a trusted CDS client")


@pytest.mark.parametrize("claim", ["jti", "exp", "aud", "iat"])
def test_a_token_without_a_required_claim_is_refused(secured: TestClient, claim: str) -> None:
    refused(secured.post(PATH, json=body(), headers=bearer(token(**{claim: None}))), f"no {claim} claim")


def test_a_replayed_token_is_refused(secured: TestClient) -> None:
    once = token()
    assert secured.post(PATH, json=body(), headers=bearer(once)).status_code == 200
    refused(secured.post(PATH, json=body(), headers=bearer(once)), "used before")
    same_jti = token(jti=jwt.decode(once, options={"verify_signature": False})["jti"])  # a new token, same jti
    refused(secured.post(PATH, json=body(), headers=bearer(same_jti)), "used before")


def test_a_replay_is_refused_after_a_restart(tmp_path: Path, clients_file: Path) -> None:
    settings = Settings(clients=load_clients(clients_file), base_url=BASE, data_dir=tmp_path / "data")
    once = token()
    with TestClient(create_app(default_context(), settings=settings)) as first:
        assert first.post(PATH, json=body(), headers=bearer(once)).status_code == 200
    with TestClient(create_app(default_context(), settings=settings)) as second:
        refused(second.post(PATH, json=body(), headers=bearer(once)), "used before")


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda: {}, "missing Authorization header"),
        (lambda: {"Authorization": "Basic dXNlcjpwYXNz"}, "must be 'Bearer <JWT>'"),
        (lambda: {"Authorization": "Bearer"}, "must be 'Bearer <JWT>'"),
        (lambda: bearer("not.a.jwt"), "not a well-formed JWT"),
        (lambda: bearer(token(kid=None)), "no kid"),
        (lambda: bearer(token(kid="rotated-away")), "no key with kid 'rotated-away'"),
        (lambda: bearer(token("RS256", RSA_KEY, "ec-1")), "cannot verify RS256"),
        (lambda: bearer(token("ES256", ec.generate_private_key(ec.SECP256R1()), "ec-1")),
         "does not match the expected curve"),
        (lambda: bearer(token(headers={"typ": "at+jwt"})), "is not JWT"),
        (lambda: bearer(token(jti=42)), "JWT ID must be a string"),
    ],
    ids=["no-header", "basic", "empty-bearer", "garbage", "no-kid", "unknown-kid", "rsa-alg-on-ec-key",
         "wrong-curve", "typ", "jti-not-string"],
)
def test_malformed_authorization_is_refused(secured: TestClient, make: Any, fragment: str) -> None:
    refused(secured.post(PATH, json=body(), headers=make()), fragment)


def test_a_refused_call_does_no_work_and_logs_nothing_of_the_token(
    secured: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    bad = token(key=FORGER_KEY)
    with caplog.at_level(logging.DEBUG):
        refused(secured.post(PATH, content=b"{not json", headers={**bearer(bad), "content-type": "application/json"}),
                "signature")  # the token is checked before the body is read: 401, not 400
    assert bad not in caplog.text and bad.split(".")[2] not in caplog.text and PATIENT not in caplog.text
    assert secured.app.state.holder["state"].metrics.snapshot()["calls_refused"] >= 1


def test_feedback_needs_a_token_for_the_feedback_endpoint(secured: TestClient) -> None:
    cards = secured.post(PATH, json=body(), headers=bearer(token())).json()["cards"]
    item = {"card": cards[0]["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-01-15T10:00:00Z"}
    sent = {"feedback": [item]}
    refused(secured.post(f"{PATH}/feedback", json=sent), "missing Authorization header")
    refused(secured.post(f"{PATH}/feedback", json=sent, headers=bearer(token())), f"expected {AUD}/feedback")
    ok = secured.post(f"{PATH}/feedback", json=sent, headers=bearer(token(aud=f"{AUD}/feedback")))
    assert ok.status_code == 200 and ok.json() == {"received": 1}
    refused(secured.get(f"{PATH}/feedback"), "missing Authorization header")
    assert secured.get(f"{PATH}/feedback", headers=bearer(token(aud=f"{AUD}/feedback"))).json()["received"] == 1


# A client whose JWK Set is fetched from its URL


class _JwksHandler(BaseHTTPRequestHandler):
    jwks: dict[str, Any] = {}
    hits = 0

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        type(self).hits += 1
        data = json.dumps(self.jwks).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *_args: Any) -> None:
        pass


@pytest.fixture
def jwks_server() -> Iterator[str]:
    """A JWK Set served on a loopback port (the client's jwks_url)."""
    _JwksHandler.jwks, _JwksHandler.hits = JWKS, 0
    server = ThreadingHTTPServer(("127.0.0.1", 0), _JwksHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/.well-known/jwks.json"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def test_a_jwks_url_client_is_verified_from_its_fetched_key_set(tmp_path: Path, jwks_server: str) -> None:
    path = tmp_path / "clients.yaml"
    path.write_text(f"clients:\n  - iss: {ISS}\n    jwks_url: {jwks_server}\n")
    settings = Settings(clients=load_clients(path), base_url=BASE, data_dir=tmp_path / "data")
    with TestClient(create_app(default_context(), settings=settings)) as client:
        assert client.post(PATH, json=body(), headers=bearer(token("ES384", EC_KEY, "ec-1"))).status_code == 200
        assert client.post(PATH, json=body(), headers=bearer(token())).status_code == 200
        assert _JwksHandler.hits == 1  # the key set is cached
        with_jku = token(headers={"jku": jwks_server})
        assert client.post(PATH, json=body(), headers=bearer(with_jku)).status_code == 200
        elsewhere = token(headers={"jku": "https://attacker.example/jwks.json"})
        refused(client.post(PATH, json=body(), headers=bearer(elsewhere)), "not the JWK Set URL configured")
        refused(client.post(PATH, json=body(), headers=bearer(token(key=FORGER_KEY))), "signature does not verify")


def test_an_unreachable_jwks_url_is_503_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "clients.json"
    path.write_text(json.dumps([{"iss": ISS, "jwks_url": "http://127.0.0.1:9/jwks.json"}]))
    settings = Settings(clients=load_clients(path), base_url=BASE, data_dir=tmp_path / "data")
    with TestClient(create_app(default_context(), settings=settings)) as client:
        response = client.post(PATH, json=body(), headers=bearer(token()))
        assert response.status_code == 503 and "could not be fetched" in response.json()["error"]


# Neither clients nor development mode; development mode


def test_with_nothing_configured_service_calls_are_401_saying_how_to_configure(tmp_path: Path) -> None:
    with TestClient(create_app(default_context(), settings=Settings(data_dir=tmp_path))) as client:
        assert client.get("/cds-services").status_code == 200
        for response in (client.post(PATH, json=body()), client.post(PATH, json=body(), headers=bearer(token())),
                         client.post(f"{PATH}/feedback", json={"feedback": []}), client.get(f"{PATH}/feedback")):
            refused(response, "CDS_CLIENTS")
            assert "CDS_INSECURE_DEV=1" in response.json()["error"]


def test_development_mode_accepts_calls_from_this_machine_only(tmp_path: Path) -> None:
    app = create_app(default_context(), settings=dev_settings(tmp_path))
    with local_client(app) as local:
        assert local.post(PATH, json=body()).status_code == 200
        refused(local.post(PATH, json=body(), headers={"X-Forwarded-For": "203.0.113.9"}), "only from this machine")
    with TestClient(app, base_url="http://127.0.0.1", client=("203.0.113.9", 50000)) as remote:
        refused(remote.post(PATH, json=body()), "only from this machine")
    with TestClient(app, base_url="http://rebound.example", client=("127.0.0.1", 50000)) as rebound:
        refused(rebound.post(PATH, json=body()), "only from this machine")  # DNS rebinding: Host is not local
    with TestClient(app, base_url="http://[::1]:8080", client=("::1", 50000)) as ipv6:
        assert ipv6.post(PATH, json=body()).status_code == 200


# CORS


@pytest.fixture
def cors(tmp_path: Path) -> Iterator[TestClient]:
    settings = dev_settings(tmp_path, cors_origins=("https://sandbox.example.org",))
    with local_client(create_app(default_context(), settings=settings)) as client:
        yield client


def test_cors_preflight_is_answered_for_an_allowed_origin(cors: TestClient) -> None:
    response = cors.options(PATH, headers={
        "Origin": "https://sandbox.example.org",
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type",
    })
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://sandbox.example.org"
    allowed = response.headers["access-control-allow-headers"].lower()
    assert "authorization" in allowed and "content-type" in allowed
    assert "POST" in response.headers["access-control-allow-methods"]


def test_cors_answers_carry_the_origin_and_refuse_other_origins(cors: TestClient) -> None:
    ok = cors.post(PATH, json=body(), headers={"Origin": "https://sandbox.example.org"})
    assert ok.status_code == 200 and ok.headers["access-control-allow-origin"] == "https://sandbox.example.org"
    preflight = cors.options(PATH, headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"})
    assert preflight.status_code == 400 and "access-control-allow-origin" not in preflight.headers
    other = cors.get("/cds-services", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in other.headers


def test_without_cors_origins_no_cross_origin_headers(tmp_path: Path) -> None:
    with local_client(create_app(default_context(), settings=dev_settings(tmp_path))) as client:
        response = client.get("/cds-services", headers={"Origin": "https://sandbox.example.org"})
        assert response.status_code == 200 and "access-control-allow-origin" not in response.headers


# Configuration


def _env(tmp_path: Path, **values: str) -> dict[str, str]:
    return {"CDS_DATA_DIR": str(tmp_path), **values}


def test_settings_from_the_environment(tmp_path: Path, clients_file: Path) -> None:
    settings = Settings.from_env(_env(
        tmp_path, CDS_CLIENTS=str(clients_file), CDS_BASE_URL="https://cds.example.org/",
        CDS_CORS_ORIGINS="https://a.example, https://b.example:8443/", CDS_BIND_HOST="0.0.0.0",
    ))
    assert [c.iss for c in settings.clients] == [ISS] and settings.base_url == BASE
    assert settings.cors_origins == ("https://a.example", "https://b.example:8443")
    assert settings.endpoint_url(PATH) == AUD
    assert settings.sqlalchemy_url == f"sqlite:///{tmp_path.as_posix()}/cds.sqlite3"
    assert Settings.from_env(_env(tmp_path, CDS_DATABASE_URL="sqlite:////x/y.db")).sqlalchemy_url == "sqlite:////x/y.db"
    default = Settings.from_env({})
    assert (default.insecure_dev, default.clients, default.bind_host, str(default.data_dir)) == (
        False, (), "127.0.0.1", "var")


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"CDS_INSECURE_DEV": "1", "CDS_BIND_HOST": "0.0.0.0"},
         "CDS_INSECURE_DEV=1 is refused with CDS_BIND_HOST=0.0.0.0"),
        ({"CDS_INSECURE_DEV": "1", "CDS_BIND_HOST": "192.168.1.5"}, "loopback"),
        ({"CDS_INSECURE_DEV": "1", "CDS_BIND_HOST": "::"}, "loopback"),
        ({"CDS_INSECURE_DEV": "maybe"}, "expected 1 or 0"),
        ({"CDS_CORS_ORIGINS": "sandbox.example.org"}, "is not an origin"),
        ({"CDS_BASE_URL": "cds.example.org"}, "expected an http(s) URL"),
        ({"CDS_CLIENTS": "/nonexistent/clients.json"}, "cannot read the trusted clients file"),
    ],
    ids=["dev-any-interface", "dev-lan", "dev-ipv6-any", "flag", "origin", "base-url", "no-file"],
)
def test_unsafe_or_unusable_settings_are_refused_with_a_message(
    tmp_path: Path, values: dict[str, str], fragment: str
) -> None:
    with pytest.raises(ConfigError, match=None) as raised:
        Settings.from_env(_env(tmp_path, **values))
    assert fragment in str(raised.value)


def test_development_mode_is_allowed_on_loopback_addresses(tmp_path: Path) -> None:
    for host in ("127.0.0.1", "localhost", "::1", "127.0.0.2"):
        assert Settings.from_env(_env(tmp_path, CDS_INSECURE_DEV="1", CDS_BIND_HOST=host)).insecure_dev


def test_clients_need_a_base_url_and_exclude_development_mode(tmp_path: Path, clients_file: Path) -> None:
    with pytest.raises(ConfigError, match="CDS_BASE_URL is required"):
        Settings.from_env(_env(tmp_path, CDS_CLIENTS=str(clients_file)))
    with pytest.raises(ConfigError, match="choose one"):
        Settings.from_env(_env(tmp_path, CDS_CLIENTS=str(clients_file), CDS_BASE_URL=BASE, CDS_INSECURE_DEV="1"))


@pytest.mark.parametrize(
    ("content", "fragment"),
    [
        ("{not json", "not valid JSON"),
        ("[]", "non-empty list"),
        (json.dumps([{"jwks": JWKS}]), "client 0.iss"),
        (json.dumps([{"iss": ISS}]), "exactly one of jwks_url and jwks"),
        (json.dumps([{"iss": ISS, "jwks": JWKS, "jwks_url": "https://ehr.example.com/jwks"}]), "exactly one"),
        (json.dumps([{"iss": ISS, "jwks_url": "http://ehr.example.com/jwks"}]), "must be an https URL"),
        (json.dumps([{"iss": ISS, "jwks": {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "h"}]}}]), "symmetric"),
        (json.dumps([{"iss": ISS, "jwks": {"keys": [{**RSAAlgorithm.to_jwk(RSA_KEY, as_dict=True), "kid": "p"}]}}]),
         "private key material"),
        (json.dumps([{"iss": ISS, "jwks": {"keys": [RSAAlgorithm.to_jwk(RSA_KEY.public_key(), as_dict=True)]}}]),
         "has no kid"),
        (json.dumps([{"iss": ISS, "jwks": {"keys": [{"kty": "RSA", "kid": "x", "n": "AQAB"}]}}]), "not a usable key"),
        (json.dumps([{"iss": ISS, "jwks": JWKS}, {"iss": ISS, "jwks": JWKS}]), "listed twice"),
        (json.dumps([{"iss": ISS, "jwks": JWKS, "secret": "x"}]), "Extra inputs are not permitted"),
    ],
    ids=["json", "empty", "no-iss", "no-keys", "both", "http-url", "hmac-key", "private-key", "no-kid", "bad-key",
         "twice", "extra-field"],
)
def test_a_bad_clients_file_is_refused_naming_the_problem(tmp_path: Path, content: str, fragment: str) -> None:
    path = tmp_path / "clients.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        load_clients(path)
    assert fragment in str(raised.value) and "CDS_CLIENTS=" in str(raised.value)


def test_a_bad_configuration_stops_the_start_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CDS_INSECURE_DEV", "1")
    monkeypatch.setenv("CDS_BIND_HOST", "0.0.0.0")
    monkeypatch.setenv("CDS_DATA_DIR", str(tmp_path))
    app = create_app(default_context())  # importing service.app never fails; starting does
    with pytest.raises(ConfigError, match="CDS_INSECURE_DEV=1 is refused"):
        with TestClient(app):
            pass


def test_a_jwks_url_that_goes_down_keeps_the_keys_fetched_before(tmp_path: Path, jwks_server: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import service.auth as auth

    path = tmp_path / "clients.json"
    path.write_text(json.dumps([{"iss": ISS, "jwks_url": jwks_server}]))
    settings = Settings(clients=load_clients(path), base_url=BASE, data_dir=tmp_path / "data")
    with TestClient(create_app(default_context(), settings=settings)) as client:
        assert client.post(PATH, json=body(), headers=bearer(token())).status_code == 200
        monkeypatch.setattr(auth, "JWKS_TTL_S", 0)  # every call now wants a fresh set
        monkeypatch.setattr(auth, "JWKS_COOLDOWN_S", 0)
        _JwksHandler.jwks = {"keys": "gone"}  # the endpoint now serves nonsense
        assert client.post(PATH, json=body(), headers=bearer(token())).status_code == 200
        assert _JwksHandler.hits >= 2
