//! Endpoint policy: what a route forwards, named by its configuration.
//!
//! A route lists its **endpoints**, each a set of methods and a path pattern under the route's
//! base (`content/items/{model}`), with allowed values for named segments. A request that matches
//! no endpoint is refused before any credential is looked at or injected, and nothing reaches the
//! upstream. On a matched endpoint:
//!
//! * the **query** may only hold the parameters the endpoint lists, compared under every reading
//!   a CMS may apply to the name (see [`names`]); a listed parameter may constrain its value
//!   (a whole number, one of some values, or JSON whose `$` operators are listed);
//! * a **write** body is JSON whose members are the endpoint's `fields` (at their dotted paths),
//!   with `force`d members set by Gatehouse, `deny`ed members refused, no credential member at
//!   any depth and no repeated member;
//! * an **update** or **delete** may check the item's stored owner first (the `lookup`, done by
//!   [`crate::domain::proxy`]) and a **create** may never name an item id.
//!
//! A route without endpoints forwards its whole base only with `forward_all = true`.

use std::fmt;

use serde_json::{Map, Value};

use crate::domain::caller::Caller;
use crate::domain::proxy::json;
use crate::domain::proxy::names;
use crate::domain::proxy::path::check_remainder;
use crate::domain::proxy::routes::{
    normalize_param_name, parse_placement, parse_rules, route_err, Injection, Placement, Rule,
    ANONYMOUS,
};
use crate::domain::vars::Lookup;
use crate::primitives::error::ConfigError;
use crate::primitives::error::Error;

/// Methods an endpoint may list.
const METHODS: &[&str] = &["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"];
/// The largest stored-item answer read for an owner check.
pub const LOOKUP_BODY_LIMIT: usize = 1024 * 1024;

/// What an endpoint does with a request's body and item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// GET/HEAD: no body is forwarded.
    Read,
    /// A new item: the body policy applies; no item id may be named.
    Create,
    /// An existing item: the body policy applies; the owner may be checked first.
    Update(ItemRef),
    /// An existing item, no body; the owner may be checked first.
    Delete(ItemRef),
    /// The body is forwarded unseen (GraphQL and anything the policy cannot read into): no
    /// owner or body policy may be combined with it.
    Forward,
}

/// Where an update's or delete's item id comes from, and how its owner is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ItemRef {
    /// The id's source, when the owner is checked.
    pub id: Option<IdSource>,
    /// The owner check.
    pub lookup: Option<OwnerLookup>,
}

/// Where an item id is read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdSource {
    /// A named path segment (`items/{collection}/{id}`).
    Segment(String),
    /// A body member at a dotted path (Cockpit's `data._id`).
    Field(Vec<String>),
}

/// How the stored item is read to learn its owner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnerLookup {
    /// Path (and optional query) under the route's base, with `{segment}` and `{id}` holes.
    pub template: String,
    /// Dotted path of the owner in the answer (`data.author` for Directus).
    pub owner: Vec<String>,
    /// The credential the lookup is sent with.
    pub injection: Option<Injection>,
}

/// One part of a path pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Param {
        name: String,
        values: Option<Vec<String>>,
    },
}

/// What a listed query parameter's value may be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QueryKind {
    /// Anything, also in bracket form (`filter[status][_eq]=…`).
    Any,
    /// A whole number (at most 10 digits).
    Uint,
    /// One of these values.
    OneOf(Vec<String>),
    /// JSON (no repeated members) whose object keys starting with `$` are among these.
    Json(Vec<String>),
}

/// The body policy of a create or update.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BodyPolicy {
    /// Members the client may send (dotted paths; any value below them).
    fields: Vec<Vec<String>>,
    /// Members set by Gatehouse, whatever the client sent.
    force: Vec<(Vec<String>, Forced)>,
    /// Members that refuse the request.
    deny: Vec<Vec<String>>,
    /// The owner member, set to the caller's id.
    owner: Option<Vec<String>>,
}

/// A forced member's value.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Forced {
    /// The caller's user id (`null` for an anonymous caller): `"{user}"` in the configuration.
    User,
    /// A literal value.
    Value(Value),
}

/// One endpoint of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// `METHOD path`, for logs and configuration errors.
    pub label: String,
    methods: Vec<&'static str>,
    segments: Vec<Segment>,
    /// The endpoint's own rules; `None`: the route's rules for the method.
    rules: Option<Vec<Rule>>,
    /// What it does with bodies and items.
    pub action: Action,
    query: Vec<(String, QueryKind)>,
    body: BodyPolicy,
}

/// Named segments of a matched path (raw: they hold only unreserved characters).
pub type Params = Vec<(String, String)>;

impl Endpoint {
    fn allows(&self, method: &str) -> bool {
        self.methods.contains(&method)
    }

    /// The named segments of `remainder` when it matches this endpoint's pattern.
    fn match_path(&self, remainder: &str) -> Option<Params> {
        let parts: Vec<&str> = if remainder.is_empty() {
            Vec::new()
        } else {
            remainder.split('/').collect()
        };
        if parts.len() != self.segments.len() {
            return None;
        }
        let mut params = Vec::new();
        for (segment, part) in self.segments.iter().zip(parts) {
            match segment {
                Segment::Literal(text) => {
                    if text != part {
                        return None;
                    }
                }
                Segment::Param { name, values } => {
                    // A body policy never applies to GraphQL, even behind an open segment.
                    let policed = matches!(self.action, Action::Create | Action::Update(_));
                    if policed && is_graphql(part) {
                        return None;
                    }
                    if !plain_token(part)
                        || values
                            .as_ref()
                            .is_some_and(|v| !v.iter().any(|x| x == part))
                    {
                        return None;
                    }
                    params.push((name.clone(), part.to_string()));
                }
            }
        }
        Some(params)
    }

    /// The rules that decide who may call it, given the route's rules for `method`.
    pub fn rules<'a>(&'a self, route_rules: Option<&'a [Rule]>) -> Option<&'a [Rule]> {
        self.rules.as_deref().or(route_rules)
    }

    /// The owner check to run before forwarding, if any.
    pub fn owner_lookup(&self) -> Option<(&IdSource, &OwnerLookup)> {
        match &self.action {
            Action::Update(item) | Action::Delete(item) => {
                item.id.as_ref().zip(item.lookup.as_ref())
            }
            _ => None,
        }
    }

    /// Every secret its own rules or lookup can inject.
    pub fn secrets(&self) -> impl Iterator<Item = &Injection> {
        let lookup = match &self.action {
            Action::Update(item) | Action::Delete(item) => {
                item.lookup.as_ref().and_then(|l| l.injection.as_ref())
            }
            _ => None,
        };
        self.rules
            .iter()
            .flatten()
            .filter_map(|r| r.injection.as_ref())
            .chain(lookup)
    }

