//! Warden as an OAuth 2.0 authorization server, driven by a real OAuth client
//! library (`oauth2`) and checked by an independent JOSE library (`jsonwebtoken`),
//! against the real binary: every rejection the issue lists, over HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signer, SigningKey};
use hmac::Mac;
use oauth2::basic::BasicClient;
use oauth2::{
    AuthType, ClientId, ClientSecret, HttpRequest, HttpResponse, RequestTokenError, Scope, TokenResponse,
    TokenUrl,
};
use serde_json::{Value, json};

const WARDEN: &str = env!("CARGO_BIN_EXE_warden");
const EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

struct Warden {
    child: Child,
    url: String,
    admin: String,
    _dir: tempfile::TempDir,
}

impl Drop for Warden {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(env: &[(&str, &str)]) -> Warden {
    let dir = tempfile::tempdir().unwrap();
    let data: PathBuf = dir.path().join("data");
    let mut cmd = Command::new(WARDEN);
    for (key, _) in std::env::vars().filter(|(k, _)| k.starts_with("WARDEN_")) {
        cmd.env_remove(key);
    }
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"]).arg(&data).envs(env.iter().copied());
    let mut child = cmd.stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let url = loop {
        let line = rx.recv_timeout(Duration::from_secs(60)).expect("server printed its address");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.trim().to_owned();
        }
    };
    let admin = std::fs::read_to_string(data.join("admin.token")).unwrap().trim().to_owned();
    Warden { child, url, admin, _dir: dir }
}

fn http_agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().new_agent()
}

impl Warden {
    fn post(&self, path: &str, bearer: &str, body: &Value) -> (u16, Value, Option<String>) {
        let mut r = http_agent()
            .post(&format!("{}{path}", self.url))
            .header("authorization", &format!("Bearer {bearer}"))
            .send_json(body)
            .unwrap();
        let challenge = r.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned());
        (r.status().as_u16(), r.body_mut().read_json().unwrap_or(Value::Null), challenge)
    }

    fn admin_post(&self, path: &str, body: &Value) -> Value {
        let (status, v, _) = self.post(path, &self.admin, body);
        assert_eq!(status, 200, "{path}: {v}");
        v
    }

    fn form(&self, fields: &[(&str, &str)]) -> (u16, Value) {
        let mut r = http_agent()
            .post(&format!("{}/oauth/token", self.url))
            .send_form(fields.iter().copied())
            .unwrap();
        (r.status().as_u16(), r.body_mut().read_json().unwrap())
    }

    /// Registers an agent and starts a session; returns (agent id, secret, session id).
    fn agent_with_session(&self, environment: &str) -> (String, String, String) {
        let a = self.admin_post(
            "/v1/agents",
            &json!({"owner": "team-x", "environment": environment, "scopes": ["tickets", "db"]}),
        );
        let s = self.admin_post("/v1/sessions", &json!({"agent_id": a["id"], "purpose": "triage"}));
        (
            a["id"].as_str().unwrap().into(),
            a["client_secret"].as_str().unwrap().into(),
            s["id"].as_str().unwrap().into(),
        )
    }

    /// A client_credentials token obtained by the `oauth2` crate.
    fn client_token(&self, id: &str, secret: &str) -> String {
        let client = BasicClient::new(ClientId::new(id.into()))
            .set_client_secret(ClientSecret::new(secret.into()))
            .set_token_uri(TokenUrl::new(format!("{}/oauth/token", self.url)).unwrap());
        let token = client
            .exchange_client_credentials()
            .add_scope(Scope::new("tickets".into()))
            .request(&|request| oauth_transport(request, None))
            .expect("the oauth2 client obtains a token");
        assert_eq!(token.scopes().unwrap()[0].as_str(), "tickets");
        token.access_token().secret().clone()
    }

    /// A client_credentials token obtained by the `oauth2` crate with `private_key_jwt`:
    /// no client secret, the assertion as extra form parameters. `Err` carries the
    /// HTTP status, the OAuth `error` and its description.
    fn jwt_client_token(&self, id: &str, assertion: &str) -> Result<String, (u16, String, String)> {
        let client = BasicClient::new(ClientId::new(id.into()))
            .set_auth_type(AuthType::RequestBody)
            .set_token_uri(TokenUrl::new(self.token_endpoint()).unwrap());
        let status = Mutex::new(0);
        let result = client
            .exchange_client_credentials()
            .add_scope(Scope::new("tickets".into()))
            .add_extra_param("client_assertion_type", JWT_BEARER)
            .add_extra_param("client_assertion", assertion)
            .request(&|request| oauth_transport(request, Some(&status)));
        let status = *status.lock().unwrap();
        match result {
            Ok(token) => {
                assert_eq!(status, 200);
                Ok(token.access_token().secret().clone())
            }
            Err(RequestTokenError::ServerResponse(e)) => {
                let code = e.error().as_ref().to_owned();
                Err((status, code, e.error_description().cloned().unwrap_or_default()))
            }
            Err(other) => panic!("the token endpoint answered something that is not OAuth: {other:?}"),
        }
    }

    fn token_endpoint(&self) -> String {
        format!("{}/oauth/token", self.url)
    }

    /// The data directory of this server (the test owns it, keys and all).
    fn data_dir(&self) -> PathBuf {
        self._dir.path().join("data")
    }

    fn exchange(&self, subject: &str, session: &str, resource: &str) -> (u16, Value) {
        self.form(&[
            ("grant_type", EXCHANGE),
            ("subject_token", subject),
            ("subject_token_type", ACCESS_TOKEN_TYPE),
            ("resource", resource),
            ("session_id", session),
        ])
    }

    fn session_token(&self, environment: &str) -> (String, String, String) {
        let (id, secret, session) = self.agent_with_session(environment);
        let subject = self.client_token(&id, &secret);
        let (status, v) = self.exchange(&subject, &session, &self.url);
        assert_eq!(status, 200, "{v}");
        (id, session, v["access_token"].as_str().unwrap().into())
    }

    fn authorize(&self, token: &str) -> (u16, Value, Option<String>) {
        let body = json!({"intent": "ticket.create",
            "resource": {"id": "jira", "plane": "data", "environment": "prod", "data_class": "internal"}});
        self.post("/v1/authorize", token, &body)
    }
}

