//! Warden as an OAuth 2.0 authorization server for agents: `/oauth/token`
//! (client_credentials with a client secret or `private_key_jwt`, and RFC 8693
//! token exchange), the metadata documents, revocation, and the extractor that
//! authenticates agents on the resource side.

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use warden_core::admin::Severity;
use warden_core::{AgentId, SessionId};
use warden_identity::{
    AccessClaims, CLIENT_ASSERTION_TYPE_JWT_BEARER, ClientAssertionVerifier, ClientCredentialsRequest,
    ClientPublicKey, EnvironmentTier, ExchangeRequest, GRANT_TYPE_CLIENT_CREDENTIALS,
    GRANT_TYPE_TOKEN_EXCHANGE, Lifetimes, ReplayCache, RevocationList, TokenIssuer, TokenResponse,
    TokenVerifier, VerifiedTokenCache,
};
use warden_store::directory::{
    AgentRecord, AgentStatus, Environment, Revocation, RevocationKind, SessionStatus,
};

use crate::AppState;
use crate::control::{Operator, record};
use crate::error::ApiError;

/// Largest `/oauth/token` form body.
const TOKEN_FORM_BYTES_MAX: usize = 16 * 1024;

/// Keys, verification state and revocations.
#[derive(Debug)]
pub struct Credentials {
    /// Mints tokens; its issuer string is this server's URL.
    pub issuer: TokenIssuer,
    /// Checks tokens.
    pub verifier: TokenVerifier,
    /// Parsed tokens seen before (claims only; every check still runs).
    pub cache: VerifiedTokenCache,
    /// Revoked tokens, sessions and agents.
    pub revocations: RwLock<RevocationList>,
    /// Token lifetimes per environment tier.
    pub lifetimes: Lifetimes,
    /// Checks `private_key_jwt` client assertions.
    pub assertions: ClientAssertionVerifier,
    /// Assertion ids already used.
    pub replay: ReplayCache,
    /// Audiences that are control planes (shortest lifetimes in prod).
    pub control_plane_audiences: Vec<String>,
}

impl Credentials {
    /// Builds the credential state; `revocations` are those stored.
    pub fn new(
        issuer: TokenIssuer,
        lifetimes: Lifetimes,
        control_plane_audiences: Vec<String>,
        revocations: &[Revocation],
    ) -> Self {
        let mut list = RevocationList::new();
        for r in revocations {
            let outcome = match r.kind {
                RevocationKind::Token => list.revoke_token(&r.id, r.at),
                RevocationKind::Session => match SessionId::parse(&r.id) {
                    Ok(sid) => list.revoke_session(&sid, r.at),
                    Err(_) => Ok(()),
                },
                RevocationKind::Agent => match AgentId::parse(&r.id) {
                    Ok(agent) => list.revoke_agent(&agent, r.at),
                    Err(_) => Ok(()),
                },
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, "revocation list is full");
            }
        }
        let token_endpoint = format!("{}/oauth/token", issuer.issuer());
        Self {
            verifier: issuer.verifier(),
            issuer,
            cache: VerifiedTokenCache::default(),
            revocations: RwLock::new(list),
            lifetimes,
            assertions: ClientAssertionVerifier::new(&token_endpoint),
            replay: ReplayCache::default(),
            control_plane_audiences,
        }
    }

    /// This server's issuer identifier (and resource identifier).
    pub fn issuer_url(&self) -> &str {
        self.issuer.issuer()
    }
}

/// Revokes every token of an agent issued at or before `at`.
pub fn revoke_agent(state: &AppState, id: &str, at: i64) {
    if let (Ok(agent), Ok(mut list)) = (AgentId::parse(id), state.credentials.revocations.write())
        && let Err(e) = list.revoke_agent(&agent, at)
    {
        tracing::error!(error = %e, "cannot revoke agent");
    }
}