    /// Checks the query against the endpoint's list. The query is then forwarded as it came.
    /// `;` separates pairs here too, as some servers read it (older Go, Rack), so `a=1;token=x`
    /// is checked as two pairs; a value that needs a `;` sends it as `%3B`.
    pub fn check_query(&self, query: &str) -> Result<(), Error> {
        for pair in query.split(['&', ';']).filter(|p| !p.is_empty()) {
            let (raw_name, raw_value) = pair.split_once('=').unwrap_or((pair, ""));
            let name = names::readings(raw_name);
            let shown = format!("{:?}", name.decoded);
            let refuse = |why: String| Error::QueryNotAllowed(why);
            if name.has_controls {
                return Err(refuse(format!(
                    "query parameter {shown}: control characters"
                )));
            }
            let mut kinds = Vec::with_capacity(name.readings.len());
            for reading in &name.readings {
                match self.query.iter().find(|(n, _)| n == reading) {
                    Some((_, kind)) => kinds.push(kind),
                    None => {
                        return Err(refuse(format!(
                            "query parameter {shown} is not allowed here{}",
                            self.allowed_query_list()
                        )))
                    }
                }
            }
            let bytes = crate::primitives::encoding::decode_query_bytes(raw_value);
            let value = String::from_utf8_lossy(&bytes);
            let utf8 = std::str::from_utf8(&bytes).is_ok();
            for kind in kinds {
                if !utf8 && *kind != QueryKind::Any {
                    return Err(refuse(format!(
                        "query parameter {shown}: the value is not UTF-8"
                    )));
                }
                if name.structured && *kind != QueryKind::Any {
                    return Err(refuse(format!(
                        "query parameter {shown}: send it as a plain name=value pair"
                    )));
                }
                check_query_value(kind, &shown, &value)?;
            }
        }
        Ok(())
    }

    fn allowed_query_list(&self) -> String {
        if self.query.is_empty() {
            " (this endpoint takes no query parameters)".into()
        } else {
            let names: Vec<&str> = self.query.iter().map(|(n, _)| n.as_str()).collect();
            format!(" (allowed: {})", names.join(", "))
        }
    }

    /// Applies the body policy of a create or update to `body` (parsed strictly), for a request
    /// from `caller`; `credentials` are the normalized names never accepted as members.
    pub fn apply_body(
        &self,
        mut body: Value,
        caller: Option<&Caller>,
        credentials: &[String],
    ) -> Result<Value, Error> {
        let policy = &self.body;
        let id_field = match &self.action {
            Action::Update(ItemRef {
                id: Some(IdSource::Field(path)),
                ..
            }) => Some(path),
            _ => None,
        };
        let known: Vec<&Vec<String>> = policy
            .fields
            .iter()
            .chain(policy.force.iter().map(|(p, _)| p))
            .chain(policy.owner.iter())
            .chain(id_field)
            .collect();
        let Value::Object(root) = &body else {
            return Err(Error::BodyNotAllowed(
                "the body must be a JSON object".into(),
            ));
        };
        check_members(root, &mut Vec::new(), &known, &policy.deny, credentials)?;
        if let Some(path) = id_field {
            // Whether or not the owner is checked: an id that is not a plain token (Cockpit
            // takes `{"$ne": ""}` or `true` as a filter matching every item) never goes on.
            body_id(&body, path)?;
        }
        if self.action == Action::Create {
            refuse_item_ids(&body, &policy.fields)?;
        }
        let user = caller.map_or(Value::Null, |c| Value::String(c.user_id.clone()));
        for (path, forced) in &policy.force {
            let value = match forced {
                Forced::User => user.clone(),
                Forced::Value(v) => v.clone(),
            };
            set_path(&mut body, path, value)?;
        }
        if let Some(owner) = &policy.owner {
            set_path(&mut body, owner, user)?;
        }
        Ok(body)
    }

    /// The id of the item an owner-checked update or delete names, checked to be a plain token.
    pub fn item_id(
        &self,
        source: &IdSource,
        params: &Params,
        body: Option<&Value>,
    ) -> Result<String, Error> {
        match source {
            IdSource::Segment(name) => params
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .ok_or(Error::NotFound),
            IdSource::Field(path) => body_id(body.unwrap_or(&Value::Null), path),
        }
    }
}

/// The item id a body names at `path`: a string or whole number of plain characters.
fn body_id(body: &Value, path: &[String]) -> Result<String, Error> {
    let shown = path.join(".");
    let id = match lookup_path(body, path) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) if n.is_u64() => n.to_string(),
        _ => {
            return Err(Error::BodyNotAllowed(format!(
                "{shown}: required, the id of the item to update (a string or whole number)"
            )))
        }
    };
    if !plain_token(&id) || id.len() > 128 {
        return Err(Error::BodyNotAllowed(format!(
            "{shown}: an item id is at most 128 of A-Z a-z 0-9 - _ . ~"
        )));
    }
    Ok(id)
}

/// A create never names an item: no `_id` or `id` member directly inside an allowed field
/// that is an object (`fields = ["data"]` would otherwise let `data._id` turn it into an update).
fn refuse_item_ids(body: &Value, fields: &[Vec<String>]) -> Result<(), Error> {
    for field in fields {
        if let Some(Value::Object(map)) = lookup_path(body, field) {
            if let Some(k) = ["_id", "id"].into_iter().find(|k| map.contains_key(*k)) {
                return Err(Error::BodyNotAllowed(format!(
                    "{}.{k}: a create never names an item",
                    field.join(".")
                )));
            }
        }
    }
    Ok(())
}

/// The lookup's path and query under the route's base for the item `id`.
pub fn lookup_target(lookup: &OwnerLookup, params: &Params, id: &str) -> String {
    let mut out = lookup.template.replace("{id}", id);
    for (name, value) in params {
        out = out.replace(&format!("{{{name}}}"), value);
    }
    out
}

