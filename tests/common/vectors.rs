//! Golden vector files: `tests/vectors/<name>.json`, a flat JSON object `{ case: value }`.
//!
//! A test computes every case and calls [`check`]. With `GC_BLESS_VECTORS=1` the file is
//! rewritten from the computed values instead (a deliberate consensus change: review the
//! diff); otherwise every case must match, and cases missing on either side fail.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;

/// Path of the vector file `name`.
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/vectors").join(format!("{name}.json"))
}

/// Compares `computed` with the stored vectors `name` (or rewrites them when blessing).
#[track_caller]
pub fn check(name: &str, computed: &BTreeMap<String, String>) {
    let file = path(name);
    if std::env::var("GC_BLESS_VECTORS").as_deref() == Ok("1") {
        let text = serde_json::to_string_pretty(computed).expect("a string map serialises");
        std::fs::write(&file, text + "\n").expect("vector file is writable");
        eprintln!("blessed {} ({} cases)", file.display(), computed.len());
        return;
    }
    let text = std::fs::read_to_string(&file)
        .unwrap_or_else(|e| panic!("{}: {e} (run with GC_BLESS_VECTORS=1 to create it)", file.display()));
    let stored: BTreeMap<String, String> =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let mut diffs = Vec::new();
    for (case, want) in &stored {
        match computed.get(case) {
            Some(got) if got == want => {}
            Some(got) => diffs.push(format!("{case}: stored {want}, computed {got}")),
            None => diffs.push(format!("{case}: stored but not computed")),
        }
    }
    for case in computed.keys().filter(|c| !stored.contains_key(*c)) {
        diffs.push(format!("{case}: computed but not stored"));
    }
    assert!(diffs.is_empty(), "{} differs from the code (a consensus change?):\n{}", file.display(), diffs.join("\n"));
}