/// Revokes every token of a session issued at or before `at`.
pub fn revoke_session(state: &AppState, id: &str, at: i64) {
    if let (Ok(sid), Ok(mut list)) = (SessionId::parse(id), state.credentials.revocations.write())
        && let Err(e) = list.end_session(&sid, at)
    {
        tracing::error!(error = %e, "cannot revoke session");
    }
}

/// The OAuth routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/oauth/token", post(token))
        .route("/.well-known/jwks.json", get(jwks))
        .route("/.well-known/oauth-authorization-server", get(as_metadata))
        .route("/.well-known/oauth-protected-resource", get(resource_metadata))
        .route("/v1/credentials/revoke", post(revoke))
}

async fn jwks(State(state): State<AppState>) -> Json<Value> {
    Json(state.credentials.verifier.jwks())
}

async fn as_metadata(State(state): State<AppState>) -> Json<Value> {
    let iss = state.credentials.issuer_url();
    Json(json!({
        "issuer": iss,
        "token_endpoint": format!("{iss}/oauth/token"),
        "jwks_uri": format!("{iss}/.well-known/jwks.json"),
        "grant_types_supported": [GRANT_TYPE_CLIENT_CREDENTIALS, GRANT_TYPE_TOKEN_EXCHANGE],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["EdDSA"],
        "response_types_supported": [],
    }))
}

async fn resource_metadata(State(state): State<AppState>) -> Json<Value> {
    let iss = state.credentials.issuer_url();
    Json(json!({
        "resource": iss,
        "authorization_servers": [iss],
        "bearer_methods_supported": ["header"],
        "resource_signing_alg_values_supported": ["EdDSA"],
    }))
}

/// An RFC 6749 §5.2 error response.
#[derive(Debug)]
pub struct OAuthError {
    status: StatusCode,
    code: &'static str,
    description: String,
}