/// The stored owner in a lookup's answer, as a string (`None` when absent or null).
pub fn stored_owner(lookup: &OwnerLookup, answer: &Value) -> Option<String> {
    match lookup_path(answer, &lookup.owner)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn check_query_value(kind: &QueryKind, shown: &str, value: &str) -> Result<(), Error> {
    let refuse = |why: String| {
        Err(Error::QueryNotAllowed(format!(
            "query parameter {shown}: {why}"
        )))
    };
    match kind {
        QueryKind::Any => Ok(()),
        QueryKind::Uint => {
            if value.is_empty() || value.len() > 10 || !value.bytes().all(|b| b.is_ascii_digit()) {
                return refuse("expected a whole number".into());
            }
            Ok(())
        }
        QueryKind::OneOf(values) => {
            if !values.iter().any(|v| v == value) {
                return refuse(format!("expected one of {}", values.join(", ")));
            }
            Ok(())
        }
        QueryKind::Json(operators) => {
            let parsed = match json::parse(value.as_bytes()) {
                Ok(v) => v,
                Err(json::StrictError::Syntax) => return refuse("expected JSON".into()),
                Err(json::StrictError::Duplicate(k)) => {
                    return refuse(format!("the member {k:?} is repeated"))
                }
            };
            let refused = |k: &str| k.starts_with('$') && !operators.iter().any(|o| o == k);
            if let Some(path) = json::find_member(&parsed, &refused) {
                let op = path.rsplit('.').next().unwrap_or(&path).to_string();
                return refuse(format!("the operator {op} is not allowed"));
            }
            Ok(())
        }
    }
}

/// Walks a body object: every member must be known (or lead to a known member), none denied,
/// none a credential, no name with a path character. `prefix` is scratch space: the path of
/// the object being walked (on an error it is left as it was at the member refused).
fn check_members(
    map: &Map<String, Value>,
    prefix: &mut Vec<String>,
    known: &[&Vec<String>],
    deny: &[Vec<String>],
    credentials: &[String],
) -> Result<(), Error> {
    for (name, value) in map {
        prefix.push(name.clone());
        check_member_name(name, prefix, credentials)?;
        let field = || prefix.join(".");
        if deny.iter().any(|d| d == prefix) {
            return Err(Error::BodyNotAllowed(format!(
                "{}: may not be sent here",
                field()
            )));
        }
        if known.iter().any(|k| *k == prefix) {
            // An allowed member: any value, but never a credential inside it.
            let cred = |k: &str| credentials.contains(&normalize_param_name(k));
            if let Some(inner) = json::find_member(value, &cred) {
                return Err(Error::BodyNotAllowed(format!(
                    "{}.{inner}: credentials and method overrides are not accepted in the body",
                    field()
                )));
            }
        } else if known
            .iter()
            .any(|k| k.len() > prefix.len() && k.starts_with(prefix))
        {
            let Value::Object(inner) = value else {
                return Err(Error::BodyNotAllowed(format!(
                    "{}: must be an object",
                    field()
                )));
            };
            check_members(inner, prefix, known, deny, credentials)?;
        } else {
            return Err(Error::BodyNotAllowed(format!(
                "{}: not a field this endpoint accepts",
                field()
            )));
        }
        prefix.pop();
    }
    Ok(())
}

/// A member's own name (the last of `path`): not empty, no path character or control
/// character, not a credential or method override.
fn check_member_name(name: &str, path: &[String], credentials: &[String]) -> Result<(), Error> {
    if name.is_empty() || name.contains(['.', '[', ']']) || name.chars().any(char::is_control) {
        return Err(Error::BodyNotAllowed(format!(
            "{:?}: member names may not be empty or hold . [ ] or control characters",
            path.join(".")
        )));
    }
    if credentials.contains(&normalize_param_name(name)) {
        return Err(Error::BodyNotAllowed(format!(
            "{}: credentials and method overrides are not accepted in the body",
            path.join(".")
        )));
    }
    Ok(())
}

fn lookup_path<'v>(value: &'v Value, path: &[String]) -> Option<&'v Value> {
    path.iter()
        .try_fold(value, |node, key| node.as_object()?.get(key))
}

/// Sets `path` in `value` to `new`, creating missing parents as objects.
fn set_path(value: &mut Value, path: &[String], new: Value) -> Result<(), Error> {
    let mut node = value;
    for (i, key) in path.iter().enumerate() {
        let Value::Object(map) = node else {
            return Err(Error::BodyNotAllowed(format!(
                "{}: must be an object",
                path[..i].join(".")
            )));
        };
        if i + 1 == path.len() {
            map.insert(key.clone(), new);
            return Ok(());
        }
        node = map
            .entry(key.clone())
            .or_insert_with(|| Value::Object(Map::new()));
    }
    Ok(())
}

/// A segment or id made only of RFC 3986 unreserved characters, and not a dot segment.
fn plain_token(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// What a request on a route is aimed at.
#[derive(Debug)]
pub enum Target<'r> {
    /// A `forward_all` route: the whole base.
    Base,
    /// One endpoint, with its named segments.
    Endpoint(&'r Endpoint, Params),
}

/// The endpoints of `endpoints` that match `method` and `remainder`, in the order they are
/// tried: the caller gets the first whose rules admit them. `body` is the write body parsed,
/// when it is JSON: when it carries the id member of updates on this path (Cockpit creates and
/// updates on one path), only those updates are candidates; otherwise they come last. No path
/// match: `not_found`; a path match for other methods only: `405` with their `Allow`.
pub fn select<'r>(
    endpoints: &'r [Endpoint],
    method: &str,
    remainder: &str,
    body: Option<&Value>,
) -> Result<Vec<Target<'r>>, Error> {
    let mut allow: Vec<&'static str> = Vec::new();
    let (mut named, mut rest, mut unnamed) = (Vec::new(), Vec::new(), Vec::new());
    for endpoint in endpoints {
        let Some(params) = endpoint.match_path(remainder) else {
            continue;
        };
        for m in &endpoint.methods {
            if !allow.contains(m) {
                allow.push(m);
            }
        }
        if !endpoint.allows(method) {
            continue;
        }
        let target = Target::Endpoint(endpoint, params);
        match &endpoint.action {
            Action::Update(ItemRef {
                id: Some(IdSource::Field(path)),
                ..
            }) => {
                if body.and_then(|b| lookup_path(b, path)).is_some() {
                    named.push(target);
                } else {
                    unnamed.push(target);
                }
            }
            _ => rest.push(target),
        }
    }
    // A body naming its item is for the updates that take it from there: another endpoint on
    // the path (a create) would only refuse the id.
    if named.is_empty() {
        named.extend(rest);
        named.extend(unnamed);
    }
    if !named.is_empty() {
        return Ok(named);
    }
    if allow.is_empty() {
        return Err(Error::NotFound);
    }
    allow.sort_by_key(|m| METHODS.iter().position(|x| x == m));
    Err(Error::MethodNotAllowed(allow.join(", ").into()))
}

/// What parsing an endpoint needs from its route.
pub struct RouteContext<'a> {
    /// The route's name.
    pub route: &'a str,
    /// The route's default `inject`.
    pub default_inject: Option<&'a Placement>,
    /// Secret lookup.
    pub lookup: Lookup<'a>,
    /// The route's rules per method (defaults for endpoints without their own).
    pub route_rules: &'a [(&'static str, Vec<Rule>)],
    /// Normalized names never accepted in a query list or body (credentials, `_method`).
    pub credentials: &'a [String],
}

const ENDPOINT_KEYS: &[&str] = &[
    "method", "path", "values", "action", "roles", "secret", "inject", "rules", "query", "fields",
    "force", "deny", "owner", "id", "lookup",
];

