"""JWT validation (reactive.auth.jwt, reactive.auth.identity) against a real issuer on a loopback
HTTP server, with keys made by ``cryptography`` and tokens signed by PyJWT."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from reactive.auth.identity import identity_from_admin_key, identity_from_header, identity_from_jwt
from reactive.checks import check_settings
from reactive.exceptions import AuthenticationError
from reactive.functions.context import Auth
from reactive.types import Identity, freeze_claims

APP = "my-app"
KEYS = Path(__file__).resolve().parents[1] / "keys"
FETCH_TIMEOUT = 2.0  # the unreachable-issuer test: long enough to tell waiting from not


# -- keys, tokens and a real issuer ------------------------------------------------------------


class Key:
    """A key pair and its public JWK."""

    def __init__(self, kid: str, algorithm: str) -> None:
        self.kid, self.algorithm = kid, algorithm
        if algorithm == "RS256":
            self.private: Any = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            self.jwk = RSAAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.jwk = ECAlgorithm.to_jwk(self.private.public_key(), as_dict=True)
        self.jwk.update({"kid": kid, "alg": algorithm, "use": "sig"})

    def public_pem(self) -> bytes:
        return bytes(self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        ))

    def sign(self, issuer: str, *, kid: str | None = "", **claims: Any) -> str:
        now = int(time.time())
        payload = {"iss": issuer, "sub": "user-1", "aud": APP, "iat": now, "exp": now + 600,
                   **claims}
        payload = {k: v for k, v in payload.items() if v is not None}
        headers = {} if kid is None else {"kid": kid or self.kid}
        return jwt.encode(payload, self.private, algorithm=self.algorithm, headers=headers)


class Issuer:
    """An OIDC issuer on 127.0.0.1: discovery document and JWKS, counting requests per path."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.requests: Counter[str] = Counter()
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.requests[self.path] += 1
                if self.path == "/.well-known/openid-configuration":
                    body: Any = {"issuer": issuer.url, "jwks_uri": f"{issuer.url}/jwks.json"}
                elif self.path == "/jwks.json":
                    body = {"keys": list(issuer.keys)}
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def jwks_fetches(self) -> int:
        return self.requests["/jwks.json"]


@pytest.fixture(scope="module")
def rsa_key() -> Key:
    return Key("rsa-1", "RS256")


@pytest.fixture(scope="module")
def ec_key() -> Key:
    return Key("ec-1", "ES256")


@pytest.fixture
def issuer(rsa_key: Key, ec_key: Key) -> Iterator[Issuer]:
    server = Issuer()
    server.keys = [rsa_key.jwk, ec_key.jwk]
    server.thread.start()
    yield server
    server.server.shutdown()
    server.server.server_close()


def configure(settings: Any, *providers: dict[str, Any], **options: Any) -> None:
    settings.REACTIVE = {**settings.REACTIVE, "AUTH_PROVIDERS": list(providers), **options}


def oidc(issuer: Issuer) -> dict[str, Any]:
    return {"domain": issuer.url, "applicationID": APP}


def rejected(token: str) -> str:
    with pytest.raises(AuthenticationError) as caught:
        identity_from_jwt(token)
    message = str(caught.value)
    assert token not in message or not token
    assert caught.value.code == "Unauthenticated"
    return message


def _b64(value: Any) -> str:
    data = value.encode() if isinstance(value, str) else json.dumps(value).encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


# -- valid tokens ------------------------------------------------------------------------------


