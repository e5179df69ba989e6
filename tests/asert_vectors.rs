//! Consensus vectors for ASERT and compact `bits`: `tests/vectors/asert.json`, made by
//! `scripts/asert_vectors.py`, an independent Python implementation of DESIGN.md §6.
//! Every vector must match `gradientcoin::chain::target` exactly; a mismatch is a
//! consensus bug in one of the two implementations.

use std::collections::BTreeMap;

use gradientcoin::chain::target::{
    Anchor, AsertParams, TargetError, U256, bits_from_target, next_target, target_from_bits,
};
use serde::Deserialize;

#[derive(Deserialize)]
struct File {
    networks: BTreeMap<String, NetworkRow>,
    compact: Vec<CompactRow>,
    encode: Vec<EncodeRow>,
    vectors: Vec<VectorRow>,
}

#[derive(Deserialize)]
struct NetworkRow {
    spacing: u64,
    halflife: u64,
    max_bits: String,
    max_target: String,
}

#[derive(Deserialize)]
struct CompactRow {
    bits: String,
    target: Option<String>,
    canonical: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct EncodeRow {
    target: String,
    bits: String,
}

#[derive(Deserialize)]
struct AnchorRow {
    height: u64,
    bits: String,
    parent_time: u64,
}

#[derive(Deserialize)]
struct VectorRow {
    network: String,
    anchor: AnchorRow,
    parent_height: u64,
    parent_time: u64,
    target: String,
    bits: String,
}

fn load() -> File {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/vectors/asert.json");
    let text = std::fs::read_to_string(path).expect("tests/vectors/asert.json is checked in");
    serde_json::from_str(&text).expect("asert.json matches the documented layout")
}

fn bits(s: &str) -> u32 {
    u32::from_str_radix(s, 16).expect("bits are 8 hex digits")
}

fn target(s: &str) -> U256 {
    s.parse().expect("targets are 64 hex digits")
}

fn params(file: &File) -> BTreeMap<&str, AsertParams> {
    file.networks
        .iter()
        .map(|(name, n)| {
            let max = target_from_bits(bits(&n.max_bits)).expect("max bits decode");
            assert_eq!(max, target(&n.max_target), "{name}: max target");
            assert_eq!(bits_from_target(max), bits(&n.max_bits), "{name}: max bits canonical");
            let p = AsertParams { spacing: n.spacing, halflife: n.halflife, max_target: max };
            (name.as_str(), p)
        })
        .collect()
}

#[test]
fn networks_are_the_design_ones() {
    let file = load();
    let p = params(&file);
    assert_eq!(p.len(), 3);
    let expect = [("main", 600, 172_800), ("test", 5, 60), ("dev", 1, 60)];
    for (name, spacing, halflife) in expect {
        assert_eq!(p[name].spacing, spacing, "{name}");
        assert_eq!(p[name].halflife, halflife, "{name}");
    }
    // Easier networks have larger max targets.
    assert!(p["main"].max_target < p["test"].max_target);
    assert!(p["test"].max_target < p["dev"].max_target);
}

#[test]
fn compact_decoding_matches() {
    let file = load();
    assert!(file.compact.len() > 300);
    for row in &file.compact {
        let b = bits(&row.bits);
        let got = target_from_bits(b);
        match (&row.target, &row.error) {
            (Some(t), None) => {
                assert_eq!(got, Ok(target(t)), "bits {}", row.bits);
                let canonical = row.canonical.as_deref().expect("valid rows carry canonical");
                assert_eq!(bits_from_target(target(t)), bits(canonical), "bits {}", row.bits);
            }
            (None, Some(e)) => {
                let want = match e.as_str() {
                    "negative" => TargetError::Negative { bits: b },
                    "overflow" => TargetError::Overflow { bits: b },
                    "zero" => TargetError::Zero { bits: b },
                    other => panic!("unknown error kind {other}"),
                };
                assert_eq!(got, Err(want), "bits {}", row.bits);
            }
            _ => panic!("row {} has both or neither of target and error", row.bits),
        }
    }
}

#[test]
fn compact_encoding_matches() {
    let file = load();
    assert!(file.encode.len() > 300);
    for row in &file.encode {
        assert_eq!(bits_from_target(target(&row.target)), bits(&row.bits), "target {}", row.target);
    }
}

#[test]
fn asert_matches() {
    let file = load();
    let p = params(&file);
    assert!(file.vectors.len() > 1000);
    let mut per_network: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, v) in file.vectors.iter().enumerate() {
        let net = &p[v.network.as_str()];
        let anchor = Anchor {
            height: v.anchor.height,
            target: target_from_bits(bits(&v.anchor.bits)).expect("anchor bits decode"),
            parent_time: v.anchor.parent_time,
        };
        let got = next_target(&anchor, v.parent_height, v.parent_time, net);
        assert_eq!(
            got,
            target(&v.target),
            "vector {i}: {} anchor {} height {} time {}",
            v.network,
            v.anchor.bits,
            v.parent_height,
            v.parent_time
        );
        assert_eq!(bits_from_target(got), bits(&v.bits), "vector {i}: bits");
        *per_network.entry(v.network.as_str()).or_default() += 1;
    }
    assert_eq!(per_network.len(), 3, "every network has vectors");
}

#[test]
fn script_reproduces_the_checked_in_file() {
    // The vectors must be what the script prints now, or one of them was edited by hand.
    let root = env!("CARGO_MANIFEST_DIR");
    let output = match std::process::Command::new("python3").arg(format!("{root}/scripts/asert_vectors.py")).output() {
        Ok(output) => output,
        Err(e) => {
            eprintln!("skipped: python3 is not runnable here ({e})");
            return;
        }
    };
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let checked_in =
        std::fs::read(format!("{root}/tests/vectors/asert.json")).expect("tests/vectors/asert.json is checked in");
    assert!(
        output.stdout == checked_in,
        "tests/vectors/asert.json is stale: run `python3 scripts/asert_vectors.py > tests/vectors/asert.json`"
    );
}