/// Parses `endpoints[index]` of a route.
pub fn parse_endpoint(
    ctx: &RouteContext<'_>,
    index: usize,
    spec: &Value,
) -> Result<Endpoint, ConfigError> {
    let Value::Object(spec) = spec else {
        return Err(route_err(
            ctx.route,
            &format!("endpoints[{index}]"),
            "expected a table",
        ));
    };
    if let Some(key) = spec.keys().find(|k| !ENDPOINT_KEYS.contains(&k.as_str())) {
        return Err(route_err(
            ctx.route,
            &format!("endpoints[{index}].{key}"),
            format!("unknown field (known: {})", ENDPOINT_KEYS.join(", ")),
        ));
    }
    let first = EndpointSpec {
        ctx,
        spec,
        at: format!("endpoints[{index}]"),
    };
    let methods = first.methods()?;
    let Some(Value::String(path)) = spec.get("path") else {
        return Err(first.err("path", "required, a pattern such as content/items/{model}"));
    };
    let segments = first.segments(path)?;
    let label = format!("{} {path}", methods.join(","));
    // From here on errors name the endpoint by its methods and path too.
    let e = EndpointSpec {
        at: format!("endpoints[{index}] ({label})"),
        ..first
    };
    let rules = e.rules(&methods)?;
    let action = e.action(&methods, &segments)?;
    let query = match spec.get("query") {
        None => Vec::new(),
        Some(v) => parse_query(ctx, &e.field("query"), v)?,
    };
    let body = match action {
        Action::Create | Action::Update(_) => e.body_policy(&action, &segments)?,
        _ => BodyPolicy::default(),
    };
    e.check_owner_rules(&action, &body, rules.as_deref(), &methods)?;
    Ok(Endpoint {
        label,
        methods,
        segments,
        rules,
        action,
        query,
        body,
    })
}

/// One endpoint's table while it is parsed; errors name the route, endpoint and field.
struct EndpointSpec<'a> {
    ctx: &'a RouteContext<'a>,
    spec: &'a Map<String, Value>,
    at: String,
}