/// The `oauth2` crate's HTTP client, over ureq; records the status when asked.
fn oauth_transport(
    request: HttpRequest,
    status: Option<&Mutex<u16>>,
) -> Result<HttpResponse, std::io::Error> {
    let (parts, body) = request.into_parts();
    let mut builder = http_agent().post(&parts.uri.to_string());
    for (name, value) in &parts.headers {
        builder = builder.header(name.as_str(), value.to_str().unwrap());
    }
    let mut response = builder.send(&body[..]).map_err(std::io::Error::other)?;
    if let Some(status) = status {
        *status.lock().unwrap() = response.status().as_u16();
    }
    let bytes = response.body_mut().read_to_vec().map_err(std::io::Error::other)?;
    let mut out = http::Response::builder().status(response.status().as_u16());
    for (name, value) in response.headers() {
        out = out.header(name.as_str(), value.as_bytes());
    }
    Ok(out.body(bytes).unwrap())
}

fn assert_rejected(w: &Warden, token: &str, why: &str, expect_in_message: &str) {
    let (status, body, challenge) = w.authorize(token);
    assert_eq!(status, 401, "{why}: {body}");
    let message = body["message"].as_str().unwrap_or_default();
    assert!(message.contains(expect_in_message), "{why}: message `{message}` lacks `{expect_in_message}`");
    let challenge = challenge.unwrap_or_default();
    assert!(challenge.contains("resource_metadata=\""), "{why}: WWW-Authenticate `{challenge}`");
}

fn parts(token: &str) -> (Value, Value) {
    let mut it = token.split('.');
    let header = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    let payload = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(it.next().unwrap()).unwrap()).unwrap();
    (header, payload)
}

