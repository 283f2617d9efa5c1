use super::*;
use time::macros::datetime;

const NOW: OffsetDateTime = datetime!(2026-04-15 02:00:00 UTC);
const HASH: &str = "sha256:0000000000000000000000000000000000000000000000000000000000000000";

fn good() -> Value {
    serde_json::json!({
        "agent_id": "agt_abc123", "session_id": "sess_xyz789", "timestamp": "2026-04-15T01:23:45Z",
        "action_type": "write", "outcome": "success", "axiom_hash": HASH, "context_ref": "pr_4521"
    })
}

fn fields(r: Result<Vec<TelemetryEvent>, Vec<FieldError>>) -> Vec<String> {
    r.err().unwrap_or_default().into_iter().map(|e| e.field).collect()
}

#[test]
fn accepts_single_and_batch() {
    let one = serde_json::to_vec(&good()).unwrap();
    assert_eq!(parse_submission(&one, NOW).unwrap().len(), 1);
    let batch = serde_json::to_vec(&serde_json::json!({"events": [good(), good()]})).unwrap();
    assert_eq!(parse_submission(&batch, NOW).unwrap().len(), 2);
}

#[test]
fn names_every_bad_field_in_a_batch() {
    let mut bad = good();
    bad["agent_id"] = "abc".into();
    bad["outcome"] = "maybe".into();
    bad["timestamp"] = "yesterday".into();
    bad["axiom_hash"] = "sha256:XYZ".into();
    let mut typed_wrong = good();
    typed_wrong["session_id"] = 5.into();
    typed_wrong["extra"] = true.into();
    let batch = serde_json::to_vec(&serde_json::json!({"events": [good(), bad, typed_wrong]})).unwrap();
    let mut got = fields(parse_submission(&batch, NOW));
    got.sort();
    assert_eq!(
        got,
        vec![
            "events[1].agent_id",
            "events[1].axiom_hash",
            "events[1].outcome",
            "events[1].timestamp",
            "events[2].extra",
            "events[2].session_id"
        ]
    );
}

#[test]
fn rejects_shapes_and_limits() {
    assert_eq!(fields(parse_submission(b"not json", NOW)), vec!["body"]);
    assert_eq!(fields(parse_submission(b"[1]", NOW)), vec!["body"]);
    assert_eq!(fields(parse_submission(br#"{"events": []}"#, NOW)), vec!["events"]);
    let many = serde_json::json!({"events": vec![good(); TELEMETRY_BATCH_EVENTS_MAX + 1]});
    assert_eq!(fields(parse_submission(&serde_json::to_vec(&many).unwrap(), NOW)), vec!["events"]);
    let mut missing = good();
    missing.as_object_mut().unwrap().remove("axiom_hash");
    assert_eq!(fields(parse_submission(&serde_json::to_vec(&missing).unwrap(), NOW)), vec!["axiom_hash"]);
    let mut future = good();
    future["timestamp"] = "2026-04-15T03:00:00Z".into();
    assert_eq!(fields(parse_submission(&serde_json::to_vec(&future).unwrap(), NOW)), vec!["timestamp"]);
    let mut big = good();
    big["context"] = serde_json::json!({"blob": "x".repeat(CONTEXT_BYTES_MAX)});
    assert_eq!(fields(parse_submission(&serde_json::to_vec(&big).unwrap(), NOW)), vec!["context"]);
}

#[test]
fn context_may_replace_axiom_hash() {
    let mut with_context = good();
    with_context.as_object_mut().unwrap().remove("axiom_hash");
    with_context["context"] = serde_json::json!({"read": ["a"], "model": "m"});
    let events = parse_submission(&serde_json::to_vec(&with_context).unwrap(), NOW).unwrap();
    assert!(events[0].context.is_some());
    assert!(events[0].axiom_hash.is_none());
}

fn event_with(text: String) -> LoggedEvent {
    LoggedEvent {
        kind: "telemetry".into(),
        source: Source::SelfReported,
        agent_id: AgentId::parse("agt_a").unwrap(),
        session_id: SessionId::parse("sess_b").unwrap(),
        timestamp: text.clone(),
        action_type: ActionType::Send,
        outcome: Outcome::Denied,
        axiom_hash: Some(text.clone()),
        context_commitment: Some(text.clone()),
        context_ref: Some(text.clone()),
        received_at: text,
    }
}

fn tricky_char() -> impl proptest::strategy::Strategy<Value = char> {
    use proptest::prelude::*;
    prop_oneof![
        any::<char>(),
        (0u8..0x20).prop_map(char::from),
        Just('"'),
        Just('\\'),
        Just('\u{7f}'),
        Just('/')
    ]
}

proptest::proptest! {
    #[test]
    fn leaf_is_rfc8785_canonical(chars in proptest::collection::vec(tricky_char(), 0..40)) {
        let e = event_with(chars.into_iter().collect());
        let reference = crate::canonical::to_canonical_vec(&e).unwrap();
        proptest::prop_assert_eq!(e.to_leaf().unwrap(), reference);
    }
}

#[test]
fn leaf_is_canonical_and_round_trips() {
    let e = LoggedEvent {
        kind: "telemetry".into(),
        source: Source::SelfReported,
        agent_id: AgentId::parse("agt_a").unwrap(),
        session_id: SessionId::parse("sess_b").unwrap(),
        timestamp: "2026-04-15T01:23:45Z".into(),
        action_type: ActionType::Write,
        outcome: Outcome::Success,
        axiom_hash: Some(HASH.into()),
        context_commitment: None,
        context_ref: None,
        received_at: "2026-04-15T01:23:46Z".into(),
    };
    let leaf = e.to_leaf().unwrap();
    let text = String::from_utf8(leaf.clone()).unwrap();
    assert!(text.starts_with(r#"{"action_type":"write","agent_id":"agt_a","axiom_hash":"#), "{text}");
    let back: LoggedEvent = serde_json::from_slice(&leaf).unwrap();
    assert_eq!(back, e);
}

proptest::proptest! {
    #[test]
    fn arbitrary_bytes_never_panic(body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512)) {
        let _ = parse_submission(&body, NOW);
    }

    #[test]
    fn mutated_events_are_accepted_or_named(field in 0usize..7, value in "\\PC{0,80}") {
        let names = ["agent_id", "session_id", "timestamp", "action_type", "outcome", "axiom_hash", "context_ref"];
        let mut e = good();
        e[names[field]] = value.into();
        if let Err(errors) = parse_submission(&serde_json::to_vec(&e).unwrap(), NOW) {
            proptest::prop_assert!(errors.iter().all(|f| f.field == names[field]), "{errors:?}");
        }
    }
}