impl EndpointSpec<'_> {
    fn field(&self, field: &str) -> String {
        format!("{}.{field}", self.at)
    }

    fn err(&self, field: &str, why: impl fmt::Display) -> ConfigError {
        route_err(self.ctx.route, &self.field(field), why)
    }

    fn has(&self, key: &str) -> bool {
        self.spec.contains_key(key)
    }

    /// `method`: reads and writes never share an endpoint.
    fn methods(&self) -> Result<Vec<&'static str>, ConfigError> {
        let methods = parse_methods(
            self.ctx.route,
            &self.field("method"),
            self.spec.get("method"),
        )?;
        let reads = methods.iter().filter(|m| is_read(m)).count();
        if reads != 0 && reads != methods.len() {
            return Err(self.err(
                "method",
                "list reads (GET, HEAD) and writes in separate endpoints",
            ));
        }
        Ok(methods)
    }

    /// `path` with the allowed `values` of its named segments.
    fn segments(&self, path: &str) -> Result<Vec<Segment>, ConfigError> {
        let mut segments = parse_pattern(self.ctx.route, &self.field("path"), path)?;
        let Some(values) = self.spec.get("values") else {
            return Ok(segments);
        };
        let Value::Object(values) = values else {
            return Err(self.err("values", "expected a table of segment = [values]"));
        };
        for (name, allowed) in values {
            let field = self.field(&format!("values.{name}"));
            let list = token_list(self.ctx.route, &field, allowed)?;
            let slot = segments.iter_mut().find_map(|s| match s {
                Segment::Param { name: n, values } if n == name => Some(values),
                _ => None,
            });
            let Some(slot) = slot else {
                return Err(route_err(
                    self.ctx.route,
                    &field,
                    "no such {segment} in the path",
                ));
            };
            *slot = Some(list);
        }
        Ok(segments)
    }

    /// The endpoint's own rules (`rules = [...]`, or `roles`/`secret`/`inject`); `None` when it
    /// uses the route's, which must then exist for each of its methods.
    fn rules(&self, methods: &[&'static str]) -> Result<Option<Vec<Rule>>, ConfigError> {
        let ctx = self.ctx;
        let rules = match (self.spec.get("rules"), self.has("roles")) {
            (Some(_), true) => {
                return Err(self.err(
                    "rules",
                    "give either rules = [...] or roles/secret/inject, not both",
                ))
            }
            (Some(list), false) => Some(parse_rules(
                ctx.route,
                &self.field("rules"),
                list,
                ctx.default_inject,
                ctx.lookup,
            )?),
            (None, true) => {
                let rule: Map<String, Value> = ["roles", "secret", "inject"]
                    .iter()
                    .filter_map(|k| self.spec.get(*k).map(|v| (k.to_string(), v.clone())))
                    .collect();
                Some(parse_rules(
                    ctx.route,
                    &self.field("roles"),
                    &Value::Object(rule),
                    ctx.default_inject,
                    ctx.lookup,
                )?)
            }
            (None, false) if self.has("secret") || self.has("inject") => {
                return Err(self.err("roles", "secret/inject need roles on the same endpoint"))
            }
            (None, false) => None,
        };
        if rules.is_none() {
            if let Some(method) = methods
                .iter()
                .find(|m| route_rules_for(ctx.route_rules, m).is_none())
            {
                return Err(self.err(
                    "roles",
                    format!("no rule for {method}: give the endpoint roles, or the route a rule for {method}"),
                ));
            }
        }
        Ok(rules)
    }

    /// `action` (with `id` and `lookup` for updates and deletes).
    fn action(
        &self,
        methods: &[&'static str],
        segments: &[Segment],
    ) -> Result<Action, ConfigError> {
        let write = !methods.iter().all(|m| is_read(m));
        let name = match self.spec.get("action") {
            None if !write => "read",
            None => {
                return Err(self.err(
                    "action",
                    "required for writes: create, update, delete or forward",
                ))
            }
            Some(Value::String(a)) => a.as_str(),
            Some(_) => return Err(self.err("action", "expected a string")),
        };
        let action = match (name, write) {
            ("read", false) => Action::Read,
            ("create", true) => Action::Create,
            ("forward", true) => Action::Forward,
            ("update", true) => Action::Update(self.item_ref(name, segments)?),
            ("delete", true) => Action::Delete(self.item_ref(name, segments)?),
            ("read", true) => return Err(self.err("action", "read is for GET/HEAD endpoints")),
            ("create" | "update" | "delete" | "forward", false) => {
                return Err(self.err("action", format!("{name} is for write methods")))
            }
            (other, _) => {
                return Err(self.err(
                    "action",
                    format!("unknown action {other:?} (read, create, update, delete, forward)"),
                ))
            }
        };
        self.check_action_fields(&action, write, segments)?;
        Ok(action)
    }

    /// What only some actions may have: a GraphQL path is only ever forwarded, a body policy
    /// belongs to creates and updates, an item to updates and deletes.
    fn check_action_fields(
        &self,
        action: &Action,
        write: bool,
        segments: &[Segment],
    ) -> Result<(), ConfigError> {
        let graphql = segments.iter().any(|s| match s {
            Segment::Literal(t) => is_graphql(t),
            Segment::Param { values, .. } => values.iter().flatten().any(|v| is_graphql(v)),
        });
        if graphql && write && *action != Action::Forward {
            return Err(self.err(
                "action",
                "a GraphQL endpoint's body cannot be checked: use action = \"forward\", without owner or body policy, and give it only to trusted roles",
            ));
        }
        if !matches!(action, Action::Create | Action::Update(_)) {
            if let Some(k) = ["fields", "force", "deny", "owner"]
                .iter()
                .find(|k| self.has(k))
            {
                return Err(self.err(
                    k,
                    if *action == Action::Forward {
                        "this endpoint's body is forwarded unseen, so no owner or body policy can hold on it (route refused)"
                    } else {
                        "only create and update endpoints have a body policy"
                    },
                ));
            }
        }
        if !matches!(action, Action::Update(_) | Action::Delete(_)) {
            if let Some(k) = ["id", "lookup"].iter().find(|k| self.has(k)) {
                return Err(self.err(k, "only update and delete endpoints name an item"));
            }
        }
        Ok(())
    }

    /// An update's or delete's `id` and owner `lookup`.
    fn item_ref(&self, action: &str, segments: &[Segment]) -> Result<ItemRef, ConfigError> {
        let params = param_names(segments);
        let id = match self.spec.get("id") {
            None => None,
            Some(Value::String(id)) => Some(parse_id_source(
                self.ctx.route,
                &self.field("id"),
                id,
                &params,
                action,
            )?),
            Some(_) => return Err(self.err("id", "expected \"{segment}\" or a dotted body path")),
        };
        let path_names_item = params.iter().any(|p| *p == "id" || *p == "_id");
        if matches!(id, Some(IdSource::Field(_))) && path_names_item {
            return Err(self.err(
                "id",
                "the path names the item ({id}): take the id from there (id = \"{id}\"), or the owner check could read another item than the one written",
            ));
        }
        let lookup = self
            .spec
            .get("lookup")
            .map(|v| parse_lookup(self.ctx, &self.field("lookup"), v, &params))
            .transpose()?;
        if lookup.is_some() && id.is_none() {
            return Err(self.err(
                "id",
                "an owner lookup needs the item id: \"{segment}\" or a body path",
            ));
        }
        Ok(ItemRef { id, lookup })
    }

    /// A create's or update's `fields`, `force`, `deny` and `owner`.
    fn body_policy(
        &self,
        action: &Action,
        segments: &[Segment],
    ) -> Result<BodyPolicy, ConfigError> {
        let mut body = BodyPolicy {
            fields: match self.spec.get("fields") {
                Some(v) => self.member_paths("fields", v)?,
                None => {
                    return Err(self.err(
                        "fields",
                        "required: the body members the client may send, e.g. [\"data.title\"]",
                    ))
                }
            },
            deny: self
                .spec
                .get("deny")
                .map(|v| self.member_paths("deny", v))
                .transpose()?
                .unwrap_or_default(),
            force: self.forced_members()?,
            ..BodyPolicy::default()
        };
        body.owner = match self.spec.get("owner") {
            None => None,
            Some(Value::String(s)) => Some(parse_member_path(self.ctx, &self.field("owner"), s)?),
            Some(_) => return Err(self.err("owner", "expected a dotted path such as data.author")),
        };
        self.check_body_paths(&body, action)?;
        if *action == Action::Create {
            self.check_create_names_no_item(&body, segments)?;
        }
        Ok(body)
    }

    /// A list of dotted member paths (`fields`, `deny`).
    fn member_paths(&self, field: &str, value: &Value) -> Result<Vec<Vec<String>>, ConfigError> {
        let Value::Array(items) = value else {
            return Err(self.err(field, "expected a list of dotted paths such as data.title"));
        };
        items
            .iter()
            .map(|v| match v {
                Value::String(s) => parse_member_path(self.ctx, &self.field(field), s),
                _ => Err(self.err(field, "expected a list of dotted paths such as data.title")),
            })
            .collect()
    }

    /// `force`: a table of member path = value (`"{user}"`: the caller's user id).
    fn forced_members(&self) -> Result<Vec<(Vec<String>, Forced)>, ConfigError> {
        let Some(v) = self.spec.get("force") else {
            return Ok(Vec::new());
        };
        let Value::Object(force) = v else {
            return Err(self.err("force", "expected a table of path = value"));
        };
        force
            .iter()
            .map(|(path, value)| {
                let forced = match value {
                    Value::String(s) if s == "{user}" => Forced::User,
                    v => Forced::Value(v.clone()),
                };
                Ok((
                    parse_member_path(self.ctx, &self.field("force"), path)?,
                    forced,
                ))
            })
            .collect()
    }

    /// A create never names an item: no `id`/`_id` field, no `{id}` segment.
    fn check_create_names_no_item(
        &self,
        body: &BodyPolicy,
        segments: &[Segment],
    ) -> Result<(), ConfigError> {
        let names_id = |p: &Vec<String>| p.last().is_some_and(|l| l == "id" || l == "_id");
        if let Some(p) = body.fields.iter().find(|p| names_id(p)) {
            return Err(self.err(
                "fields",
                format!(
                    "{}: a create endpoint never takes an item id (use an update endpoint)",
                    p.join(".")
                ),
            ));
        }
        if param_names(segments)
            .iter()
            .any(|n| *n == "id" || *n == "_id")
        {
            return Err(self.err(
                "path",
                "a create endpoint never takes an item id in its path",
            ));
        }
        Ok(())
    }

    /// The paths Gatehouse sets, refuses or reads the id from must lie outside the values the
    /// client may send freely, and a denied member is neither allowed nor the item's id.
    fn check_body_paths(&self, body: &BodyPolicy, action: &Action) -> Result<(), ConfigError> {
        let id_field = match action {
            Action::Update(ItemRef {
                id: Some(IdSource::Field(p)),
                ..
            }) => Some(p),
            _ => None,
        };
        // Every member Gatehouse sets, refuses or reads the id from must lie outside the values
        // the client may send freely: below an allowed `data`, `data._state` could not be refused.
        let set_or_read = body
            .deny
            .iter()
            .chain(body.force.iter().map(|(p, _)| p))
            .chain(body.owner.iter())
            .chain(id_field);
        for path in set_or_read {
            let inside = body
                .fields
                .iter()
                .find(|f| f.len() < path.len() && path.starts_with(f));
            if let Some(field) = inside {
                let field = field.join(".");
                return Err(self.err(
                    "fields",
                    format!(
                        "{} lies inside the allowed {field}: list the fields of {field} one by one",
                        path.join(".")
                    ),
                ));
            }
        }
        // A denied member may also be forced (the client may not send it; Gatehouse sets it),
        // but not allowed, nor be the item's id.
        if let Some(denied) = body
            .deny
            .iter()
            .find(|d| body.fields.contains(d) || id_field == Some(*d))
        {
            return Err(self.err("deny", format!("{} is also allowed", denied.join("."))));
        }
        Ok(())
    }

    /// Owner rules that only hold together: an update that sets the owner checks it first and
    /// the other way round; an owner check never admits anonymous callers.
    fn check_owner_rules(
        &self,
        action: &Action,
        body: &BodyPolicy,
        own_rules: Option<&[Rule]>,
        methods: &[&'static str],
    ) -> Result<(), ConfigError> {
        let sets_owner = body.owner.is_some() || body.force.iter().any(|(_, f)| *f == Forced::User);
        if let Action::Update(item) = action {
            match (&item.lookup, sets_owner) {
                (None, true) => return Err(self.err(
                    "lookup",
                    "an update that sets the owner (owner, or a force of \"{user}\") must check the stored owner first (lookup), or it hands other users' items to the caller",
                )),
                (Some(_), false) => return Err(self.err(
                    "owner",
                    "an owner-checked update must also set the owner (owner = \"…\"), so ownership never changes through Gatehouse",
                )),
                _ => {}
            }
        }
        let owner_checked =
            matches!(action, Action::Update(i) | Action::Delete(i) if i.lookup.is_some());
        let mut effective = match own_rules {
            Some(own) => own.iter().collect::<Vec<_>>(),
            None => methods
                .iter()
                .filter_map(|m| route_rules_for(self.ctx.route_rules, m))
                .flatten()
                .collect(),
        }
        .into_iter();
        if owner_checked && effective.any(|r| r.roles.iter().any(|x| x == ANONYMOUS)) {
            return Err(self.err(
                "roles",
                "an owner-checked endpoint cannot admit anonymous callers (they own nothing)",
            ));
        }
        Ok(())
    }
}

fn is_graphql(segment: &str) -> bool {
    segment.eq_ignore_ascii_case("graphql") || segment.eq_ignore_ascii_case("gql")
}

fn is_read(method: &str) -> bool {
    matches!(method, "GET" | "HEAD")
}

fn param_names(segments: &[Segment]) -> Vec<&str> {
    segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
        .collect()
}

/// The route's rules for `method` as an endpoint uses them: a HEAD without its own takes GET's
/// (an endpoint listing GET answers HEAD too).
pub fn route_rules_for<'a>(
    route_rules: &'a [(&'static str, Vec<Rule>)],
    method: &str,
) -> Option<&'a [Rule]> {
    let find = |m: &str| {
        route_rules
            .iter()
            .find(|(x, _)| *x == m)
            .map(|(_, r)| r.as_slice())
    };
    find(method).or_else(|| (method == "HEAD").then(|| find("GET")).flatten())
}