def test_oidc_rs256_token_gives_identity_and_keys_are_cached(
    settings: Any, issuer: Issuer, rsa_key: Key
) -> None:
    # Given an OIDC provider whose domain is written with a trailing slash
    configure(settings, {"domain": issuer.url + "/", "applicationID": APP})
    token = rsa_key.sign(issuer.url, email="ada@example.com", email_verified=True,
                         picture="https://example.com/ada.png", given_name="Ada",
                         org={"id": 7, "roles": ["admin", "dev"]})
    # When
    identity = identity_from_jwt(token)
    identity_from_jwt(rsa_key.sign(issuer.url, sub="user-2"))
    # Then
    assert identity.user_id is None and not identity.is_admin
    user = Auth(identity).get_user_identity()
    assert user is not None
    assert user.token_identifier == f"{issuer.url}|user-1"
    assert (user.subject, user.issuer) == ("user-1", issuer.url)
    assert user.claims == {
        "tokenIdentifier": f"{issuer.url}|user-1", "subject": "user-1", "issuer": issuer.url,
        "email": "ada@example.com", "emailVerified": True,
        "pictureUrl": "https://example.com/ada.png", "givenName": "Ada",
        "org": {"id": 7, "roles": ["admin", "dev"]},
    }
    assert Auth(identity).user.is_anonymous
    # Discovery and JWKS were fetched once for both tokens.
    assert issuer.requests == {"/.well-known/openid-configuration": 1, "/jwks.json": 1}


def test_custom_jwt_es256_with_jwks_url(settings: Any, issuer: Issuer, ec_key: Key) -> None:
    configure(settings, {"type": "customJwt", "issuer": "https://auth.example",
                         "jwks": f"{issuer.url}/jwks.json", "algorithm": "ES256"})
    # A customJwt provider without applicationID does not check 'aud'.
    identity = identity_from_jwt(ec_key.sign("https://auth.example", aud="anything"))
    user = Auth(identity).get_user_identity()
    assert user is not None and user.token_identifier == "https://auth.example|user-1"
    assert issuer.requests == {"/jwks.json": 1}


def test_inline_jwks_and_data_uri_providers_need_no_network(
    settings: Any, rsa_key: Key, ec_key: Key
) -> None:
    encoded = base64.b64encode(json.dumps({"keys": [ec_key.jwk]}).encode()).decode()
    configure(
        settings,
        {"type": "customJwt", "issuer": "https://inline.example", "jwks": {"keys": [rsa_key.jwk]},
         "algorithm": "RS256", "applicationID": APP},
        {"type": "customJwt", "issuer": "https://data.example", "algorithm": "ES256",
         "jwks": f"data:text/plain;charset=utf-8;base64,{encoded}"},
    )
    assert identity_from_jwt(rsa_key.sign("https://inline.example")).claims_dict() is not None
    assert identity_from_jwt(ec_key.sign("https://data.example")).claims_dict() is not None
    # A token without 'kid' is fine when the set has one key.
    assert identity_from_jwt(rsa_key.sign("https://inline.example", kid=None)).claims is not None


def test_audience_may_be_a_list_and_providers_may_share_an_issuer(
    settings: Any, issuer: Issuer, rsa_key: Key
) -> None:
    configure(settings, oidc(issuer), {"domain": issuer.url, "applicationID": "other-app"})
    assert identity_from_jwt(rsa_key.sign(issuer.url, aud=["x", APP])).claims is not None
    assert identity_from_jwt(rsa_key.sign(issuer.url, aud="other-app")).claims is not None
    assert issuer.jwks_fetches == 1


def test_leeway_allows_small_clock_skew(settings: Any, issuer: Issuer, rsa_key: Key) -> None:
    configure(settings, oidc(issuer), AUTH_LEEWAY=10)
    now = int(time.time())
    assert identity_from_jwt(rsa_key.sign(issuer.url, exp=now - 3)).claims is not None
    assert identity_from_jwt(rsa_key.sign(issuer.url, nbf=now + 3)).claims is not None


# -- refused tokens ----------------------------------------------------------------------------


def test_expired_token_is_refused(settings: Any, issuer: Issuer, rsa_key: Key) -> None:
    configure(settings, oidc(issuer))
    now = int(time.time())
    assert "expired" in rejected(rsa_key.sign(issuer.url, iat=now - 700, exp=now - 60))


def test_token_from_the_future_is_refused(settings: Any, issuer: Issuer, rsa_key: Key) -> None:
    configure(settings, oidc(issuer))
    later = int(time.time()) + 300
    assert "not valid yet" in rejected(rsa_key.sign(issuer.url, nbf=later))
    assert "not valid yet" in rejected(rsa_key.sign(issuer.url, iat=later))


