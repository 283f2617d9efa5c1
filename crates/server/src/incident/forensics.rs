//! Forensics mode: while an operator has it on for a session, the gateway keeps
//! the full request and response body of each of the session's actions apart
//! from the log, and the action event commits to them by salted hash
//! ([`warden_core::action::ActionForensics`]).
//!
//! The sessions in forensics mode live in memory for [`Forensics::start`], which
//! the gateway calls for every forwarded action: while no session has it on, that
//! is one atomic load and nothing else. They are loaded from the store at start,
//! so a restart forgets none. A change is logged before it is stored and applied
//! (fail closed), one change at a time, so the log's order is the store's.
//!
//! A capture's life: [`Forensics::start`] (the request, bounded by
//! `forensic_body_bytes_max`) → [`Capture::tee`] (the answer as it streams to the
//! agent, bounded the same way) → [`Capture::finish`] (the commitment for the
//! action event) → [`Forensics::keep`] (stored once the action event is durable,
//! with its log index). Captures alive at once are bounded
//! ([`FORENSIC_CAPTURES_LIVE_MAX`]); past that an action is forwarded without
//! one, its action event then has no `forensics`, and the server log and
//! `warden_forensic_captures_skipped_total` say so.

use std::collections::HashSet;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use bytes::Bytes;
use rand::RngCore;
use serde_json::json;
use warden_core::Clock;
use warden_core::action::ActionForensics;
use warden_core::admin::Severity;
use warden_core::commitment::{SaltedSha256, commitment_of};
use warden_core::limits::COMMITMENT_SALT_BYTES;
use warden_core::metrics::Counter;
use warden_store::StoreError;
use warden_store::directory::SessionRecord;
use warden_store::forensics::{ForensicCapture, ForensicSetting, ForensicStore};

use crate::AppState;
use crate::control::record;
use crate::error::ApiError;

/// Most sessions in forensics mode at once: it is for the sessions under
/// investigation, not a second log of everything.
pub const FORENSIC_SESSIONS_MAX: usize = 10_000;
/// Most captures alive at once (being filled or waiting to be stored); each
/// holds up to two bodies of `forensic_body_bytes_max`, so this bounds memory.
pub const FORENSIC_CAPTURES_LIVE_MAX: usize = 64;
/// Longest a shutdown waits for captures still being stored.
pub const FORENSIC_DRAIN_MS_MAX: u64 = 5_000;
/// Most expired captures deleted in one sweep.
pub const FORENSIC_SWEEP_CAPTURES_MAX: usize = 1_000;

/// The sessions in forensics mode and the store of captures.
#[derive(Debug)]
pub struct Forensics {
    store: Arc<dyn ForensicStore>,
    // INVARIANT: holds exactly the sessions whose stored setting is enabled, and
    // `enabled_count` is its length; both change only in `set`, under `changes`.
    enabled: RwLock<HashSet<String>>,
    enabled_count: AtomicUsize,
    /// Serializes changes: log, store and memory in the same order.
    changes: tokio::sync::Mutex<()>,
    live: Arc<AtomicUsize>,
    /// Actions of sessions in forensics mode forwarded without a capture (too
    /// many alive at once): `warden_forensic_captures_skipped_total`.
    skipped: Counter,
    body_bytes_max: usize,
    retention_s: i64,
}

impl Forensics {
    /// Loads the sessions in forensics mode; bodies are kept up to
    /// `body_bytes_max` bytes each, for `retention_days`.
    pub fn load(
        store: Arc<dyn ForensicStore>,
        body_bytes_max: u64,
        retention_days: u32,
    ) -> Result<Self, StoreError> {
        let enabled: HashSet<String> = store.forensic_sessions()?.into_iter().map(|s| s.session_id).collect();
        Ok(Self {
            store,
            enabled_count: AtomicUsize::new(enabled.len()),
            enabled: RwLock::new(enabled),
            changes: tokio::sync::Mutex::new(()),
            live: Arc::default(),
            skipped: Counter::default(),
            body_bytes_max: usize::try_from(body_bytes_max).unwrap_or(usize::MAX),
            retention_s: i64::from(retention_days) * 86_400,
        })
    }

    /// Sessions in forensics mode now.
    pub fn sessions_on(&self) -> usize {
        self.enabled_count.load(Ordering::Acquire)
    }

    /// Captures being filled or waiting to be stored now.
    pub fn captures_live(&self) -> usize {
        self.live.load(Ordering::Acquire)
    }

    /// Actions forwarded without a capture because too many were alive.
    pub fn captures_skipped(&self) -> u64 {
        self.skipped.get()
    }

