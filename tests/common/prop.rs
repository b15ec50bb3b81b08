//! What the property suites (`tests/prop_*.rs`) share: the case count and small strategies.

use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};

/// Every property runs this many cases in a plain `cargo test`.
pub const CASES: u32 = 10_000;

/// The configuration of every property: [`CASES`] cases, and failures persisted beside the
/// suite (`tests/prop_*.proptest-regressions`, committed, replayed first on every run).
pub fn config() -> Config {
    Config {
        cases: CASES,
        // Properties about accepted inputs skip the refused ones: rejects are cheap.
        max_global_rejects: CASES * 20,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..Config::default()
    }
}

/// One of `parts`, or one arbitrary character: the alphabet of "almost valid" inputs, built by
/// concatenating `count` pieces.
pub fn pieces(
    parts: &'static [&'static str],
    count: std::ops::Range<usize>,
) -> BoxedStrategy<String> {
    let piece = prop_oneof![
        4 => proptest::sample::select(parts).prop_map(str::to_string),
        1 => any::<char>().prop_map(|c| c.to_string()),
    ];
    proptest::collection::vec(piece, count)
        .prop_map(|p| p.concat())
        .boxed()
}