@pytest.mark.parametrize("missing", ["exp", "sub"])
def test_token_without_required_claim_is_refused(
    settings: Any, issuer: Issuer, rsa_key: Key, missing: str
) -> None:
    configure(settings, oidc(issuer))
    assert f"no '{missing}' claim" in rejected(rsa_key.sign(issuer.url, **{missing: None}))


def test_wrong_issuer_is_refused_without_network(
    settings: Any, issuer: Issuer, rsa_key: Key
) -> None:
    configure(settings, oidc(issuer))
    message = rejected(rsa_key.sign("https://evil.example"))
    assert "No provider in REACTIVE['AUTH_PROVIDERS']" in message
    assert "https://evil.example" in message
    assert "no 'iss'" in rejected(rsa_key.sign(issuer.url, iss=None))
    assert issuer.requests == {}


def test_wrong_audience_is_refused(settings: Any, issuer: Issuer, rsa_key: Key) -> None:
    configure(settings, oidc(issuer))
    assert "audience" in rejected(rsa_key.sign(issuer.url, aud="another-app"))
    assert "audience" in rejected(rsa_key.sign(issuer.url, aud=None))


def test_tampered_claims_fail_the_signature(settings: Any, issuer: Issuer, rsa_key: Key) -> None:
    configure(settings, oidc(issuer))
    header, payload, signature = rsa_key.sign(issuer.url).split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    forged = _b64({**claims, "sub": "admin"})
    assert "signature does not verify" in rejected(f"{header}.{forged}.{signature}")


def test_alg_none_is_refused(settings: Any, issuer: Issuer, rsa_key: Key) -> None:
    configure(settings, oidc(issuer))
    claims = jwt.decode(rsa_key.sign(issuer.url), options={"verify_signature": False})
    token = jwt.encode(claims, None, algorithm="none", headers={"kid": rsa_key.kid})
    assert "'none'" in rejected(token)
    assert issuer.requests == {}


def test_hs256_signed_with_the_public_key_is_refused(
    settings: Any, issuer: Issuer, rsa_key: Key
) -> None:
    # Given a token "signed" with HMAC using the issuer's public key PEM as the secret
    configure(settings, oidc(issuer))
    claims = jwt.decode(rsa_key.sign(issuer.url), options={"verify_signature": False})
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'JWT', 'kid': rsa_key.kid})}.{_b64(claims)}"
    mac = hmac.new(rsa_key.public_pem(), signing_input.encode(), hashlib.sha256).digest()
    token = f"{signing_input}.{base64.urlsafe_b64encode(mac).rstrip(b'=').decode()}"
    # Then
    assert "'HS256'" in rejected(token)


def test_algorithm_other_than_the_providers_is_refused(
    settings: Any, issuer: Issuer, ec_key: Key
) -> None:
    configure(settings, {"type": "customJwt", "issuer": issuer.url, "algorithm": "RS256",
                         "jwks": f"{issuer.url}/jwks.json"})
    assert "'ES256'" in rejected(ec_key.sign(issuer.url))


def test_key_of_another_type_than_the_token_algorithm_is_refused(
    settings: Any, issuer: Issuer, ec_key: Key
) -> None:
    # An ES256 token pointing at the RSA key: the key, not the header, fixes the algorithm.
    configure(settings, oidc(issuer))
    assert "which is for RS256" in rejected(ec_key.sign(issuer.url, kid="rsa-1"))


def test_unknown_kid_refetches_once_per_cooldown(
    settings: Any, issuer: Issuer, rsa_key: Key
) -> None:
    # Given keys fetched once
    configure(settings, oidc(issuer), AUTH_JWKS_REFRESH_COOLDOWN=0.3)
    identity_from_jwt(rsa_key.sign(issuer.url))
    assert issuer.jwks_fetches == 1
    _wait_past(0.3)
    # When a token names a key the issuer does not have: one refetch, then refused
    assert "key id 'rotated'" in rejected(rsa_key.sign(issuer.url, kid="rotated"))
    assert issuer.jwks_fetches == 2
    # and a flood of such tokens does not reach the issuer within the cooldown
    for _ in range(20):
        rejected(rsa_key.sign(issuer.url, kid="rotated"))
    assert issuer.jwks_fetches == 2
    # When the issuer rotates in a new key, it is picked up by the next refetch
    new_key = Key("rsa-2", "RS256")
    issuer.keys = [*issuer.keys, new_key.jwk]
    _wait_past(0.3)
    assert identity_from_jwt(new_key.sign(issuer.url)).claims is not None
    assert issuer.jwks_fetches == 3
    assert issuer.requests["/.well-known/openid-configuration"] == 1