impl OAuthError {
    fn new(code: &'static str, description: impl Into<String>) -> Self {
        let status =
            if code == "invalid_client" { StatusCode::UNAUTHORIZED } else { StatusCode::BAD_REQUEST };
        Self { status, code, description: description.into() }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let body =
            json!({"error": self.code, "error_description": self.description, "message": self.description});
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

impl From<ApiError> for OAuthError {
    fn from(e: ApiError) -> Self {
        match e {
            ApiError::Unavailable(m) => Self {
                status: StatusCode::SERVICE_UNAVAILABLE,
                code: "temporarily_unavailable",
                description: m,
            },
            other => Self::new("invalid_request", other.to_string()),
        }
    }
}

impl From<warden_store::StoreError> for OAuthError {
    fn from(e: warden_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

fn tier(env: Environment) -> EnvironmentTier {
    match env {
        Environment::Dev => EnvironmentTier::Dev,
        Environment::Staging => EnvironmentTier::Staging,
        Environment::Prod => EnvironmentTier::Prod,
    }
}

async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, OAuthError> {
    if body.len() > TOKEN_FORM_BYTES_MAX {
        return Err(OAuthError::new(
            "invalid_request",
            format!("the form exceeds {TOKEN_FORM_BYTES_MAX} bytes"),
        ));
    }
    let form: HashMap<String, String> = serde_urlencoded::from_bytes(&body)
        .map_err(|e| OAuthError::new("invalid_request", format!("the body is not a form: {e}")))?;
    let now = state.clock.now().unix_timestamp();
    let grant = form.get("grant_type").map(String::as_str).unwrap_or("");
    let (agent, claims, exchanged) = match grant {
        GRANT_TYPE_CLIENT_CREDENTIALS => {
            let agent = authenticate_client(&state, &headers, &form, now).await?;
            (agent.clone(), client_credentials(&state, &agent, &form, now)?, false)
        }
        GRANT_TYPE_TOKEN_EXCHANGE => {
            let (agent, claims) = exchange(&state, &form, now)?;
            (agent, claims, true)
        }
        "" => return Err(OAuthError::new("invalid_request", "`grant_type` is required")),
        other => {
            return Err(OAuthError::new("unsupported_grant_type", format!("`{other}` is not supported")));
        }
    };
    let access_token = state.credentials.issuer.mint(&claims).map_err(|e| OAuthError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "server_error",
        description: e.to_string(),
    })?;
    record(&state, "credential.issued", &agent.id, &claims.jti, Severity::Info, json!({
        "grant_type": grant, "aud": claims.aud, "sid": claims.sid, "scope": claims.scope, "exp": claims.exp,
    }))
    .await?;
    let mut response = Json(TokenResponse::new(access_token, &claims, now, exchanged)).into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn client_credentials(
    state: &AppState,
    agent: &AgentRecord,
    form: &HashMap<String, String>,
    now: i64,
) -> Result<AccessClaims, OAuthError> {
    let agent_id = AgentId::parse(&agent.id).map_err(|e| OAuthError::new("invalid_client", e.to_string()))?;
    let request = ClientCredentialsRequest {
        agent: agent_id,
        client_id: agent.id.clone(),
        registered_scope: agent.scopes.join(" "),
        requested_scope: form.get("scope").cloned(),
        audience: state.credentials.issuer_url().to_owned(),
        tier: tier(agent.environment),
    };
    warden_identity::client_credentials(
        state.credentials.issuer_url(),
        &request,
        &state.credentials.lifetimes,
        now,
        warden_identity::generate_token_id(),
    )
    .map_err(|e| OAuthError::new(e.oauth_error_code(), e.to_string()))
}

fn exchange(
    state: &AppState,
    form: &HashMap<String, String>,
    now: i64,
) -> Result<(AgentRecord, AccessClaims), OAuthError> {
    let required = |name: &str| {
        form.get(name).ok_or_else(|| OAuthError::new("invalid_request", format!("`{name}` is required")))
    };
    let subject_token = required("subject_token")?;
    let creds = &state.credentials;
    let revocations =
        creds.revocations.read().map_err(|_| OAuthError::new("server_error", "revocations unavailable"))?;
    let subject = creds
        .verifier
        .verify(subject_token, creds.issuer_url(), now, &revocations)
        .map_err(|e| OAuthError::new("invalid_grant", format!("`subject_token`: {e}")))?;
    drop(revocations);
    let agent = active_agent(state, subject.sub.as_str()).map_err(|e| OAuthError::new("invalid_grant", e))?;
    let session_id = SessionId::parse(required("session_id")?)
        .map_err(|e| OAuthError::new("invalid_request", format!("`session_id` {e}")))?;
    let (session, _) = state
        .directory
        .session(session_id.as_str())?
        .ok_or_else(|| OAuthError::new("invalid_request", format!("no session `{session_id}`")))?;
    if session.agent_id != agent.id || session.status != SessionStatus::Active {
        return Err(OAuthError::new(
            "invalid_request",
            format!("session `{session_id}` is not an active session of agent `{}`", agent.id),
        ));
    }
    let resource = required("resource")?.clone();
    let request = ExchangeRequest {
        subject_token_type: required("subject_token_type")?.clone(),
        requested_token_type: form.get("requested_token_type").cloned(),
        control_plane: creds.control_plane_audiences.contains(&resource),
        resource,
        scope: form.get("scope").cloned(),
        session: session_id,
        purpose: session.purpose.clone(),
        resource_tier: tier(agent.environment),
    };
    let claims = warden_identity::exchange(
        &subject,
        &request,
        &creds.lifetimes,
        now,
        warden_identity::generate_token_id(),
    )
    .map_err(|e| OAuthError::new(e.oauth_error_code(), e.to_string()))?;
    Ok((agent, claims))
}

fn active_agent(state: &AppState, id: &str) -> Result<AgentRecord, String> {
    let agent = state
        .directory
        .agent(id)
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("unknown client `{id}`"))?;
    if agent.status != AgentStatus::Active {
        return Err(format!(
            "agent `{id}` is {}",
            match agent.status {
                AgentStatus::Active => "active",
                AgentStatus::Suspended => "suspended",
                AgentStatus::Revoked => "revoked",
            }
        ));
    }
    Ok(agent)
}

/// Client authentication: HTTP Basic, form secret, or `private_key_jwt`.
async fn authenticate_client(
    state: &AppState,
    headers: &HeaderMap,
    form: &HashMap<String, String>,
    now: i64,
) -> Result<AgentRecord, OAuthError> {
    let bad = |m: String| OAuthError::new("invalid_client", m);
    if let Some(assertion) = form.get("client_assertion") {
        if form.get("client_assertion_type").map(String::as_str) != Some(CLIENT_ASSERTION_TYPE_JWT_BEARER) {
            return Err(OAuthError::new("invalid_request", "`client_assertion_type` must be jwt-bearer"));
        }
        let client_id = warden_identity::unverified_client_id(assertion).map_err(|e| bad(e.to_string()))?;
        let agent = active_agent(state, &client_id).map_err(bad)?;
        let jwk = agent
            .public_jwk
            .as_ref()
            .ok_or_else(|| bad(format!("`{client_id}` has no registered public key")))?;
        let key = ClientPublicKey::from_jwk(jwk).map_err(|e| bad(e.to_string()))?;
        state
            .credentials
            .assertions
            .verify(assertion, &client_id, &key, now, &state.credentials.replay)
            .map_err(|e| bad(e.to_string()))?;
        return Ok(agent);
    }
    let (client_id, secret) = basic_credentials(headers)
        .or_else(|| Some((form.get("client_id")?.clone(), form.get("client_secret")?.clone())))
        .ok_or_else(|| {
            bad("client authentication is required (HTTP Basic, client_secret_post or private_key_jwt)"
                .into())
        })?;
    let agent = state.directory.agent(&client_id)?;
    let hash = agent.as_ref().and_then(|a| a.client_secret_hash.clone());
    // Argon2 is deliberately slow; keep it off the async workers. Unknown clients
    // cost the same work, so timing does not reveal which ids exist.
    let ok = tokio::task::spawn_blocking(move || match hash {
        Some(h) => warden_identity::verify_client_secret(&secret, &h),
        None => warden_identity::verify_unknown_client_secret(&secret),
    })
    .await
    .unwrap_or(false);
    match agent {
        Some(_) if ok => active_agent(state, &client_id).map_err(bad),
        _ => Err(bad("client authentication failed".into())),
    }
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (id, secret) = decoded.split_once(':')?;
    // RFC 6749 §2.3.1: both parts are form-urlencoded.
    let decode = |s: &str| {
        serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}")).ok()?.pop().map(|(_, v)| v)
    };
    Some((decode(id)?, decode(secret)?))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct RevokeBody {
    #[serde(default)]
    jti: Option<String>,
    #[serde(default)]
    session_id: Option<String>,
    #[serde(default)]
    agent_id: Option<String>,
}

/// `POST /v1/credentials/revoke`: by token id, session or agent; takes effect on
/// the very next request.
async fn revoke(
    State(state): State<AppState>,
    operator: Operator,
    body: axum::body::Bytes,
) -> Result<Json<Value>, ApiError> {
    operator.admin()?;
    let body: RevokeBody = crate::control::parse_body(&body)?;
    let now = state.clock.now().unix_timestamp();
    let (kind, id) = match (body.jti, body.session_id, body.agent_id) {
        (Some(jti), None, None) => (RevocationKind::Token, jti),
        (None, Some(sid), None) => (
            RevocationKind::Session,
            SessionId::parse(&sid).map_err(|e| ApiError::field("session_id", e.to_string()))?.to_string(),
        ),
        (None, None, Some(agent)) => (
            RevocationKind::Agent,
            AgentId::parse(&agent).map_err(|e| ApiError::field("agent_id", e.to_string()))?.to_string(),
        ),
        _ => return Err(ApiError::field("body", "give exactly one of `jti`, `session_id`, `agent_id`")),
    };
    record(&state, "credential.revoked", &operator.0.id, &id, Severity::Warning, json!({"kind": kind}))
        .await?;
    // A token id stays revoked until every token could have expired.
    let at =
        if kind == RevocationKind::Token { now + warden_identity::limits::TOKEN_LIFETIME_S_MAX } else { now };
    state.directory.add_revocation(&Revocation { kind, id: id.clone(), at })?;
    {
        let mut list = state
            .credentials
            .revocations
            .write()
            .map_err(|_| ApiError::Unavailable("revocations unavailable".into()))?;
        let outcome = match kind {
            RevocationKind::Token => list.revoke_token(&id, at),
            RevocationKind::Session => SessionId::parse(&id).map_or(Ok(()), |s| list.revoke_session(&s, at)),
            RevocationKind::Agent => AgentId::parse(&id).map_or(Ok(()), |a| list.revoke_agent(&a, at)),
        };
        outcome.map_err(|e| ApiError::Unavailable(e.to_string()))?;
    }
    Ok(Json(json!({"revoked": {"kind": kind, "id": id}})))
}

/// An authenticated agent call: a valid token bound to an active session.
#[derive(Debug, Clone)]
pub struct AgentCall {
    /// The verified claims.
    pub claims: std::sync::Arc<AccessClaims>,
}

/// A 401 that tells the client where to find the protected-resource metadata.
pub fn unauthorized(state: &AppState, code: &str, description: &str) -> Response {
    let meta = format!("{}/.well-known/oauth-protected-resource", state.credentials.issuer_url());
    let challenge = format!(
        "Bearer resource_metadata=\"{meta}\", error=\"{code}\", error_description=\"{}\"",
        description.replace('"', "'")
    );
    let body = json!({"error": code, "message": description});
    let mut response = (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

impl FromRequestParts<AppState> for AgentCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let token = warden_identity::bearer_from_request_parts(header, parts.uri.query())
            .map_err(|e| unauthorized(state, e.oauth_error_code(), &e.to_string()))?;
        let creds = &state.credentials;
        let now = state.clock.now().unix_timestamp();
        let claims = {
            let revocations = creds
                .revocations
                .read()
                .map_err(|_| unauthorized(state, "invalid_token", "revocations unavailable"))?;
            creds.verifier.verify_cached(&creds.cache, token, creds.issuer_url(), now, &revocations)
        }
        .map_err(|e| unauthorized(state, e.oauth_error_code(), &e.to_string()))?;
        if claims.sid.is_none() {
            return Err(unauthorized(
                state,
                "invalid_token",
                "this token is not bound to a session; exchange it for a session token first",
            ));
        }
        Ok(Self { claims })
    }
}

/// A credential an endpoint takes but does not require (`POST /v1/telemetry/submit`):
/// `None` when the request carries none; a credential that is sent must be valid,
/// so a bad one is a 401, never a silent downgrade to anonymous.
#[derive(Debug, Clone)]
pub struct OptionalAgentCall(pub Option<AgentCall>);

impl FromRequestParts<AppState> for OptionalAgentCall {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // Any `Authorization` header is a credential sent; so is a token in the query
        // string, found by the same parser as for a required credential (and refused
        // there, never ignored).
        let in_query = !matches!(
            warden_identity::bearer_from_request_parts(None, parts.uri.query()),
            Err(warden_identity::TokenError::Missing)
        );
        if !parts.headers.contains_key(header::AUTHORIZATION) && !in_query {
            return Ok(Self(None));
        }
        AgentCall::from_request_parts(parts, state).await.map(|call| Self(Some(call)))
    }
}