fn parse_methods(
    route: &str,
    field: &str,
    value: Option<&Value>,
) -> Result<Vec<&'static str>, ConfigError> {
    let names: Vec<&str> = match value {
        Some(Value::String(m)) => vec![m.as_str()],
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| {
                v.as_str()
                    .ok_or_else(|| route_err(route, field, "expected method names"))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(route_err(
                route,
                field,
                "required: a method or a list, e.g. \"GET\"",
            ))
        }
    };
    let mut out: Vec<&'static str> = Vec::new();
    for name in names {
        let Some(m) = METHODS.iter().find(|m| **m == name) else {
            return Err(route_err(
                route,
                field,
                format!("{name:?}: one of {}", METHODS.join(", ")),
            ));
        };
        for m in [*m].into_iter().chain((*m == "GET").then_some("HEAD")) {
            if !out.contains(&m) {
                out.push(m);
            }
        }
    }
    Ok(out)
}

fn parse_pattern(route: &str, field: &str, path: &str) -> Result<Vec<Segment>, ConfigError> {
    if path.starts_with('/') || path.contains(['?', '#']) {
        return Err(route_err(
            route,
            field,
            "a path under the route's base, without a leading / or a query",
        ));
    }
    if path.is_empty() {
        return Ok(Vec::new());
    }
    let mut segments = Vec::new();
    for part in path.split('/') {
        if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !valid {
                return Err(route_err(
                    route,
                    field,
                    format!("{part}: a named segment is {{a-z 0-9 _}}"),
                ));
            }
            if segments
                .iter()
                .any(|s| matches!(s, Segment::Param { name: n, .. } if n == name))
            {
                return Err(route_err(route, field, format!("{part} appears twice")));
            }
            segments.push(Segment::Param {
                name: name.to_string(),
                values: None,
            });
        } else if plain_token(part) && check_remainder(part).is_ok() {
            segments.push(Segment::Literal(part.to_string()));
        } else {
            return Err(route_err(
                route,
                field,
                format!("{part:?}: a segment is plain (A-Z a-z 0-9 - . _ ~) or {{name}}"),
            ));
        }
    }
    Ok(segments)
}

fn token_list(route: &str, field: &str, value: &Value) -> Result<Vec<String>, ConfigError> {
    let bad = || {
        route_err(
            route,
            field,
            "expected a non-empty list of plain values (A-Z a-z 0-9 - . _ ~)",
        )
    };
    let Value::Array(items) = value else {
        return Err(bad());
    };
    if items.is_empty() {
        return Err(bad());
    }
    items
        .iter()
        .map(|v| match v.as_str() {
            Some(s) if plain_token(s) => Ok(s.to_string()),
            _ => Err(bad()),
        })
        .collect()
}

fn parse_member_path(
    ctx: &RouteContext<'_>,
    field: &str,
    path: &str,
) -> Result<Vec<String>, ConfigError> {
    let parts: Vec<String> = path.split('.').map(str::to_string).collect();
    let plain = |p: &String| {
        !p.is_empty() && !p.contains(['[', ']', '{', '}']) && !p.chars().any(char::is_control)
    };
    if parts.len() > 8 || !parts.iter().all(plain) {
        return Err(route_err(
            ctx.route,
            field,
            format!("{path:?}: expected a dotted path such as data.title"),
        ));
    }
    if let Some(p) = parts
        .iter()
        .find(|p| ctx.credentials.contains(&normalize_param_name(p)))
    {
        return Err(route_err(
            ctx.route,
            field,
            format!("{path:?}: {p} is a credential or method override name"),
        ));
    }
    Ok(parts)
}

fn parse_id_source(
    route: &str,
    field: &str,
    id: &str,
    params: &[&str],
    action: &str,
) -> Result<IdSource, ConfigError> {
    if let Some(name) = id.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
        if !params.contains(&name) {
            return Err(route_err(
                route,
                field,
                format!("{id}: no such segment in the path"),
            ));
        }
        return Ok(IdSource::Segment(name.to_string()));
    }
    if action == "delete" {
        return Err(route_err(
            route,
            field,
            "a delete has no body: name a path segment, \"{id}\"",
        ));
    }
    let parts: Vec<String> = id.split('.').map(str::to_string).collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || p.contains(['[', ']', '{', '}']))
    {
        return Err(route_err(
            route,
            field,
            "expected \"{segment}\" or a dotted body path such as data._id",
        ));
    }
    Ok(IdSource::Field(parts))
}