    /// The store of settings and captures.
    pub fn store(&self) -> &Arc<dyn ForensicStore> {
        &self.store
    }

    /// Whether forensics is on for `session_id`.
    pub fn is_on(&self, session_id: &str) -> bool {
        self.enabled_count.load(Ordering::Acquire) > 0
            && self.enabled.read().unwrap_or_else(PoisonError::into_inner).contains(session_id)
    }

    /// A capture for an action of `session_id` about to be forwarded with
    /// `request` as its body, or `None` when forensics is off for the session.
    pub fn start(&self, session_id: &str, request: &Bytes, clock: &dyn Clock) -> Option<Box<Capture>> {
        if !self.is_on(session_id) {
            return None;
        }
        if self.live.fetch_add(1, Ordering::AcqRel) >= FORENSIC_CAPTURES_LIVE_MAX {
            self.live.fetch_sub(1, Ordering::AcqRel);
            self.skipped.inc();
            tracing::warn!(
                session = session_id,
                limit = FORENSIC_CAPTURES_LIVE_MAX,
                "forensics: too many captures alive; this action is forwarded without one"
            );
            return None;
        }
        let live = LiveGuard(Arc::clone(&self.live));
        let mut salt = [0u8; COMMITMENT_SALT_BYTES];
        rand::rngs::OsRng.fill_bytes(&mut salt);
        let kept = request.slice(..request.len().min(self.body_bytes_max));
        Some(Box::new(Capture {
            request_sha256: commitment_of(&salt, &kept),
            response_digest: SaltedSha256::new(&salt),
            salt,
            request: kept,
            request_bytes: request.len() as u64,
            response: Vec::new(),
            response_bytes: 0,
            limit: self.body_bytes_max,
            captured_at: clock.now().unix_timestamp(),
            _live: live,
        }))
    }

