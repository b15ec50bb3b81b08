//! Audit events: built in one place from the request they are about.

use serde_json::Value;

use crate::domain::store::AuditEvent;
use crate::primitives::http::Request;

/// An audit event with an actor distinct from its subject.
pub fn audit_event(
    req: &Request,
    now: i64,
    kind: &str,
    actor: Option<&str>,
    subject: Option<&str>,
    family_id: Option<&str>,
    detail: Option<Value>,
) -> AuditEvent {
    AuditEvent {
        at: now,
        kind: kind.to_string(),
        actor_user_id: actor.map(str::to_string),
        subject_user_id: subject.map(str::to_string),
        family_id: family_id.map(str::to_string),
        ip: req.client_ip().map(str::to_string),
        user_agent: req.user_agent(),
        detail,
    }
}

/// An audit event about the caller's own account (actor and subject alike).
pub fn own_event(
    req: &Request,
    now: i64,
    kind: &str,
    user_id: Option<&str>,
    family_id: Option<&str>,
    detail: Option<Value>,
) -> AuditEvent {
    audit_event(req, now, kind, user_id, user_id, family_id, detail)
}

/// An event done by the operator's command line: no actor and no request; its detail says
/// `"by": "cli"`.
pub fn cli_event(now: i64, kind: &str, subject: &str, detail: Option<Value>) -> AuditEvent {
    let mut detail = match detail {
        Some(Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    detail.insert("by".into(), Value::from("cli"));
    AuditEvent {
        at: now,
        kind: kind.to_string(),
        actor_user_id: None,
        subject_user_id: Some(subject.to_string()),
        family_id: None,
        ip: None,
        user_agent: None,
        detail: Some(Value::Object(detail)),
    }
}
