#!/usr/bin/env python3
"""Consensus test vectors for ASERT difficulty and compact `bits`.

An independent implementation of DESIGN.md section 6 in plain Python integers (which
never overflow), written from the design text and not from the Rust code, so that the
two can check each other. Prints a JSON document to stdout:

    python3 scripts/asert_vectors.py > tests/vectors/asert.json

`tests/asert_vectors.rs` checks every vector against `gradientcoin::chain::target`.
The file is deterministic: running the script again must reproduce it byte for byte.

JSON layout:
    networks: {name: {spacing, halflife, max_bits, max_target}}
    compact:  [{bits, target | error}]      decoding, with the canonical re-encoding
    encode:   [{target, bits}]              encoding of arbitrary targets
    vectors:  [{network, anchor: {height, bits, parent_time}, parent_height,
                parent_time, target, bits}]
Targets are 64 lower-case hex digits; bits are 8 hex digits.
"""

import json
import sys

# Per-network ASERT constants (DESIGN.md section 6) and the max target ("pow limit").
# main: Bitcoin's 0x1d00ffff made 256 times easier, because a ticket here is a whole
#       solver step (work units), not one hash: 2^256 / max = 2^24 work units per block.
# test: 2^12 work units per block at the easiest, so a laptop finds 5 s blocks at once
#       and ASERT, not the floor, sets the pace.
# dev:  Bitcoin's regtest limit: about one step per block.
NETWORKS = {
    "main": {"spacing": 600, "halflife": 172800, "max_bits": 0x1E00FFFF},
    "test": {"spacing": 5, "halflife": 60, "max_bits": 0x1F0FFFFF},
    "dev": {"spacing": 1, "halflife": 60, "max_bits": 0x207FFFFF},
}

TWO_256 = 1 << 256


# --- compact bits: N = mantissa * 256^(size - 3), sign bit 0x00800000 -----------------

def decode_bits(bits):
    """Returns (target, None) or (None, reason) with reason in negative/overflow/zero."""
    size = bits >> 24
    mantissa = bits & 0x007FFFFF
    negative = bits & 0x00800000
    if size >= 3:
        value = mantissa * 256 ** (size - 3)
    else:
        # Fewer than three bytes: the low bytes of the mantissa fall off.
        value = mantissa // 256 ** (3 - size)
    if negative and value != 0:
        return None, "negative"
    if value >= TWO_256:
        return None, "overflow"
    if value == 0:
        return None, "zero"
    return value, None


def encode_bits(target):
    """Shortest encoding whose mantissa has the sign bit clear."""
    assert 0 <= target < TWO_256
    size = 0
    while target >= 256 ** size:
        size += 1
    if size >= 3:
        mantissa = target // 256 ** (size - 3)
    else:
        mantissa = target * 256 ** (3 - size)
    if mantissa >= 0x800000:
        mantissa //= 256
        size += 1
    return (size << 24) | mantissa


# --- ASERT ------------------------------------------------------------------------------

def trunc_div(a, b):
    """Integer division rounding toward zero (Python's // rounds toward minus infinity)."""
    q = abs(a) // abs(b)
    return q if (a < 0) == (b < 0) else -q


def next_target(anchor_height, anchor_target, anchor_parent_time,
                parent_height, parent_time, spacing, halflife, max_target):
    dt = parent_time - anchor_parent_time
    dh = parent_height - anchor_height
    exponent = trunc_div((dt - spacing * (dh + 1)) * 65536, halflife)
    shifts = exponent >> 16  # Python's >> on ints is arithmetic (floor)
    frac = exponent - shifts * 65536
    assert 0 <= frac < 65536
    poly = 195766423245049 * frac + 971821376 * frac ** 2 + 5127 * frac ** 3 + 2 ** 47
    assert poly < 2 ** 64  # "computed in u64": it must not wrap
    factor = 65536 + (poly >> 48)
    t = anchor_target * factor
    if shifts >= 0:
        # Past 4096 a non-zero product is far beyond 2^256 either way; the cap only
        # avoids building a gigantic int (dt of 2^62 s is 2^62 / halflife doublings).
        t <<= min(shifts, 4096)
    else:
        t >>= -shifts
    t >>= 16
    if t >= TWO_256:
        t = max_target  # overflow clamps to max
    if t == 0:
        t = 1
    if t > max_target:
        t = max_target
    return t


