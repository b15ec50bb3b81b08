//! The JSON views of stored records that responses show.

use serde_json::{json, Value};

use crate::domain::config::Registration;
use crate::domain::store::{Family, User};

/// A user as shown to the user.
pub fn user_json(user: &User) -> Value {
    json!({ "id": user.id, "email": user.email, "name": user.name, "roles": user.roles })
}

/// A user's full view for admins (and the command line).
pub fn admin_user_json(u: &User) -> Value {
    let mut v = user_json(u);
    v["disabled"] = json!(u.disabled);
    v["created_at"] = json!(u.created_at);
    v["updated_at"] = json!(u.updated_at);
    v["mfa"] = json!({ "totp": u.totp });
    v
}

/// A session (refresh family) as shown to its owner or an admin.
pub fn family_json(f: &Family, now: i64, idle_ms: i64) -> Value {
    let status = f.status(now, idle_ms).as_str();
    json!({
        "id": f.id,
        "created_at": f.created_at,
        "last_used_at": f.last_used_at,
        "expires_at": f.expires_at,
        "user_agent": f.user_agent,
        "status": status,
        "revoked_at": f.revoked_at,
        "revoke_reason": f.revoke_reason,
        "console": f.console.as_ref().map(|via| json!({
            "via": via.as_str(),
            "api_key_id": via.api_key_id(),
        })),
    })
}

/// The name `REGISTRATION` is set with.
pub fn registration_name(registration: Registration) -> &'static str {
    match registration {
        Registration::Open => "open",
        Registration::Closed => "closed",
    }
}