fn parse_lookup(
    ctx: &RouteContext<'_>,
    field: &str,
    value: &Value,
    params: &[&str],
) -> Result<OwnerLookup, ConfigError> {
    let route = ctx.route;
    let Value::Object(spec) = value else {
        return Err(route_err(
            route,
            field,
            "expected { path = \"…/{id}\", owner = \"author\" }",
        ));
    };
    if let Some(k) = spec
        .keys()
        .find(|k| !["path", "owner", "secret", "inject"].contains(&k.as_str()))
    {
        return Err(route_err(
            route,
            &format!("{field}.{k}"),
            "unknown field (known: path, owner, secret, inject)",
        ));
    }
    let Some(Value::String(template)) = spec.get("path") else {
        return Err(route_err(
            route,
            &format!("{field}.path"),
            "required, e.g. items/{collection}/{id}",
        ));
    };
    check_lookup_template(route, &format!("{field}.path"), template, params)?;
    let owner = match spec.get("owner") {
        Some(Value::String(s)) if !s.is_empty() && s.split('.').all(|p| !p.is_empty()) => {
            s.split('.').map(str::to_string).collect()
        }
        _ => return Err(route_err(
            route,
            &format!("{field}.owner"),
            "required: the dotted path of the owner in the stored item's answer, e.g. data.author",
        )),
    };
    let injection = lookup_injection(ctx, field, spec)?;
    Ok(OwnerLookup {
        template: template.clone(),
        owner,
        injection,
    })
}

/// The lookup path template with every hole (`{id}` or a named segment of the endpoint) filled
/// by a plain value, for checking; any other hole is refused.
fn fill_holes(
    route: &str,
    at: &str,
    path_part: &str,
    params: &[&str],
) -> Result<String, ConfigError> {
    let mut probe = path_part.to_string();
    let mut rest = path_part;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| route_err(route, at, "an unclosed {"))?;
        let name = &rest[start + 1..end];
        if name != "id" && !params.contains(&name) {
            return Err(route_err(
                route,
                at,
                format!("{{{name}}}: not {{id}} nor a segment of the endpoint's path"),
            ));
        }
        probe = probe.replace(&format!("{{{name}}}"), "x");
        rest = &rest[end + 1..];
    }
    Ok(probe)
}

/// Checks a lookup path template: a plain path under the route's base, holding `{id}` and every
/// named segment of the endpoint (so it reads the very item written), and a plain query.
fn check_lookup_template(
    route: &str,
    at: &str,
    template: &str,
    params: &[&str],
) -> Result<(), ConfigError> {
    let (path_part, query_part) = template.split_once('?').unwrap_or((template, ""));
    let probe = fill_holes(route, at, path_part, params)?;
    let plain_path = probe
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b));
    let missing = params
        .iter()
        .find(|name| !template.contains(&format!("{{{name}}}")));
    if let Some(name) = missing {
        return Err(route_err(
            route,
            at,
            format!("uses no {{{name}}}: the lookup must read the very item the request writes"),
        ));
    }
    if !template.contains("{id}")
        || !plain_path
        || probe.starts_with('/')
        || check_remainder(&probe).is_err()
        || probe.contains(['{', '}'])
    {
        return Err(route_err(
            route,
            at,
            "a plain path under the route's base holding {id}, e.g. items/{collection}/{id}",
        ));
    }
    if !query_part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~=&,*".contains(&b))
    {
        return Err(route_err(
            route,
            at,
            "the query part may only hold plain name=value pairs",
        ));
    }
    Ok(())
}

/// The credential a lookup is sent with: its own `secret` (and `inject`), else the route's read
/// rule's.
fn lookup_injection(
    ctx: &RouteContext<'_>,
    field: &str,
    spec: &Map<String, Value>,
) -> Result<Option<Injection>, ConfigError> {
    let route = ctx.route;
    let injection = match spec.get("secret") {
        Some(_) => {
            let mut rule = Map::new();
            rule.insert(
                "roles".into(),
                Value::Array(vec![Value::String(ANONYMOUS.into())]),
            );
            for key in ["secret", "inject"] {
                if let Some(v) = spec.get(key) {
                    rule.insert(key.into(), v.clone());
                }
            }
            parse_rules(
                route,
                field,
                &Value::Object(rule),
                ctx.default_inject,
                ctx.lookup,
            )?
            .remove(0)
            .injection
        }
        None => {
            if let Some(v) = spec.get("inject") {
                parse_placement(route, &format!("{field}.inject"), v)?;
                return Err(route_err(
                    route,
                    &format!("{field}.inject"),
                    "given without a secret",
                ));
            }
            // By default, the route's read secret.
            let read = ctx
                .route_rules
                .iter()
                .find(|(m, _)| *m == "GET")
                .and_then(|(_, rules)| rules.iter().find_map(|r| r.injection.clone()));
            match read {
                Some(injection) => Some(injection),
                None => {
                    return Err(route_err(
                        route,
                        &format!("{field}.secret"),
                        "required: the route has no read secret to read the stored item with",
                    ))
                }
            }
        }
    };
    Ok(injection)
}

fn parse_query(
    ctx: &RouteContext<'_>,
    field: &str,
    value: &Value,
) -> Result<Vec<(String, QueryKind)>, ConfigError> {
    let route = ctx.route;
    let entries: Vec<(String, QueryKind)> = match value {
        Value::Array(items) => items
            .iter()
            .map(|v| match v.as_str() {
                Some(name) => Ok((name.to_string(), QueryKind::Any)),
                None => Err(route_err(route, field, "expected parameter names")),
            })
            .collect::<Result<_, _>>()?,
        Value::Object(map) => map
            .iter()
            .map(|(name, kind)| {
                let kind = parse_query_kind(route, &format!("{field}.{name}"), kind)?;
                Ok((name.clone(), kind))
            })
            .collect::<Result<_, _>>()?,
        _ => {
            return Err(route_err(
                route,
                field,
                "expected a list of names or a table of name = kind",
            ))
        }
    };
    for (name, _) in &entries {
        let plain = !name.is_empty()
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_-".contains(&b));
        if !plain {
            return Err(route_err(
                route,
                field,
                format!("{name:?}: parameter names are lower-case a-z 0-9 _ -"),
            ));
        }
        if ctx.credentials.contains(name) {
            return Err(route_err(
                route,
                field,
                format!("{name}: a credential or method override is never forwarded"),
            ));
        }
    }
    Ok(entries)
}