# --- vector generation ------------------------------------------------------------------

class Lcg:
    """A fixed 64-bit LCG (Knuth's MMIX constants): deterministic, no imports."""

    def __init__(self, seed):
        self.state = seed

    def next(self):
        self.state = (self.state * 6364136223846793005 + 1442695040888963407) % 2 ** 64
        return self.state >> 11

    def below(self, n):
        return self.next() % n


def hex256(x):
    return "%064x" % x


def hex32(x):
    return "%08x" % x


def compact_section():
    cases = [
        0x00000000, 0x00123456, 0x01003456, 0x02000056, 0x03000000, 0x04000000,
        0x00923456, 0x01803456, 0x02800056, 0x03800000, 0x04800000, 0x01123456,
        0x01FEDCBA, 0x02123456, 0x03123456, 0x04123456, 0x04923456, 0x05009234,
        0x20123456, 0xFF123456, 0x1D00FFFF, 0x1E00FFFF, 0x1F0FFFFF, 0x207FFFFF,
        0x2100FFFF, 0x2101FFFF, 0x220000FF, 0x22000100, 0x23000001, 0x23000000,
        0x03800001, 0x04000001, 0x1D7FFFFF, 0x1D800000, 0x1C00FFFF, 0x01010000,
        0x21010000, 0x22010000,
    ]
    rng = Lcg(0xC0FFEE)
    for _ in range(200):
        cases.append(rng.next() % 2 ** 32)
    for _ in range(100):
        # Plausible sizes, so most of these decode.
        cases.append(((3 + rng.below(32)) << 24) | (rng.next() % 2 ** 24))
    out = []
    for bits in cases:
        target, error = decode_bits(bits)
        row = {"bits": hex32(bits)}
        if error is None:
            row["target"] = hex256(target)
            row["canonical"] = hex32(encode_bits(target))
        else:
            row["error"] = error
        out.append(row)
    return out


def encode_section():
    rng = Lcg(0xBADC0DE)
    targets = [1, 0x7F, 0x80, 0xFF, 0x100, 0x7FFF, 0x8000, 0x7FFFFF, 0x800000, 0xFFFFFF,
               0x1000000, TWO_256 - 1, 2 ** 255, 2 ** 255 - 1]
    for _ in range(300):
        bits = 1 + rng.below(256)
        targets.append(rng.next() ** 6 % (1 << bits) or 1)
    return [{"target": hex256(t), "bits": hex32(encode_bits(t))} for t in targets]


def vector_section():
    out = []
    rng = Lcg(20260101)
    anchor_parent_time = 1_700_000_000
    heights = [0, 1, 2, 144, 12345, 1_000_000]
    for name, net in NETWORKS.items():
        spacing, halflife = net["spacing"], net["halflife"]
        max_target, err = decode_bits(net["max_bits"])
        assert err is None
        # The real anchor (at the max) and harder ones, so that late blocks can move.
        anchor_targets = [max_target, max_target >> 10, max_target >> 64]
        offsets = [0, 1, -1, spacing, -spacing, halflife // 3, -(halflife // 3),
                   halflife // 2, -(halflife // 2), halflife, -halflife, 2 * halflife,
                   -2 * halflife, 3 * halflife + 7, -5 * halflife - 11, 100 * halflife,
                   -100 * halflife, 255 * halflife, -255 * halflife, 300 * halflife,
                   -300 * halflife, 2 ** 62]
        for anchor_target in anchor_targets:
            anchor_bits = encode_bits(anchor_target)
            anchor_target, err = decode_bits(anchor_bits)  # what the chain would store
            assert err is None
            for h in heights:
                for off in offsets:
                    add(out, name, net, max_target, anchor_bits, anchor_target,
                        anchor_parent_time, h, off)
            # Random heights and offsets, in fractions of the halflife.
            for _ in range(30):
                h = rng.below(1_000_001)
                off = (rng.below(2 * 64 * halflife + 1) - 64 * halflife) if rng.below(2) \
                    else (rng.below(4 * halflife + 1) - 2 * halflife)
                add(out, name, net, max_target, anchor_bits, anchor_target,
                    anchor_parent_time, h, off)
        # The parent earlier than the anchor's parent (dt < 0).
        add(out, name, net, max_target, encode_bits(max_target >> 8),
            decode_bits(encode_bits(max_target >> 8))[0], anchor_parent_time, 0, -3600)
    return out