def test_unreachable_issuer_fails_clearly_within_the_timeout(
    settings: Any, rsa_key: Key
) -> None:
    # Given an issuer on a closed port and one that accepts connections but never answers
    silent = socket.create_server(("127.0.0.1", 0))
    try:
        closed = f"http://127.0.0.1:{closed_port()}"
        hanging = f"http://127.0.0.1:{silent.getsockname()[1]}"
        configure(settings, {"domain": closed, "applicationID": APP},
                  {"domain": hanging, "applicationID": APP}, AUTH_FETCH_TIMEOUT=FETCH_TIMEOUT,
                  AUTH_JWKS_REFRESH_COOLDOWN=600.0)
        for url in (closed, hanging):
            # When
            started = time.monotonic()
            message = rejected(rsa_key.sign(url))
            # Then it gives up after the fetch timeout, not the test's (generous: a loaded
            # machine only adds to the timeout, it cannot reach the minute)
            assert time.monotonic() - started < FETCH_TIMEOUT + 60
            assert "could not be fetched" in message and "unreachable" in message
            # and callers within the cooldown fail without waiting again: far sooner than a
            # hanging fetch would take (FETCH_TIMEOUT is long enough to tell them apart)
            started = time.monotonic()
            assert "could not be fetched" in rejected(rsa_key.sign(url))
            assert time.monotonic() - started < FETCH_TIMEOUT / 2
    finally:
        silent.close()


@pytest.mark.parametrize(
    "token",
    ["a.b.c", "", "garbage" * 1500, "x" * 40_000, "a.b", "...", "eyJ.eyJ.sig", "a.b.c.d",
     f"{_b64('[' * 20_000)}.{_b64({})}.sig", f"{_b64(['alg'])}.{_b64({})}.sig"],
)
def test_malformed_tokens_are_refused(settings: Any, issuer: Issuer, token: str) -> None:
    configure(settings, oidc(issuer))
    message = rejected(token)
    assert any(word in message for word in ("well-formed", "empty", "longer than"))
    assert issuer.requests == {}


def test_no_providers_means_no_jwts(settings: Any, rsa_key: Key) -> None:
    configure(settings)
    assert "accepts no JWTs" in rejected(rsa_key.sign("https://x.example"))


def test_bearer_header_goes_through_jwt_validation(
    settings: Any, issuer: Issuer, rsa_key: Key
) -> None:
    configure(settings, oidc(issuer))
    identity = identity_from_header(f"bearer {rsa_key.sign(issuer.url)}")
    assert identity.claims_dict() is not None
    with pytest.raises(AuthenticationError, match="well-formed"):
        identity_from_header("Bearer a.b.c")


# -- configuration -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "message"),
    [
        ({"domain": "issuer.example", "applicationID": APP},
         "REACTIVE['AUTH_PROVIDERS'][0]['domain'] is invalid"),
        ({"domain": "https://issuer.example"},
         "REACTIVE['AUTH_PROVIDERS'][0]['applicationID'] is invalid: Field required"),
        ({"type": "customJwt", "issuer": "i", "jwks": "https://x/jwks", "algorithm": "HS256"},
         "REACTIVE['AUTH_PROVIDERS'][0]['algorithm'] is invalid"),
        ({"type": "customJwt", "issuer": "i", "jwks": {"keys": []}, "algorithm": "RS256"},
         "'jwks' is not a usable JWKS"),
        ({"type": "customJWT", "issuer": "i"}, "'type' must be 'customJwt'"),
        ({"domain": "https://issuer.example", "applicationID": APP, "audience": "x"},
         "REACTIVE['AUTH_PROVIDERS'][0]['audience'] is not a known key"),
    ],
)
def test_bad_provider_config_fails_the_system_check(
    settings: Any, provider: dict[str, Any], message: str
) -> None:
    configure(settings, provider)
    [error] = check_settings()
    assert error.id == "reactive.E001"
    assert message in error.msg