/// One query parameter's kind: `"any"`, `"uint"`, `"json"`, `{ operators = [...] }` or a list
/// of allowed values.
fn parse_query_kind(route: &str, at: &str, kind: &Value) -> Result<QueryKind, ConfigError> {
    let strings = |items: &[Value], why: &str| -> Result<Vec<String>, ConfigError> {
        items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| route_err(route, at, why))
            })
            .collect()
    };
    match kind {
        Value::String(k) if k == "any" => Ok(QueryKind::Any),
        Value::String(k) if k == "uint" => Ok(QueryKind::Uint),
        Value::String(k) if k == "json" => Ok(QueryKind::Json(Vec::new())),
        Value::Array(values) => Ok(QueryKind::OneOf(strings(
            values,
            "expected a list of values",
        )?)),
        Value::Object(spec) if spec.keys().all(|k| k == "operators") => {
            let why =
                "expected { operators = [\"$eq\", …] }, operators being names such as \"$eq\"";
            let Some(Value::Array(ops)) = spec.get("operators") else {
                return Err(route_err(route, at, why));
            };
            let ops = strings(ops, why)?;
            if ops.iter().any(|o| !o.starts_with('$') || o.len() < 2) {
                return Err(route_err(route, at, why));
            }
            Ok(QueryKind::Json(ops))
        }
        _ => Err(route_err(
            route,
            at,
            "expected \"any\", \"uint\", \"json\", { operators = [...] } or a list of values",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token::AccessClaims;
    use serde_json::json;

    fn endpoint(spec: Value) -> Endpoint {
        let lookup = |name: &str| (name == "KEY").then(|| "key-value".to_string());
        let route_rules = vec![(
            "GET",
            vec![Rule {
                roles: vec![ANONYMOUS.into()],
                injection: None,
            }],
        )];
        let credentials: Vec<String> = ["api_key", "token", "access_token", "_method"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let ctx = RouteContext {
            route: "r",
            default_inject: Some(&Placement::Header {
                name: "api-key".into(),
                template: "{secret}".into(),
            }),
            lookup: &lookup,
            route_rules: &route_rules,
            credentials: &credentials,
        };
        parse_endpoint(&ctx, 0, &spec).expect("valid endpoint")
    }

    fn caller(id: &str) -> Caller {
        Caller::from_access_token(
            AccessClaims {
                iss: "gatehouse".into(),
                aud: "gatehouse".into(),
                sub: id.into(),
                jti: "j".into(),
                roles: vec!["user".into()],
                sid: None,
                act: None,
                scope: None,
                routes: None,
            },
            &["user".into()],
            i64::MAX,
        )
    }

    #[test]
    fn patterns_match_whole_plain_segments_with_allowed_values() {
        let e = endpoint(
            json!({ "method": "GET", "path": "items/{collection}/{id}", "values": { "collection": ["articles"] } }),
        );
        assert_eq!(
            e.match_path("items/articles/42"),
            Some(vec![
                ("collection".into(), "articles".into()),
                ("id".into(), "42".into())
            ])
        );
        for miss in [
            "items/articles",
            "items/articles/42/x",
            "items/articles/42/",
            "items/users/42",
            "Items/articles/42",
            "items/articles/a%20b",
            "items/articles/..",
            "items/articles/",
            "",
        ] {
            assert_eq!(e.match_path(miss), None, "{miss:?}");
        }
        assert!(e.allows("HEAD"), "GET admits HEAD");
        assert!(!e.allows("get") && !e.allows("SEARCH"));
        let root = endpoint(json!({ "method": "GET", "path": "" }));
        assert_eq!(root.match_path(""), Some(vec![]));
        assert_eq!(root.match_path("x"), None);
    }

    #[test]
    fn selection_gives_404_405_and_prefers_updates_named_in_the_body() {
        let create = endpoint(
            json!({ "method": "POST", "path": "item/{m}", "action": "create", "fields": ["data.title"], "roles": ["user"] }),
        );
        let update = endpoint(
            json!({ "method": "POST", "path": "item/{m}", "action": "update", "id": "data._id", "fields": ["data.title"], "roles": ["user"] }),
        );
        let read = endpoint(json!({ "method": "GET", "path": "item/{m}/{id}" }));
        let all = [create.clone(), update.clone(), read];
        let pick = |body: Value| match select(&all, "POST", "item/posts", Some(&body))
            .unwrap()
            .remove(0)
        {
            Target::Endpoint(e, _) => e.action.clone(),
            Target::Base => unreachable!(),
        };
        assert_eq!(pick(json!({ "data": { "title": "t" } })), Action::Create);
        assert_eq!(pick(json!({ "data": { "_id": "x" } })), update.action);
        assert_eq!(
            select(
                &all,
                "POST",
                "item/posts",
                Some(&json!({ "data": { "_id": "x" } }))
            )
            .unwrap()
            .len(),
            1
        );
        assert_eq!(
            select(&all, "POST", "nothing", None).unwrap_err(),
            Error::NotFound
        );
        assert_eq!(
            select(&all, "DELETE", "item/posts/1", None).unwrap_err(),
            Error::MethodNotAllowed("GET, HEAD".into())
        );
    }

    #[test]
    fn body_policy_walks_nested_members_and_sets_forced_ones() {
        let e = endpoint(json!({
            "method": "POST", "path": "item", "action": "create",
            "fields": ["data.title", "data.meta.tags"],
            "force": { "data._state": 0, "data.by": "{user}" },
            "deny": ["data._state"],
            "owner": "data.author",
            "roles": ["user"]
        }));
        let apply =
            |body: Value| e.apply_body(body, Some(&caller("usr_a")), &["api_key".to_string()]);
        assert_eq!(
            apply(json!({ "data": { "title": "t", "meta": { "tags": [1, { "x": 2 }] }, "author": "usr_b" } })).unwrap(),
            json!({ "data": { "title": "t", "meta": { "tags": [1, { "x": 2 }] }, "author": "usr_a", "_state": 0, "by": "usr_a" } })
        );
        assert_eq!(
            e.apply_body(json!({ "data": { "title": "t" } }), None, &[])
                .unwrap()["data"]["author"],
            Value::Null
        );
        for (body, named) in [
            (
                json!({ "data": { "meta": { "other": 1 } } }),
                "data.meta.other",
            ),
            (
                json!({ "data": { "meta": "flat" } }),
                "data.meta: must be an object",
            ),
            (
                json!({ "data": { "_state": 1 } }),
                "data._state: may not be sent",
            ),
            (
                json!({ "data": { "meta": { "tags": { "API_KEY": 1 } } } }),
                "API_KEY",
            ),
            (json!({ "data": { "title": "t" }, "extra": 1 }), "extra"),
            (json!({ "data.title": "t" }), "data.title"),
            (json!({ "data": { "ti[tle": "t" } }), "ti[tle"),
            (json!("data"), "JSON object"),
        ] {
            match apply(body.clone()) {
                Err(Error::BodyNotAllowed(msg)) => assert!(msg.contains(named), "{body}: {msg}"),
                other => panic!("{body}: {other:?}"),
            }
        }
    }

    #[test]
    fn query_kinds_hold_their_values() {
        let e = endpoint(json!({ "method": "GET", "path": "x", "query": {
            "limit": "uint", "order": ["asc", "desc"], "filter": { "operators": ["$in"] }, "q": "any" } }));
        for ok in [
            "",
            "limit=10",
            "order=desc&q=anything%20at%20all",
            "filter=%7B%22a%22%3A%7B%22%24in%22%3A%5B1%5D%7D%7D",
            "q[x][y]=1",
            "q=a%3Bb",
            "LIMIT=1",
            "&&limit=1&",
        ] {
            assert_eq!(e.check_query(ok), Ok(()), "{ok}");
        }
        for bad in [
            "limit=-1",
            "limit=12345678901",
            "limit=",
            "order=up",
            "filter=%7B%22%24nin%22%3A%5B%5D%7D",
            "filter=%7B%22a%22%3A1%2C%22a%22%3A1%7D",
            "filter[a]=1",
            "limit.x=1",
            "other=1",
            "q%00=1",
            "q=1;token=x",
            "limit=1;2",
        ] {
            assert!(
                matches!(e.check_query(bad), Err(Error::QueryNotAllowed(_))),
                "{bad}"
            );
        }
    }
}