def add(out, name, net, max_target, anchor_bits, anchor_target, anchor_parent_time, h, off):
    spacing, halflife = net["spacing"], net["halflife"]
    anchor_height = 1
    parent_time = anchor_parent_time + spacing * (h + 1 - anchor_height) + off
    if not 0 <= parent_time < 2 ** 64:
        return
    t = next_target(anchor_height, anchor_target, anchor_parent_time, h, parent_time,
                    spacing, halflife, max_target)
    out.append({
        "network": name,
        "anchor": {"height": anchor_height, "bits": hex32(anchor_bits),
                   "parent_time": anchor_parent_time},
        "parent_height": h,
        "parent_time": parent_time,
        "target": hex256(t),
        "bits": hex32(encode_bits(t)),
    })


def self_check():
    """The design's sanity rules, on this implementation."""
    for net in NETWORKS.values():
        s, hl = net["spacing"], net["halflife"]
        mx = decode_bits(net["max_bits"])[0]
        a = mx >> 20
        on = 1000 + s * 10
        assert next_target(1, a, 1000, 10, on, s, hl, mx) == a
        assert next_target(1, a, 1000, 10, on + hl, s, hl, mx) == 2 * a
        assert next_target(1, a, 1000, 10, on - hl, s, hl, mx) == a // 2
        assert next_target(1, mx, 1000, 0, 1000, s, hl, mx) == mx  # block 1 is at max
    for bits in (0x1D00FFFF, 0x05009234, 0x20123456):
        assert encode_bits(decode_bits(bits)[0]) == bits
    assert decode_bits(0x04923456)[1] == "negative"
    assert decode_bits(0xFF123456)[1] == "overflow"
    assert decode_bits(0x01003456)[1] == "zero"


def main():
    self_check()
    doc = {
        "description": "ASERT (aserti3-2d) and compact-bits vectors from "
                       "scripts/asert_vectors.py, an independent Python implementation "
                       "of DESIGN.md section 6; regenerate with "
                       "`python3 scripts/asert_vectors.py > tests/vectors/asert.json`",
        "networks": {
            name: {
                "spacing": net["spacing"],
                "halflife": net["halflife"],
                "max_bits": hex32(net["max_bits"]),
                "max_target": hex256(decode_bits(net["max_bits"])[0]),
            }
            for name, net in NETWORKS.items()
        },
        "compact": compact_section(),
        "encode": encode_section(),
        "vectors": vector_section(),
    }
    # One row per line: readable diffs without the bulk of full indentation.
    out = sys.stdout
    out.write("{\n")
    out.write(' "description": %s,\n' % json.dumps(doc["description"]))
    out.write(' "networks": %s,\n' % json.dumps(doc["networks"], sort_keys=True))
    for i, key in enumerate(("compact", "encode", "vectors")):
        rows = doc[key]
        out.write(' "%s": [\n' % key)
        for j, row in enumerate(rows):
            out.write("  " + json.dumps(row) + ("," if j + 1 < len(rows) else "") + "\n")
        out.write(" ]" + ("," if i < 2 else "") + "\n")
    out.write("}\n")


if __name__ == "__main__":
    main()