/// The server's published JWKS.
fn jwks(w: &Warden) -> Value {
    http_agent()
        .get(&format!("{}/.well-known/jwks.json", w.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

fn b64(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
}

/// A compact JWS: `header` and `claims` (re-encoded here) signed with `key` (EdDSA).
fn sign(key: &SigningKey, header: &Value, claims: &Value) -> String {
    let signing_input = format!("{}.{}", b64(header), b64(claims));
    let signature = key.sign(signing_input.as_bytes());
    format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn now_s() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

#[test]
fn tokens_from_a_real_oauth_client_verify_independently_and_authorize() {
    let w = start(&[]);
    let (agent, session, token) = w.session_token("prod");
    let (status, v, _) = w.authorize(&token);
    assert_eq!((status, v["decision"].as_str()), (200, Some("allow")), "{v}");
    assert!(v["policy_hash"].as_str().unwrap().starts_with("sha256:"));

    // jsonwebtoken, with only our published JWKS, accepts the token.
    let jwks: jsonwebtoken::jwk::JwkSet = http_agent()
        .get(&format!("{}/.well-known/jwks.json", w.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    let (header, claims) = parts(&token);
    assert_eq!((header["alg"].as_str(), header["typ"].as_str()), (Some("EdDSA"), Some("at+jwt")));
    let jwk = jwks.find(header["kid"].as_str().unwrap()).expect("kid in JWKS");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
    validation.set_audience(&[&w.url]);
    validation.set_issuer(&[&w.url]);
    let decoded = jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap(),
        &validation,
    )
    .expect("an independent library verifies our token");
    assert_eq!(decoded.claims["sid"], json!(session));
    assert_eq!(decoded.claims["sub"], json!(agent));
    assert!(claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap() <= 300, "minutes, not days");

    // Metadata documents.
    let meta: Value = http_agent()
        .get(&format!("{}/.well-known/oauth-authorization-server", w.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(meta["issuer"], json!(w.url));
    let prm: Value = http_agent()
        .get(&format!("{}/.well-known/oauth-protected-resource", w.url))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap();
    assert_eq!(prm["resource"], json!(w.url));

    // An agent credential can never call the control API.
    let (status, body, _) = w.post("/v1/agents", &token, &json!({"owner": "x", "environment": "dev"}));
    assert_eq!(status, 403, "{body}");
}

#[test]
fn every_bad_token_is_rejected_with_a_clear_401() {
    let w = start(&[("WARDEN_OAUTH__LIFETIME_S_DEV", "2")]);
    let (_, session, token) = w.session_token("prod");
    let (header, payload) = parts(&token);
    let signature = token.rsplit('.').next().unwrap();

    // Bad signature: one claim changed, signature kept.
    let mut widened = payload.clone();
    widened["scope"] = json!("tickets db admin");
    assert_rejected(
        &w,
        &format!("{}.{}.{signature}", b64(&header), b64(&widened)),
        "bad signature",
        "signature",
    );
    // alg: none.
    let none = json!({"alg": "none", "typ": "at+jwt"});
    assert_rejected(&w, &format!("{}.{}.", b64(&none), b64(&payload)), "alg none", "alg");
    // HS256 signed with the public key as the HMAC secret.
    let jwks = jwks(&w);
    let public = URL_SAFE_NO_PAD.decode(jwks["keys"][0]["x"].as_str().unwrap()).unwrap();
    let hs = json!({"alg": "HS256", "typ": "at+jwt", "kid": header["kid"]});
    let signing_input = format!("{}.{}", b64(&hs), b64(&payload));
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&public).unwrap();
    mac.update(signing_input.as_bytes());
    let forged = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes()));
    assert_rejected(&w, &forged, "HS256 with the public key", "alg");
    // Unknown kid.
    let mut other_kid = header.clone();
    other_kid["kid"] = json!("not-a-key-we-have");
    assert_rejected(
        &w,
        &format!("{}.{}.{signature}", b64(&other_kid), b64(&payload)),
        "unknown kid",
        "unknown key",
    );
    // Wrong issuer: a token from another Warden (another key and issuer).
    let other = start(&[]);
    let (_, _, foreign) = other.session_token("prod");
    let (status, body, _) = w.authorize(&foreign);
    assert_eq!(status, 401, "a foreign token: {body}");
    // Wrong audience: a token exchanged for another resource.
    let (id, secret, s2) = w.agent_with_session("prod");
    let subject = w.client_token(&id, &secret);
    let (status, v) = w.exchange(&subject, &s2, "https://tickets.example.com");
    assert_eq!(status, 200, "{v}");
    assert_rejected(&w, v["access_token"].as_str().unwrap(), "wrong audience", "audience");
    // A client_credentials token without a session is not a session token.
    assert_rejected(&w, &subject, "no session", "session");
    // A token of another session.
    let body = json!({"intent": "ticket.create", "session_id": s2,
        "resource": {"id": "jira", "plane": "data", "environment": "prod", "data_class": "internal"}});
    let (status, v, _) = w.post("/v1/authorize", &token, &body);
    assert_eq!(status, 401, "token of another session: {v}");
    assert!(v["message"].as_str().unwrap().contains(&session));
    // A token in the query string.
    let mut r = http_agent()
        .post(&format!("{}/v1/authorize?access_token={token}", w.url))
        .send_json(json!({}))
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.body_mut().read_to_string().unwrap().contains("query string"));
    // Expired: dev tokens live two seconds here.
    let (_, _, short) = w.session_token("dev");
    std::thread::sleep(Duration::from_millis(3_100));
    assert_rejected(&w, &short, "expired", "expired");
    // Not yet valid: see `a_token_not_yet_valid_is_rejected_with_a_clear_401`, which
    // signs a future `nbf` with the server's own key from the data directory.
}

#[test]
fn a_token_not_yet_valid_is_rejected_with_a_clear_401() {
    let w = start(&[]);
    let (_, _, token) = w.session_token("prod");
    let (header, payload) = parts(&token);
    // The test owns the data directory, so it holds the server's signing key.
    let hex = std::fs::read_to_string(w.data_dir().join("token-signing.key")).unwrap();
    let hex = hex.trim();
    assert_eq!(hex.len(), 64, "a hex Ed25519 seed");
    let seed: [u8; 32] = (0..32)
        .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let key = SigningKey::from_bytes(&seed);
    let jwks = jwks(&w);
    let published = jwks["keys"].as_array().unwrap().iter().find(|k| k["kid"] == header["kid"]).unwrap();
    assert_eq!(
        published["x"].as_str().unwrap(),
        URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes()),
        "the key file holds the key the JWKS publishes"
    );

    // Control: the same header and claims signed here give the server's token byte
    // for byte (Ed25519 is deterministic), and with a fresh `jti` (so not a cached
    // token) they are accepted: this test's signing is right and only `nbf` decides below.
    assert_eq!(sign(&key, &header, &payload), token, "the test signs exactly as the server does");
    let mut fresh = payload.clone();
    fresh["jti"] = json!("tok_resignedbythetest0000");
    let (status, v, _) = w.authorize(&sign(&key, &header, &fresh));
    assert_eq!((status, v["decision"].as_str()), (200, Some("allow")), "re-signed token: {v}");

    // Valid only ten minutes from now (`iat <= nbf < exp` still holds).
    let mut future = payload.clone();
    future["jti"] = json!("tok_notyetvalidfromthetest");
    future["nbf"] = json!(payload["nbf"].as_i64().unwrap() + 600);
    future["exp"] = json!(payload["exp"].as_i64().unwrap() + 600);
    assert_rejected(&w, &sign(&key, &header, &future), "nbf in the future", "not valid before");
}

#[test]
fn private_key_jwt_from_a_real_oauth_client_authenticates_once_per_assertion() {
    let w = start(&[]);
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let jwk = json!({"kty": "OKP", "crv": "Ed25519", "kid": "agent-key-1", "alg": "EdDSA", "use": "sig",
        "x": URL_SAFE_NO_PAD.encode(key.verifying_key().to_bytes())});
    let a = w.admin_post(
        "/v1/agents",
        &json!({"owner": "team-x", "environment": "prod", "scopes": ["tickets"], "public_jwk": jwk}),
    );
    assert_eq!(a["auth"], json!("private_key_jwt"), "{a}");
    assert!(a.get("client_secret").is_none(), "no secret is issued with a public key: {a}");
    let id = a["id"].as_str().unwrap();
    let s = w.admin_post("/v1/sessions", &json!({"agent_id": id, "purpose": "triage"}));
    let session = s["id"].as_str().unwrap();

    let header = json!({"alg": "EdDSA", "typ": "JWT", "kid": "agent-key-1"});
    let claims = |aud: &str, exp: i64, jti: &str| json!({"iss": id, "sub": id, "aud": aud, "iat": now_s(), "exp": exp, "jti": jti});
    let endpoint = w.token_endpoint();

    // A valid assertion: a token that exchanges to a session token and authorizes.
    let valid = sign(&key, &header, &claims(&endpoint, now_s() + 60, "jti-valid"));
    let subject = w.jwt_client_token(id, &valid).expect("a valid assertion gets a token");
    assert_eq!(parts(&subject).1["sub"], json!(id));
    let (status, v) = w.exchange(&subject, session, &w.url);
    assert_eq!(status, 200, "{v}");
    let (status, v, _) = w.authorize(v["access_token"].as_str().unwrap());
    assert_eq!((status, v["decision"].as_str()), (200, Some("allow")), "{v}");

    let refused = |why: &str, assertion: &str, expect_in_description: &str| {
        let (status, code, description) = w.jwt_client_token(id, assertion).expect_err(why);
        assert!((400..500).contains(&status), "{why}: status {status}");
        assert_eq!(code, "invalid_client", "{why}: {description}");
        assert!(
            description.contains(expect_in_description),
            "{why}: `{description}` lacks `{expect_in_description}`"
        );
    };
    let other_key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    refused(
        "signed by another key",
        &sign(&other_key, &header, &claims(&endpoint, now_s() + 60, "jti-other-key")),
        "signature",
    );
    let mut expired = claims(&endpoint, now_s() - 60, "jti-expired");
    expired["iat"] = json!(now_s() - 120);
    refused("expired", &sign(&key, &header, &expired), "expired");
    refused(
        "wrong aud",
        &sign(&key, &header, &claims("https://elsewhere.example/oauth/token", now_s() + 60, "jti-aud")),
        "`aud`",
    );
    refused("replayed", &valid, "already used");
}

#[test]
fn revocation_by_token_session_and_agent_takes_effect_on_the_next_request() {
    let w = start(&[]);
    let (_, _, token) = w.session_token("prod");
    assert_eq!(w.authorize(&token).0, 200);
    let jti = parts(&token).1["jti"].as_str().unwrap().to_owned();
    w.admin_post("/v1/credentials/revoke", &json!({"jti": jti}));
    assert_rejected(&w, &token, "revoked token", "revoked");

    let (_, session, token) = w.session_token("prod");
    assert_eq!(w.authorize(&token).0, 200);
    w.admin_post(&format!("/v1/sessions/{session}/end"), &json!({}));
    assert_rejected(&w, &token, "ended session", "revoked");

    let (agent_id, _, token) = w.session_token("prod");
    assert_eq!(w.authorize(&token).0, 200);
    w.admin_post(&format!("/v1/agents/{agent_id}/revoke"), &json!({}));
    assert_rejected(&w, &token, "revoked agent", "revoked");
}

#[test]
fn budgets_pause_the_session_and_self_governance_is_refused() {
    let w = start(&[]);
    let a =
        w.admin_post("/v1/agents", &json!({"owner": "team-x", "environment": "prod", "scopes": ["tickets"]}));
    let s = w.admin_post(
        "/v1/sessions",
        &json!({"agent_id": a["id"], "purpose": "triage", "budgets": {"tool_calls_max": 2}}),
    );
    let subject = w.client_token(a["id"].as_str().unwrap(), a["client_secret"].as_str().unwrap());
    let (_, v) = w.exchange(&subject, s["id"].as_str().unwrap(), &w.url);
    let token = v["access_token"].as_str().unwrap().to_owned();
    assert_eq!(w.authorize(&token).1["decision"], json!("allow"));
    assert_eq!(w.authorize(&token).1["decision"], json!("allow"));
    let (_, third, _) = w.authorize(&token);
    assert_eq!(third["decision"], json!("deny"));
    assert!(third["reasons"][0].as_str().unwrap().contains("tool_calls_max"), "{third}");
    w.admin_post(
        &format!("/v1/sessions/{}/budgets", s["id"].as_str().unwrap()),
        &json!({"tool_calls_max": 10}),
    );
    w.admin_post(&format!("/v1/sessions/{}/resume", s["id"].as_str().unwrap()), &json!({}));
    assert_eq!(w.authorize(&token).1["decision"], json!("allow"));

    // Whatever the policy says, an agent cannot change its own governance.
    let own = json!({"intent": "policy.update",
        "resource": {"id": a["id"], "plane": "control", "environment": "prod", "data_class": "internal"}});
    let (status, v, _) = w.post("/v1/authorize", &token, &own);
    assert_eq!((status, v["decision"].as_str()), (200, Some("deny")), "{v}");
    // A policy change it asks for on anything else needs a human.
    let other = json!({"intent": "policy.update",
        "resource": {"id": "team-policy", "plane": "control", "environment": "prod", "data_class": "internal"}});
    let (_, v, _) = w.post("/v1/authorize", &token, &other);
    assert_eq!(v["decision"], json!("approve"), "{v}");
}

#[test]
fn a_bad_control_body_names_the_field_not_the_value() {
    let w = start(&[]);
    let cases = [
        (json!({"owner": "team-x", "environment": "moon"}), "environment"),
        (json!({"owner": "team-x", "environment": 7}), "environment"),
        (json!({"owner": "team-x", "environment": "prod", "scopes": ["a", 3]}), "scopes[1]"),
        (json!({"environment": "prod"}), "owner"),
        (json!({"owner": "team-x", "environment": "prod", "colour": "red"}), "colour"),
        (json!(["team-x", "prod"]), "body"),
    ];
    for (body, field) in cases {
        let (status, v, _) = w.post("/v1/agents", &w.admin, &body);
        assert_eq!(status, 400, "{body}: {v}");
        assert_eq!(v["error"], "invalid_request", "{body}: {v}");
        assert_eq!(v["fields"][0]["field"], json!(field), "{body}: {v}");
    }
    // The same body, put right, registers.
    let (status, v, _) = w.post("/v1/agents", &w.admin, &json!({"owner": "team-x", "environment": "prod"}));
    assert_eq!(status, 200, "{v}");
}
