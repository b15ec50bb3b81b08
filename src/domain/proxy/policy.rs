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
    pub fn check_query(&self, query: &str) -> Result<(), Error> {
        for pair in query.split('&').filter(|p| !p.is_empty()) {
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
            let value = crate::primitives::encoding::decode_query_component(raw_value);
            for kind in kinds {
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
            if lookup_path(&body, path).is_none_or(Value::is_null) {
                return Err(Error::BodyNotAllowed(format!(
                    "{}: required (the id of the item to update)",
                    path.join(".")
                )));
            }
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
            IdSource::Field(path) => {
                let shown = path.join(".");
                let id = match body.and_then(|b| lookup_path(b, path)) {
                    Some(Value::String(s)) => s.clone(),
                    Some(Value::Number(n)) if n.is_u64() => n.to_string(),
                    _ => {
                        return Err(Error::BodyNotAllowed(format!(
                            "{shown}: required, a string or whole number"
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
        }
    }
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
/// none a credential, no name with a path character.
fn check_members(
    map: &Map<String, Value>,
    prefix: &mut Vec<String>,
    known: &[&Vec<String>],
    deny: &[Vec<String>],
    credentials: &[String],
) -> Result<(), Error> {
    for (name, value) in map {
        let shown = || {
            let mut p = prefix.join(".");
            if !p.is_empty() {
                p.push('.');
            }
            p.push_str(name);
            p
        };
        if name.is_empty() || name.contains(['.', '[', ']']) || name.chars().any(char::is_control) {
            return Err(Error::BodyNotAllowed(format!(
                "{:?}: member names may not be empty or hold . [ ] or control characters",
                shown()
            )));
        }
        if credentials.contains(&normalize_param_name(name)) {
            return Err(Error::BodyNotAllowed(format!(
                "{}: credentials and method overrides are not accepted in the body",
                shown()
            )));
        }
        prefix.push(name.clone());
        if deny.iter().any(|d| d == prefix) {
            let field = prefix.join(".");
            prefix.pop();
            return Err(Error::BodyNotAllowed(format!(
                "{field}: may not be sent here"
            )));
        }
        if known.iter().any(|k| *k == prefix) {
            // An allowed member: any value, but never a credential inside it.
            let cred = |k: &str| credentials.contains(&normalize_param_name(k));
            if let Some(inner) = json::find_member(value, &cred) {
                let field = format!("{}.{inner}", prefix.join("."));
                prefix.pop();
                return Err(Error::BodyNotAllowed(format!(
                    "{field}: credentials and method overrides are not accepted in the body"
                )));
            }
        } else if known
            .iter()
            .any(|k| k.len() > prefix.len() && k.starts_with(prefix))
        {
            let Value::Object(inner) = value else {
                let field = prefix.join(".");
                prefix.pop();
                return Err(Error::BodyNotAllowed(format!("{field}: must be an object")));
            };
            check_members(inner, prefix, known, deny, credentials)?;
        } else {
            let field = prefix.join(".");
            prefix.pop();
            return Err(Error::BodyNotAllowed(format!(
                "{field}: not a field this endpoint accepts"
            )));
        }
        prefix.pop();
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
    let route = ctx.route;
    let at = |field: &str| format!("endpoints[{index}].{field}");
    let Value::Object(spec) = spec else {
        return Err(route_err(
            route,
            &format!("endpoints[{index}]"),
            "expected a table",
        ));
    };
    if let Some(key) = spec.keys().find(|k| !ENDPOINT_KEYS.contains(&k.as_str())) {
        return Err(route_err(
            route,
            &at(key),
            format!("unknown field (known: {})", ENDPOINT_KEYS.join(", ")),
        ));
    }
    let methods = parse_methods(route, &at("method"), spec.get("method"))?;
    let write = methods.iter().any(|m| !matches!(*m, "GET" | "HEAD"));
    if write && methods.iter().any(|m| matches!(*m, "GET" | "HEAD")) {
        return Err(route_err(
            route,
            &at("method"),
            "list reads (GET, HEAD) and writes in separate endpoints",
        ));
    }
    let Some(Value::String(path)) = spec.get("path") else {
        return Err(route_err(
            route,
            &at("path"),
            "required, a pattern such as content/items/{model}",
        ));
    };
    let mut segments = parse_pattern(route, &at("path"), path)?;
    let label = format!("{} {path}", methods.join(","));
    let at = |field: &str| format!("endpoints[{index}] ({label}).{field}");
    if let Some(values) = spec.get("values") {
        let Value::Object(values) = values else {
            return Err(route_err(
                route,
                &at("values"),
                "expected a table of segment = [values]",
            ));
        };
        for (name, allowed) in values {
            let list = token_list(route, &at(&format!("values.{name}")), allowed)?;
            let slot = segments.iter_mut().find_map(|s| match s {
                Segment::Param { name: n, values } if n == name => Some(values),
                _ => None,
            });
            match slot {
                Some(slot) => *slot = Some(list),
                None => {
                    return Err(route_err(
                        route,
                        &at(&format!("values.{name}")),
                        "no such {segment} in the path",
                    ))
                }
            }
        }
    }
    let param_names: Vec<&str> = segments
        .iter()
        .filter_map(|s| match s {
            Segment::Param { name, .. } => Some(name.as_str()),
            Segment::Literal(_) => None,
        })
        .collect();

    // Who may call.
    let rules = match (spec.get("rules"), spec.contains_key("roles")) {
        (Some(_), true) => {
            return Err(route_err(
                route,
                &at("rules"),
                "give either rules = [...] or roles/secret/inject, not both",
            ))
        }
        (Some(list), false) => Some(parse_rules(
            route,
            &at("rules"),
            list,
            ctx.default_inject,
            ctx.lookup,
        )?),
        (None, true) => {
            let mut rule = Map::new();
            for key in ["roles", "secret", "inject"] {
                if let Some(v) = spec.get(key) {
                    rule.insert(key.to_string(), v.clone());
                }
            }
            Some(parse_rules(
                route,
                &at("roles"),
                &Value::Object(rule),
                ctx.default_inject,
                ctx.lookup,
            )?)
        }
        (None, false) => {
            if spec.contains_key("secret") || spec.contains_key("inject") {
                return Err(route_err(
                    route,
                    &at("roles"),
                    "secret/inject need roles on the same endpoint",
                ));
            }
            None
        }
    };
    for method in &methods {
        let route_rules = ctx.route_rules.iter().find(|(m, _)| m == method);
        if rules.is_none() && route_rules.is_none() {
            return Err(route_err(
                route,
                &at("roles"),
                format!("no rule for {method}: give the endpoint roles, or the route a rule for {method}"),
            ));
        }
    }
    let effective: Vec<&Rule> = match &rules {
        Some(own) => own.iter().collect(),
        None => ctx
            .route_rules
            .iter()
            .filter(|(m, _)| methods.contains(m))
            .flat_map(|(_, r)| r)
            .collect(),
    };

    // What it does.
    let action_name = match spec.get("action") {
        None if !write => "read",
        None => {
            return Err(route_err(
                route,
                &at("action"),
                "required for writes: create, update, delete or forward",
            ))
        }
        Some(Value::String(a)) => a.as_str(),
        Some(_) => return Err(route_err(route, &at("action"), "expected a string")),
    };
    let graphql = segments.iter().any(|s| {
        matches!(s, Segment::Literal(t) if t.eq_ignore_ascii_case("graphql") || t.eq_ignore_ascii_case("gql"))
    });
    let has = |k: &str| spec.contains_key(k);
    let body_keys = ["fields", "force", "deny", "owner"];
    let action = match action_name {
        "read" if !write => Action::Read,
        "create" | "update" | "delete" | "forward" if write => match action_name {
            "create" => Action::Create,
            "forward" => Action::Forward,
            _ => {
                let id = match spec.get("id") {
                    None => None,
                    Some(Value::String(id)) => Some(parse_id_source(
                        route,
                        &at("id"),
                        id,
                        &param_names,
                        action_name,
                    )?),
                    Some(_) => {
                        return Err(route_err(
                            route,
                            &at("id"),
                            "expected \"{segment}\" or a dotted body path",
                        ))
                    }
                };
                let lookup = spec
                    .get("lookup")
                    .map(|v| parse_lookup(ctx, &at("lookup"), v, &param_names))
                    .transpose()?;
                if lookup.is_some() && id.is_none() {
                    return Err(route_err(
                        route,
                        &at("id"),
                        "an owner lookup needs the item id: \"{segment}\" or a body path",
                    ));
                }
                let item = ItemRef { id, lookup };
                if action_name == "update" {
                    Action::Update(item)
                } else {
                    Action::Delete(item)
                }
            }
        },
        "read" => {
            return Err(route_err(
                route,
                &at("action"),
                "read is for GET/HEAD endpoints",
            ))
        }
        "create" | "update" | "delete" | "forward" => {
            return Err(route_err(
                route,
                &at("action"),
                format!("{action_name} is for write methods"),
            ))
        }
        other => {
            return Err(route_err(
                route,
                &at("action"),
                format!("unknown action {other:?} (read, create, update, delete, forward)"),
            ))
        }
    };
    if graphql && action != Action::Forward && action != Action::Read {
        return Err(route_err(
            route,
            &at("action"),
            "a GraphQL endpoint's body cannot be checked: use action = \"forward\", without owner or body policy, and give it only to trusted roles",
        ));
    }
    match &action {
        Action::Read | Action::Forward | Action::Delete(_) => {
            if let Some(k) = body_keys.iter().find(|k| has(k)) {
                let why = if action == Action::Forward {
                    "this endpoint's body is forwarded unseen, so no owner or body policy can hold on it (route refused)"
                } else {
                    "only create and update endpoints have a body policy"
                };
                return Err(route_err(route, &at(k), why));
            }
        }
        Action::Create | Action::Update(_) => {}
    }
    if !matches!(action, Action::Update(_) | Action::Delete(_)) {
        for k in ["id", "lookup"] {
            if has(k) {
                return Err(route_err(
                    route,
                    &at(k),
                    "only update and delete endpoints name an item",
                ));
            }
        }
    }

    // Query.
    let query = match spec.get("query") {
        None => Vec::new(),
        Some(v) => parse_query(ctx, &at("query"), v)?,
    };

    // Body.
    let mut body = BodyPolicy::default();
    if matches!(action, Action::Create | Action::Update(_)) {
        body.fields = match spec.get("fields") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| match v {
                    Value::String(s) => parse_member_path(ctx, &at("fields"), s),
                    _ => Err(route_err(
                        route,
                        &at("fields"),
                        "expected dotted paths such as data.title",
                    )),
                })
                .collect::<Result<_, _>>()?,
            _ => {
                return Err(route_err(
                    route,
                    &at("fields"),
                    "required: the body members the client may send, e.g. [\"data.title\"]",
                ))
            }
        };
        if let Some(v) = spec.get("force") {
            let Value::Object(force) = v else {
                return Err(route_err(
                    route,
                    &at("force"),
                    "expected a table of path = value",
                ));
            };
            for (path, value) in force {
                let parsed = parse_member_path(ctx, &at("force"), path)?;
                let forced = match value {
                    Value::String(s) if s == "{user}" => Forced::User,
                    v => Forced::Value(v.clone()),
                };
                body.force.push((parsed, forced));
            }
        }
        if let Some(v) = spec.get("deny") {
            let Value::Array(items) = v else {
                return Err(route_err(
                    route,
                    &at("deny"),
                    "expected a list of dotted paths",
                ));
            };
            for item in items {
                let Value::String(s) = item else {
                    return Err(route_err(
                        route,
                        &at("deny"),
                        "expected a list of dotted paths",
                    ));
                };
                body.deny.push(parse_member_path(ctx, &at("deny"), s)?);
            }
        }
        body.owner = match spec.get("owner") {
            None => None,
            Some(Value::String(s)) => Some(parse_member_path(ctx, &at("owner"), s)?),
            Some(_) => {
                return Err(route_err(
                    route,
                    &at("owner"),
                    "expected a dotted path such as data.author",
                ))
            }
        };
        let id_field = match &action {
            Action::Update(ItemRef {
                id: Some(IdSource::Field(p)),
                ..
            }) => Some(p),
            _ => None,
        };
        // A denied member may also be forced (the client may not send it; Gatehouse sets it),
        // but not allowed, nor be the item's id.
        for denied in &body.deny {
            if body.fields.contains(denied) || id_field == Some(denied) {
                return Err(route_err(
                    route,
                    &at("deny"),
                    format!("{} is also allowed", denied.join(".")),
                ));
            }
        }
        if action == Action::Create {
            let names_id = |p: &Vec<String>| p.last().is_some_and(|l| l == "id" || l == "_id");
            if let Some(p) = body.fields.iter().find(|p| names_id(p)) {
                return Err(route_err(
                    route,
                    &at("fields"),
                    format!(
                        "{}: a create endpoint never takes an item id (use an update endpoint)",
                        p.join(".")
                    ),
                ));
            }
            if param_names.iter().any(|n| *n == "id" || *n == "_id") {
                return Err(route_err(
                    route,
                    &at("path"),
                    "a create endpoint never takes an item id in its path",
                ));
            }
        }
    }
    if let Action::Update(item) = &action {
        match (&item.lookup, &body.owner) {
            (None, Some(_)) => {
                return Err(route_err(
                    route,
                    &at("lookup"),
                    "an update that sets the owner must check the stored owner first (lookup), or it hands other users' items to the caller",
                ))
            }
            (Some(_), None) => {
                return Err(route_err(
                    route,
                    &at("owner"),
                    "an owner-checked update must also set the owner (owner = \"…\"), so ownership never changes through Gatehouse",
                ))
            }
            _ => {}
        }
    }
    let owner_checked =
        matches!(&action, Action::Update(i) | Action::Delete(i) if i.lookup.is_some());
    if owner_checked
        && effective
            .iter()
            .any(|r| r.roles.iter().any(|x| x == ANONYMOUS))
    {
        return Err(route_err(
            route,
            &at("roles"),
            "an owner-checked endpoint cannot admit anonymous callers (they own nothing)",
        ));
    }
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
    // Check the template with every hole filled by a plain value.
    let (path_part, query_part) = template.split_once('?').unwrap_or((template, ""));
    let mut probe = path_part.to_string();
    let mut rest = path_part;
    while let Some(start) = rest.find('{') {
        let end = rest[start..]
            .find('}')
            .map(|e| start + e)
            .ok_or_else(|| route_err(route, &format!("{field}.path"), "an unclosed {"))?;
        let name = &rest[start + 1..end];
        if name != "id" && !params.contains(&name) {
            return Err(route_err(
                route,
                &format!("{field}.path"),
                format!("{{{name}}}: not {{id}} nor a segment of the endpoint's path"),
            ));
        }
        probe = probe.replace(&format!("{{{name}}}"), "x");
        rest = &rest[end + 1..];
    }
    if !template.contains("{id}")
        || probe.starts_with('/')
        || check_remainder(&probe).is_err()
        || probe.contains(['{', '}'])
    {
        return Err(route_err(
            route,
            &format!("{field}.path"),
            "a plain path under the route's base holding {id}, e.g. items/{collection}/{id}",
        ));
    }
    if !query_part
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~=&,*".contains(&b))
    {
        return Err(route_err(
            route,
            &format!("{field}.path"),
            "the query part may only hold plain name=value pairs",
        ));
    }
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
    Ok(OwnerLookup {
        template: template.clone(),
        owner,
        injection,
    })
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
                let at = format!("{field}.{name}");
                let kind = match kind {
                    Value::String(k) if k == "any" => QueryKind::Any,
                    Value::String(k) if k == "uint" => QueryKind::Uint,
                    Value::String(k) if k == "json" => QueryKind::Json(Vec::new()),
                    Value::Array(_) => QueryKind::OneOf(
                        kind.as_array()
                            .into_iter()
                            .flatten()
                            .map(|v| v.as_str().map(str::to_string).ok_or_else(|| route_err(route, &at, "expected a list of values")))
                            .collect::<Result<_, _>>()?,
                    ),
                    Value::Object(spec) if spec.keys().all(|k| k == "operators") => {
                        let ops = match spec.get("operators") {
                            Some(Value::Array(ops)) => ops
                                .iter()
                                .map(|o| match o.as_str() {
                                    Some(o) if o.starts_with('$') && o.len() > 1 => Ok(o.to_string()),
                                    _ => Err(route_err(route, &at, "operators are names such as \"$eq\"")),
                                })
                                .collect::<Result<_, _>>()?,
                            _ => return Err(route_err(route, &at, "expected { operators = [\"$eq\", …] }")),
                        };
                        QueryKind::Json(ops)
                    }
                    _ => {
                        return Err(route_err(
                            route,
                            &at,
                            "expected \"any\", \"uint\", \"json\", { operators = [...] } or a list of values",
                        ))
                    }
                };
                Ok((name.clone(), kind))
            })
            .collect::<Result<_, _>>()?,
        _ => return Err(route_err(route, field, "expected a list of names or a table of name = kind")),
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
