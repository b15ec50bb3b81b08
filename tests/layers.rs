//! The layering of `src/`: every module imports only from its own layer or the layers below it,
//! and no two modules import each other (directly or round a loop).
//!
//! Layers, bottom to top (docs/architecture.md describes them):
//!
//! 1. `primitives`: errors, encoding, secrets, platform traits, HTTP types, bodies, cookies, CORS;
//! 2. `domain`: pure rules: configuration, tokens, passwords, refresh families, CSRF, API keys,
//!    the proxy's policy, the storage contract;
//! 3. `services`: what a request is handled with, authentication, audit events, rate limits,
//!    prune;
//! 4. `routes`: the router and the handlers;
//! 5. `worker`: the Workers adapter (wasm32 only).
//!
//! The test reads the `crate::` paths of every `src/**/*.rs` file outside comments: `use`
//! declarations (grouped ones too) and paths written inline.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The layers, bottom first. A module may import from its own layer and those before it.
const LAYERS: &[&str] = &["primitives", "domain", "services", "routes", "worker"];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The module path of a file under `src/`: `src/domain/proxy/mod.rs` → `["domain", "proxy"]`.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
        parts.pop();
    }
    parts
}

/// The source without comments (line comments, doc comments and block comments).
fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_block = false;
    for line in text.lines() {
        let mut rest = line;
        let mut kept = String::new();
        loop {
            if in_block {
                match rest.find("*/") {
                    Some(end) => {
                        rest = &rest[end + 2..];
                        in_block = false;
                    }
                    None => break,
                }
            } else {
                let line_comment = rest.find("//");
                let block = rest.find("/*");
                match (line_comment, block) {
                    (Some(l), Some(b)) if b < l => {
                        kept.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (None, Some(b)) => {
                        kept.push_str(&rest[..b]);
                        rest = &rest[b + 2..];
                        in_block = true;
                    }
                    (Some(l), _) => {
                        kept.push_str(&rest[..l]);
                        break;
                    }
                    (None, None) => {
                        kept.push_str(rest);
                        break;
                    }
                }
            }
        }
        out.push_str(&kept);
        out.push('\n');
    }
    out
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Every path the source names after `crate::`, as segments (a group `crate::{a::b, c}` gives
/// `a::b` and `c`; nested groups are cut at their brace, which keeps the module part).
fn crate_paths(code: &str) -> Vec<Vec<String>> {
    let mut paths = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let before_ok = at == 0 || !rest[..at].ends_with(|c: char| is_ident(c));
        rest = &rest[at + "crate::".len()..];
        if !before_ok {
            continue;
        }
        if let Some(group) = rest.strip_prefix('{') {
            // Top-level items of the group.
            let mut depth = 0;
            let mut item = String::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        paths.push(segments(&item));
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            paths.push(segments(&item));
        } else {
            paths.push(segments(rest));
        }
    }
    paths.retain(|p| !p.is_empty());
    paths
}

fn segments(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    loop {
        let end = rest.find(|c: char| !is_ident(c)).unwrap_or(rest.len());
        if end == 0 {
            break;
        }
        out.push(rest[..end].to_string());
        rest = &rest[end..];
        match rest.trim_start().strip_prefix("::") {
            Some(next) => rest = next.trim_start(),
            None => break,
        }
    }
    out
}

/// The module a path names: its longest prefix that is a file of `src/`.
fn resolve(modules: &BTreeSet<Vec<String>>, path: &[String]) -> Vec<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].to_vec())
        .find(|prefix| modules.contains(prefix))
        .unwrap_or_else(|| path[..1].to_vec())
}

fn layer(module: &[String]) -> Option<usize> {
    let top = module.first()?;
    LAYERS.iter().position(|l| l == top)
}

/// The node of the cycle check: a module and everything inside it, two levels deep
/// (`domain::proxy::routes` counts as `domain::proxy`).
fn node(module: &[String]) -> String {
    module[..module.len().min(2)].join("::")
}

struct Graph {
    /// Each module's imports.
    edges: BTreeMap<Vec<String>, BTreeSet<Vec<String>>>,
}

fn graph() -> Graph {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let src = root.join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.retain(|f| !f.starts_with(src.join("bin")));
    let modules: BTreeSet<Vec<String>> = files.iter().map(|f| module_of(&src, f)).collect();
    let mut edges = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        let code = strip_comments(&fs::read_to_string(file).unwrap());
        let targets: BTreeSet<Vec<String>> = crate_paths(&code)
            .iter()
            .map(|p| resolve(&modules, p))
            .collect();
        edges.insert(module, targets);
    }
    Graph { edges }
}

#[test]
fn every_module_is_in_a_layer() {
    let graph = graph();
    for module in graph.edges.keys() {
        assert!(
            module.is_empty() || layer(module).is_some(),
            "src/{} is in no layer; put it under one of {LAYERS:?}",
            module.join("/")
        );
    }
}

#[test]
fn no_module_imports_from_a_layer_above_its_own() {
    let graph = graph();
    let mut violations = Vec::new();
    for (module, targets) in &graph.edges {
        let Some(own) = layer(module) else { continue };
        for target in targets {
            if layer(target).is_some_and(|theirs| theirs > own) {
                violations.push(format!(
                    "{} ({}) imports {} ({})",
                    module.join("::"),
                    LAYERS[own],
                    target.join("::"),
                    LAYERS[layer(target).unwrap()]
                ));
            }
        }
    }
    assert!(violations.is_empty(), "{}", violations.join("\n"));
}

#[test]
fn the_module_graph_has_no_cycle() {
    let graph = graph();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, targets) in &graph.edges {
        if module.is_empty() {
            continue; // lib.rs declares the layers
        }
        let from = node(module);
        let entry = edges.entry(from.clone()).or_default();
        for target in targets {
            let to = node(target);
            if to != from {
                entry.insert(to);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        n: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        stack: &mut Vec<String>,
    ) -> Option<Vec<String>> {
        match state.get(n) {
            Some(2) => return None,
            Some(1) => {
                let start = stack.iter().position(|s| s == n).unwrap();
                let mut cycle = stack[start..].to_vec();
                cycle.push(n.to_string());
                return Some(cycle);
            }
            _ => {}
        }
        state.insert(n.to_string(), 1);
        stack.push(n.to_string());
        for next in edges.get(n).into_iter().flatten() {
            if let Some(cycle) = visit(next, edges, state, stack) {
                return Some(cycle);
            }
        }
        stack.pop();
        state.insert(n.to_string(), 2);
        None
    }
    let mut state = BTreeMap::new();
    for n in edges.keys() {
        let mut stack = Vec::new();
        if let Some(cycle) = visit(n, &edges, &mut state, &mut stack) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_checker_reads_grouped_and_inline_paths() {
    let code = strip_comments(
        "use crate::{domain::config::Config, primitives::{error::Error, http}};\n\
         // use crate::routes::x;\n\
         let x = crate::services::auth::authenticate(svc);\n\
         /* crate::worker::y */ fn f() {}",
    );
    let paths: Vec<String> = crate_paths(&code).iter().map(|p| p.join("::")).collect();
    assert_eq!(
        paths,
        vec![
            "domain::config::Config",
            "primitives",
            "services::auth::authenticate"
        ]
    );
}