def test_inline_jwks_must_hold_a_key_for_the_algorithm(settings: Any, ec_key: Key) -> None:
    configure(settings, {"type": "customJwt", "issuer": "i", "jwks": {"keys": [ec_key.jwk]},
                         "algorithm": "RS256"})
    [error] = check_settings()
    assert "no key for the algorithm RS256" in error.msg


def test_settings_test_key_matches_its_jwks() -> None:
    private = serialization.load_pem_private_key((KEYS / "rs256-test.pem").read_bytes(), None)
    jwks = json.loads((KEYS / "rs256-test.jwks.json").read_text())
    public = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)  # type: ignore[arg-type]
    assert (public["n"], public["e"]) == (jwks["keys"][0]["n"], jwks["keys"][0]["e"])


# -- identities --------------------------------------------------------------------------------


def test_identity_with_nested_claims_is_hashable_and_thaws_back() -> None:
    claims = {"sub": "u", "org": {"id": 1, "tags": ["a", {"b": None}]}, "pairs": [["k", 1]]}
    identity = Identity(claims=freeze_claims(claims))
    assert hash(identity) == hash(Identity(claims=freeze_claims(dict(reversed(claims.items())))))
    assert identity.claims_dict() == claims
    # An object and a list of pairs stay different values.
    assert Identity(claims=freeze_claims({"x": {"k": 1}})) != Identity(
        claims=freeze_claims({"x": [["k", 1]]})
    )


def test_admin_acting_as_a_user_gets_that_user_identity(settings: Any) -> None:
    key = settings.REACTIVE["ADMIN_KEY"]
    acting_as = {"subject": "u-9", "issuer": "https://issuer.example", "name": "Grace",
                 "tokenIdentifier": "ignored|ignored"}
    encoded = base64.b64encode(json.dumps(acting_as).encode()).decode()
    for identity in (identity_from_admin_key(key, acting_as=acting_as),
                     identity_from_admin_key(f"{key}:{encoded}")):
        auth = Auth(identity)
        user = auth.get_user_identity()
        assert auth.is_admin and user is not None
        assert user.token_identifier == "https://issuer.example|u-9"
        assert user.claims["name"] == "Grace"
        assert user.claims["tokenIdentifier"] == "https://issuer.example|u-9"
    assert Auth(identity_from_admin_key(key)).get_user_identity() is None
    with pytest.raises(AuthenticationError, match="'subject'"):
        identity_from_admin_key(key, acting_as={"issuer": "https://issuer.example"})


# -- through the live server -------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.timeout(120)
def test_bearer_token_reaches_functions_over_http(live_server_url: str) -> None:
    # Given a token signed with the test key configured in tests/settings.py
    private = serialization.load_pem_private_key((KEYS / "rs256-test.pem").read_bytes(), None)
    now = int(time.time())
    token = jwt.encode(
        {"iss": "https://issuer.tests.invalid", "sub": "http-user", "iat": now, "exp": now + 60,
         "aud": "django-reactivity-tests"},
        private, algorithm="RS256", headers={"kid": "tests-rs256"},  # type: ignore[arg-type]
    )
    # When
    response = requests.post(
        f"{live_server_url}/api/query", timeout=10,
        data=json.dumps({"path": "testapp:whoami", "args": {}}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
    )
    # Then
    assert response.status_code == 200, response.text
    assert response.json()["value"] == {
        "user": None, "admin": False,
        "tokenIdentifier": "https://issuer.tests.invalid|http-user",
    }
    # and a tampered token is a 401 whose message does not echo it
    bad = requests.post(
        f"{live_server_url}/api/query", timeout=10,
        data=json.dumps({"path": "testapp:whoami", "args": {}}),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}x"},
    )
    assert bad.status_code == 401
    assert bad.json()["code"] == "Unauthenticated" and token not in bad.text


def _wait_past(cooldown: float) -> None:
    # Lets the refetch cooldown elapse (a duration to pass, not a condition to wait for).
    time.sleep(cooldown + 0.05)