    /// Stores `kept` once `index` (the action event's append) resolves to its log
    /// index; nothing is stored when the action event could not be recorded,
    /// because nothing in the log would commit to it.
    pub fn keep(
        &self,
        kept: Kept,
        owner: CaptureOwner,
        index: impl Future<Output = Result<u64, StoreError>> + Send + 'static,
    ) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::error!(decision = %owner.decision_id, "forensics: no runtime to store the capture; it is lost");
            return;
        };
        let store = Arc::clone(&self.store);
        let expires_at = kept.captured_at.saturating_add(self.retention_s);
        runtime.spawn(async move {
            let log_index = match index.await {
                Ok(i) => i,
                Err(e) => {
                    tracing::error!(error = %e, decision = %owner.decision_id,
                        "action event not recorded; its forensic capture is not kept");
                    return;
                }
            };
            let Kept { salt, request, request_bytes, response, response_bytes, captured_at, _live: live } =
                kept;
            let capture = ForensicCapture {
                decision_id: owner.decision_id,
                log_index,
                session_id: owner.session_id,
                agent_id: owner.agent_id,
                salt: salt.to_vec(),
                request: request.to_vec(),
                request_bytes,
                response,
                response_bytes,
                captured_at,
                expires_at,
            };
            let stored = tokio::task::spawn_blocking(move || {
                let stored = store.put_capture(&capture);
                (stored, capture.decision_id)
            })
            .await;
            match stored {
                Ok((Ok(()), _)) => {}
                Ok((Err(e), decision)) => {
                    tracing::error!(error = %e, %decision, log_index, "forensic capture not stored")
                }
                Err(e) => tracing::error!(error = %e, log_index, "forensic capture task failed"),
            }
            // Alive until stored: `drain` waits for it at shutdown.
            drop(live);
        });
    }

    /// Waits (at most [`FORENSIC_DRAIN_MS_MAX`]) until no capture is alive: at
    /// shutdown, once no request is in flight, those are captures being stored.
    pub async fn drain(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_millis(FORENSIC_DRAIN_MS_MAX);
        while self.live.load(Ordering::Acquire) > 0 {
            if tokio::time::Instant::now() >= deadline {
                tracing::warn!(
                    left = self.live.load(Ordering::Acquire),
                    "forensic captures still being stored at shutdown are lost"
                );
                return;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Deletes captures whose retention ended; returns how many.
    pub async fn sweep(&self, now_unix_s: i64) -> Result<u64, StoreError> {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || {
            store.delete_expired_captures(now_unix_s, FORENSIC_SWEEP_CAPTURES_MAX)
        })
        .await
        .map_err(|e| StoreError::Database(format!("the sweep task failed: {e}")))?
    }

    /// Turns forensics on or off for `session`: logged first, then stored, then
    /// applied. Returns the setting in force and whether it changed (asking for
    /// the state a session is already in changes and logs nothing).
    pub async fn set(
        &self,
        state: &AppState,
        operator_id: &str,
        session: &SessionRecord,
        enabled: bool,
        reason: &str,
    ) -> Result<(Option<ForensicSetting>, bool), ApiError> {
        let _one_change_at_a_time = self.changes.lock().await;
        let current = self.store.forensic_setting(&session.id)?;
        if current.as_ref().is_some_and(|c| c.enabled) == enabled {
            return Ok((current, false));
        }
        if enabled && self.enabled_count.load(Ordering::Acquire) >= FORENSIC_SESSIONS_MAX {
            return Err(ApiError::Conflict(format!(
                "{FORENSIC_SESSIONS_MAX} sessions are in forensics mode already; turn it off for one first"
            )));
        }
        let kind = if enabled { "session.forensics_enabled" } else { "session.forensics_disabled" };
        let details = json!({
            "agent_id": session.agent_id, "reason": reason,
            "body_bytes_max": self.body_bytes_max, "retention_days": self.retention_s / 86_400,
        });
        let log_index = record(state, kind, operator_id, &session.id, Severity::Info, details).await?;
        let setting = ForensicSetting {
            session_id: session.id.clone(),
            enabled,
            reason: reason.to_owned(),
            changed_by: operator_id.to_owned(),
            changed_at: state.clock.now().unix_timestamp(),
            log_index,
        };
        if let Err(e) = self.store.set_forensics(&setting) {
            // The log says it changed; say it changed back, if the log can.
            let undo = if enabled { "session.forensics_disabled" } else { "session.forensics_enabled" };
            let why = format!("the change could not be stored: {e}");
            let details = json!({"agent_id": session.agent_id, "reason": why});
            let _ = record(state, undo, "system", &session.id, Severity::Warning, details).await;
            return Err(e.into());
        }
        let mut sessions = self.enabled.write().unwrap_or_else(PoisonError::into_inner);
        if enabled {
            sessions.insert(session.id.clone());
        } else {
            sessions.remove(&session.id);
        }
        self.enabled_count.store(sessions.len(), Ordering::Release);
        Ok((Some(setting), true))
    }
}

/// Counts a capture alive until it is stored or dropped.
#[derive(Debug)]
struct LiveGuard(Arc<AtomicUsize>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Whose action a capture belongs to.
#[derive(Debug, Clone)]
pub struct CaptureOwner {
    /// `dec_…`.
    pub decision_id: String,
    /// `sess_…`.
    pub session_id: String,
    /// `agt_…`.
    pub agent_id: String,
}

/// The bodies of one action being captured.
pub struct Capture {
    salt: [u8; COMMITMENT_SALT_BYTES],
    // INVARIANT: `request` is the first `min(request_bytes, limit)` bytes of the
    // body and `request_sha256` commits to exactly them; `response` is the first
    // `min(response_bytes, limit)` bytes of the answer and `response_digest` has
    // seen exactly them.
    request: Bytes,
    request_bytes: u64,
    request_sha256: String,
    response: Vec<u8>,
    response_bytes: u64,
    response_digest: SaltedSha256,
    limit: usize,
    captured_at: i64,
    _live: LiveGuard,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Bodies may hold anything an upstream serves: never in a debug line.
        f.debug_struct("Capture")
            .field("request_bytes", &self.request_bytes)
            .field("response_bytes", &self.response_bytes)
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Adds the next bytes of the answer: counted whole, kept up to the limit.
    pub fn tee(&mut self, data: &[u8]) {
        self.response_bytes = self.response_bytes.saturating_add(data.len() as u64);
        let room = self.limit.saturating_sub(self.response.len());
        if let Some(kept) = data.get(..data.len().min(room))
            && !kept.is_empty()
        {
            self.response.extend_from_slice(kept);
            self.response_digest.update(kept);
        }
    }

    /// The commitment for the action event, and what to keep.
    pub fn finish(self) -> (ActionForensics, Kept) {
        let request_kept_bytes = self.request.len() as u64;
        let response_kept_bytes = self.response.len() as u64;
        let commitment = ActionForensics {
            request_bytes: self.request_bytes,
            request_kept_bytes,
            request_sha256: self.request_sha256,
            response_bytes: self.response_bytes,
            response_kept_bytes,
            response_sha256: self.response_digest.finish(),
            truncated: request_kept_bytes < self.request_bytes || response_kept_bytes < self.response_bytes,
        };
        let kept = Kept {
            salt: self.salt,
            request: self.request,
            request_bytes: self.request_bytes,
            response: self.response,
            response_bytes: self.response_bytes,
            captured_at: self.captured_at,
            _live: self._live,
        };
        (commitment, kept)
    }
}

/// A finished capture waiting for its action event's log index.
pub struct Kept {
    salt: [u8; COMMITMENT_SALT_BYTES],
    request: Bytes,
    request_bytes: u64,
    response: Vec<u8>,
    response_bytes: u64,
    captured_at: i64,
    _live: LiveGuard,
}

impl std::fmt::Debug for Kept {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Kept")
            .field("request_bytes", &self.request_bytes)
            .field("response_bytes", &self.response_bytes)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use warden_store::forensics::{FORENSICS_FILE, SqliteForensicStore};

    fn forensics(limit: u64) -> (tempfile::TempDir, Forensics) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteForensicStore::open(&dir.path().join(FORENSICS_FILE)).unwrap());
        store
            .set_forensics(&ForensicSetting {
                session_id: "sess_on".into(),
                enabled: true,
                reason: "r".into(),
                changed_by: "opr_a".into(),
                changed_at: 1,
                log_index: 1,
            })
            .unwrap();
        (dir, Forensics::load(store, limit, 30).unwrap())
    }

    #[test]
    fn only_sessions_in_forensics_mode_are_captured() {
        let (_dir, f) = forensics(1024);
        let clock = warden_core::FixedClock(time::OffsetDateTime::UNIX_EPOCH);
        assert!(f.start("sess_off", &Bytes::from_static(b"x"), &clock).is_none());
        assert!(f.start("sess_on", &Bytes::from_static(b"x"), &clock).is_some());
    }

    #[test]
    fn captures_past_the_live_bound_are_skipped_and_counted_and_a_finished_one_frees_its_place() {
        let (_dir, f) = forensics(1024);
        let clock = warden_core::FixedClock(time::OffsetDateTime::UNIX_EPOCH);
        let body = Bytes::from_static(b"x");
        let mut alive: Vec<_> =
            (0..FORENSIC_CAPTURES_LIVE_MAX).map(|_| f.start("sess_on", &body, &clock).unwrap()).collect();
        assert_eq!(
            (f.sessions_on(), f.captures_live(), f.captures_skipped()),
            (1, FORENSIC_CAPTURES_LIVE_MAX, 0)
        );
        assert!(f.start("sess_on", &body, &clock).is_none(), "one past the bound");
        assert!(f.start("sess_on", &body, &clock).is_none());
        assert_eq!((f.captures_live(), f.captures_skipped()), (FORENSIC_CAPTURES_LIVE_MAX, 2));
        drop(alive.pop());
        assert!(f.start("sess_on", &body, &clock).is_some(), "a place came free");
        assert_eq!(f.captures_skipped(), 2, "sessions without forensics are never counted");
        assert!(f.start("sess_off", &body, &clock).is_none());
        assert_eq!(f.captures_skipped(), 2);
    }

    #[test]
    fn a_capture_commits_to_exactly_the_kept_prefix_of_each_body() {
        let (_dir, f) = forensics(4);
        let clock = warden_core::FixedClock(time::OffsetDateTime::UNIX_EPOCH);
        let mut capture = f.start("sess_on", &Bytes::from_static(b"abcdefgh"), &clock).unwrap();
        for piece in [&b"12"[..], b"", b"345", b"6789"] {
            capture.tee(piece);
        }
        let (commitment, kept) = capture.finish();
        assert_eq!((commitment.request_bytes, commitment.request_kept_bytes), (8, 4));
        assert_eq!((commitment.response_bytes, commitment.response_kept_bytes), (9, 4));
        assert!(commitment.truncated);
        assert_eq!(&kept.request[..], b"abcd");
        assert_eq!(kept.response, b"1234");
        assert_eq!(commitment.check(&kept.salt, b"abcd", b"1234"), Ok(()));
    }

    #[test]
    fn captures_alive_at_once_are_bounded() {
        let (_dir, f) = forensics(16);
        let clock = warden_core::FixedClock(time::OffsetDateTime::UNIX_EPOCH);
        let body = Bytes::from_static(b"x");
        let alive: Vec<_> =
            (0..FORENSIC_CAPTURES_LIVE_MAX).map(|_| f.start("sess_on", &body, &clock)).collect();
        assert!(alive.iter().all(Option::is_some));
        assert!(f.start("sess_on", &body, &clock).is_none(), "one more than the limit");
        drop(alive);
        assert!(f.start("sess_on", &body, &clock).is_some(), "room again once they are gone");
    }
}
