#!/usr/bin/env python3
# format/generate.py: writes the conformance corpus of spec/FORMAT.md (format/valid, format/invalid) from an
# independent writer (Python standard library only: it never calls libembt). Deterministic: the same bytes
# every run (given the same zlib). Every invalid sample is a valid file broken in exactly one rule of
# FORMAT.md 7, with the checksums that rule is not about recomputed, so that rule is the first a reader hits.
import argparse
import hashlib
import math
import os
import struct
import sys
import zlib

NONE = 0xFFFFFFFF
MAGIC = b"\x89EMBT\r\n\x1a\n"
HEADER = 128
ENTRY = 96

VOCAB, VOCAB_INDEX, VOCAB_COUNTS, TABLE, ROW_SCALES, ROW_NORMS, METADATA = 1, 2, 3, 4, 5, 6, 7
TYPE_NAMES = {1: "VOCAB", 2: "VOCAB_INDEX", 3: "VOCAB_COUNTS", 4: "TABLE", 5: "ROW_SCALES",
              6: "ROW_NORMS", 7: "METADATA"}
REQUIRED = {1: 1, 2: 0, 3: 0, 4: 1, 5: 1, 6: 0, 7: 0}
F32, F16, BF16, F64, I8, U8, I32, I64 = 1, 2, 3, 4, 5, 6, 7, 8
DTYPE_NAMES = {1: "f32", 2: "f16", 3: "bf16", 4: "f64", 5: "i8", 6: "u8", 7: "i32", 8: "i64"}
DTYPE_SIZE = {1: 4, 2: 2, 3: 2, 4: 8, 5: 1, 6: 1, 7: 4, 8: 8}
SHUFFLE_BLOCK = 65536
# values lists longer than this are given in the YAML as a CRC-32 of the read-back f32 bytes
MAX_LISTED = 256


def align_up(x, a):
    return (x + a - 1) // a * a


def crc(b):
    return zlib.crc32(bytes(b)) & 0xFFFFFFFF


def fnv1a64(b):
    h = 0xCBF29CE484222325
    for c in b:
        h = ((h ^ c) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def u16(v):
    return struct.pack("<H", v)


def u32(v):
    return struct.pack("<I", v)


def u64(v):
    return struct.pack("<Q", v)


# ---- number conversions (FORMAT.md 4.4), all exact or correctly rounded to nearest even ----

def f32_bits(x):
    """Bits of x (a Python float) rounded once to binary32."""
    if math.isnan(x):
        return 0x7FC00000
    try:
        return struct.unpack("<I", struct.pack("<f", x))[0]
    except OverflowError:
        return 0xFF800000 if x < 0 else 0x7F800000


def bits_f32(b):
    return struct.unpack("<f", struct.pack("<I", b))[0]


def f16_to_f32_bits(h):
    s, e, m = h >> 15, (h >> 10) & 0x1F, h & 0x3FF
    if e == 0x1F:
        return (s << 31) | 0x7F800000 | (m << 13)
    if e == 0 and m == 0:
        return s << 31
    return f32_bits((-1.0 if s else 1.0) * (m if e == 0 else (1024 + m)) * 2.0 ** ((e if e else 1) - 25))


def f32_to_bf16(b):
    if (b & 0x7FFFFFFF) > 0x7F800000:
        return (b >> 16) | 0x40
    return (b + 0x7FFF + ((b >> 16) & 1)) >> 16


def int_to_f32_bits(n):
    """An integer rounded once to binary32 (no detour through binary64, which rounds twice)."""
    if n == 0:
        return 0
    sign = 0x80000000 if n < 0 else 0
    m = abs(n)
    shift = max(m.bit_length() - 24, 0)
    q, r = m >> shift, m & ((1 << shift) - 1)
    if shift:
        half = 1 << (shift - 1)
        if r > half or (r == half and q & 1):
            q += 1
    return sign | f32_bits(float(q) * 2.0 ** shift)


def encode_values(dtype, vals):
    """vals: Python numbers (f32/f64/f16 as floats, or ('bits', n) for an exact bit pattern)."""
    out = bytearray()
    for v in vals:
        raw = v[1] if isinstance(v, tuple) else None
        if dtype == F32:
            out += u32(raw if raw is not None else f32_bits(v))
        elif dtype == F16:
            out += u16(raw) if raw is not None else struct.pack("<e", v)
        elif dtype == BF16:
            out += u16(raw if raw is not None else f32_to_bf16(f32_bits(v)))
        elif dtype == F64:
            out += u64(raw) if raw is not None else struct.pack("<d", v)
        elif dtype in (I8, U8, I32, I64):
            out += struct.pack({I8: "<b", U8: "<B", I32: "<i", I64: "<q"}[dtype], v)
    return bytes(out)


def readback(dtype, data, rows, cols, scales):
    """The f32 bit patterns a reader must return for every element (row-major)."""
    n = rows * cols
    out = []
    for k in range(n):
        if dtype == F32:
            out.append(struct.unpack_from("<I", data, 4 * k)[0])
        elif dtype == F16:
            out.append(f16_to_f32_bits(struct.unpack_from("<H", data, 2 * k)[0]))
        elif dtype == BF16:
            out.append(struct.unpack_from("<H", data, 2 * k)[0] << 16)
        elif dtype == F64:
            b = struct.unpack_from("<Q", data, 8 * k)[0]
            if (b & 0x7FFFFFFFFFFFFFFF) > 0x7FF0000000000000:
                out.append(((b >> 63) << 31) | 0x7FC00000 | ((b >> 29) & 0x3FFFFF))
            else:
                out.append(f32_bits(struct.unpack_from("<d", data, 8 * k)[0]))
        elif dtype == I8:
            q = struct.unpack_from("<b", data, k)[0]
            # exact in binary64 (24 + 8 bits), then one rounding: the f32 product scale * q
            out.append(f32_bits(bits_f32(scales[k // cols]) * q))
        elif dtype == U8:
            out.append(f32_bits(float(data[k])))
        elif dtype == I32:
            out.append(int_to_f32_bits(struct.unpack_from("<i", data, 4 * k)[0]))
        elif dtype == I64:
            out.append(int_to_f32_bits(struct.unpack_from("<q", data, 8 * k)[0]))
    return out


def l2_bits(row_bits):
    s = 0.0
    for b in row_bits:
        v = bits_f32(b)
        if math.isfinite(v):
            s += v * v
    return f32_bits(math.sqrt(s))


def shuffle(data, e):
    """FORMAT.md 6: per block of 65,536 bytes, shuffled byte j*k + i is decoded byte i*e + j."""
    out = bytearray()
    for start in range(0, len(data), SHUFFLE_BLOCK):
        blk = data[start:start + SHUFFLE_BLOCK]
        k = len(blk) // e
        assert k * e == len(blk)
        for j in range(e):
            out += blk[j::e]
    return bytes(out)


def deflate(data):
    c = zlib.compressobj(9, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY)
    return c.compress(data) + c.flush()


def utf8_ok(b):
    try:
        s = b.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return "\x00" not in s


# ---- sections and the writer (FORMAT.md 3) ----

class Section:
    def __init__(self, type, payload=b"", params=b"", name=b"", link=NONE, codec=0, filter=0, elem=1,
                 flags=None):
        self.type = type
        self.payload = bytes(payload)        # decoded bytes
        self.params = bytes(params)
        self.name = name.encode() if isinstance(name, str) else bytes(name)
        self.link = link
        self.codec = codec
        self.filter = filter
        self.elem = elem                     # shuffle element size (FORMAT.md 6)
        self.flags = REQUIRED.get(type, 0) if flags is None else flags
        self.stored = None                   # raw stored bytes override
        self.decoded_length = None           # override
        self.reserved = 0
        self.entry_ext = b""                 # bytes 96.. of a larger entry

    def stored_bytes(self):
        if self.stored is not None:
            return self.stored
        if self.codec == 1:
            return deflate(shuffle(self.payload, self.elem) if self.filter else self.payload)
        return self.payload


class Layout:
    """A built file plus where everything is, for patches and expected offsets."""

    def __init__(self, data, header_size, alignment, sec_offsets, dir_offset, entry_size, n):
        self.data = bytearray(data)
        self.header_size = header_size
        self.alignment = alignment
        self.sec = sec_offsets
        self.dir = dir_offset
        self.entry_size = entry_size
        self.n = n

    def entry(self, i):
        return self.dir + 16 + i * self.entry_size

    def names(self):
        return self.dir + 16 + self.n * self.entry_size

    def put(self, off, fmt, *v):
        struct.pack_into(fmt, self.data, off, *v)

    def get(self, off, fmt):
        return struct.unpack_from(fmt, self.data, off)[0]

    def fix_sections(self, skip=()):
        for i in range(self.n):
            if i in skip:
                continue
            e = self.entry(i)
            off, ln = self.get(e + 8, "<Q"), self.get(e + 16, "<Q")
            if off + ln <= len(self.data):
                self.put(e + 32, "<I", crc(self.data[off:off + ln]))

    def fix_dir(self):
        ln = self.get(40, "<Q")
        self.put(48, "<I", crc(self.data[self.dir:self.dir + ln]))

    def fix_header(self):
        hs = self.get(16, "<I")
        c = zlib.crc32(bytes(self.data[0:124]))
        if hs % 8 == 0 and 128 < hs <= 4096 and hs <= len(self.data):
            c = zlib.crc32(bytes(self.data[128:hs]), c)
        self.put(124, "<I", c & 0xFFFFFFFF)

    def fix(self, sections=True, directory=True, header=True, skip=()):
        """Recomputes the checksums in dependency order: sections, directory, header."""
        if sections:
            self.fix_sections(skip)
        if directory:
            self.fix_dir()
        if header:
            self.fix_header()
        return self


def build(sections, alignment=64, header_size=HEADER, minor=0, major=1, reserved=b"", flags=0,
          entry_size=ENTRY, header_ext=b"", place=None, dir_place=None, pad_fill=None, dir_reserved=0,
          alignment_field=None):
    """Lays the sections out as FORMAT.md 3 says. `place` maps a section index to an absolute offset
    that replaces the computed one (layout-breaking samples); `dir_place` does the same for the directory."""
    place = place or {}
    out = bytearray(header_size)
    stored = [s.stored_bytes() for s in sections]
    offs = []
    pos = header_size
    for i, s in enumerate(sections):
        off = place.get(i, align_up(pos, alignment))
        if len(out) < off:
            out += bytes(off - len(out))
        out[off:off + len(stored[i])] = stored[i]
        offs.append(off)
        pos = off + len(stored[i])
    dir_off = dir_place if dir_place is not None else align_up(pos, alignment)
    if len(out) < dir_off:
        out += bytes(dir_off - len(out))
    del out[dir_off:]
    names = b"".join(s.name for s in sections)
    d = bytearray(u32(len(sections)) + u32(entry_size) + u32(len(names)) + u32(dir_reserved))
    npos = 0
    for i, s in enumerate(sections):
        st = stored[i]
        dec = s.decoded_length if s.decoded_length is not None else len(s.payload)
        params = s.params + bytes(48 - len(s.params))
        e = (u16(s.type) + u16(s.flags) + bytes([s.codec, s.filter]) + u16(s.reserved) + u64(offs[i]) +
             u64(len(st)) + u64(dec) + u32(crc(st)) + u32(s.link) + u32(npos) + u32(len(s.name)) + params)
        e += s.entry_ext + bytes(entry_size - ENTRY - len(s.entry_ext))
        d += e
        npos += len(s.name)
    d += names
    out += d
    hdr = bytearray(MAGIC + b"\x00" + u16(0xFEFF) + u16(major) + u16(minor) + u32(header_size) +
                    u32(alignment if alignment_field is None else alignment_field) + u64(len(out)) +
                    u64(dir_off) + u64(len(d)) + u32(crc(d)) + u32(flags))
    hdr += reserved + bytes(68 - len(reserved)) + u32(0)
    out[0:128] = hdr
    out[128:header_size] = header_ext + bytes(header_size - 128 - len(header_ext))
    if pad_fill:
        for off, val in pad_fill:
            out[off] = val
    lay = Layout(out, header_size, alignment, offs, dir_off, entry_size, len(sections))
    lay.fix_header()
    return lay


# ---- a content model: vocabularies and tables, and the expected decoding ----

class Model:
    def __init__(self):
        self.sections = []
        self.vocabs = []   # dicts for the expected YAML
        self.tables = []
        self.metadata = None

    def add(self, s):
        self.sections.append(s)
        return len(self.sections) - 1

    def vocab(self, name, tokens, unk=NONE, pad=NONE, bos=NONE, eos=NONE, index=True, counts=None,
              codec=0, index_codec=0, index_filter=0, counts_codec=0, counts_filter=0, n_slots=None):
        toks = [t.encode() if isinstance(t, str) else bytes(t) for t in tokens]
        offsets, pos = [0], 0
        for t in toks:
            pos += len(t)
            offsets.append(pos)
        blob = b"".join(toks)
        payload = b"".join(u64(o) for o in offsets) + blob
        params = u64(len(toks)) + u64(len(blob)) + u32(unk) + u32(pad) + u32(bos) + u32(eos) + u32(0)
        vi = self.add(Section(VOCAB, payload, params, name, codec=codec))
        v = dict(name=name, tokens=toks, unk=unk, pad=pad, bos=bos, eos=eos, counts=counts, section=vi)
        self.vocabs.append(v)
        if index:
            slots = build_index(toks, n_slots)
            self.add(Section(VOCAB_INDEX, slots, u64(len(slots) // 8) + u32(1), link=vi,
                             codec=index_codec, filter=index_filter, elem=4))
        if counts is not None:
            self.add(Section(VOCAB_COUNTS, b"".join(u64(c) for c in counts), link=vi,
                             codec=counts_codec, filter=counts_filter, elem=8))
        return vi

    def table(self, name, dtype, rows, cols, values, rank=2, vocab=None, norms=False, scales=None,
              codec=0, filter=0, aux_codec=0, aux_filter=0):
        data = values if isinstance(values, bytes) else encode_values(dtype, values)
        assert len(data) == rows * cols * DTYPE_SIZE[dtype]
        params = u32(dtype) + u32(rank) + u64(rows) + u64(cols)
        vd = None if vocab is None else next(x for x in self.vocabs if x["section"] == vocab)
        link = NONE if vd is None else vocab
        ti = self.add(Section(TABLE, data, params, name, link=link, codec=codec, filter=filter,
                              elem=DTYPE_SIZE[dtype]))
        nrows = rows if rank == 2 else 1
        rcols = cols if rank == 2 else rows
        scale_bits = None
        if dtype == I8:
            scale_bits = [f32_bits(s) if not isinstance(s, tuple) else s[1] for s in scales]
            self.add(Section(ROW_SCALES, b"".join(u32(b) for b in scale_bits), link=ti,
                             codec=aux_codec, filter=aux_filter, elem=4))
        rb = readback(dtype, data, nrows, rcols, scale_bits)
        norm_bits = None
        if norms:
            norm_bits = [l2_bits(rb[r * rcols:(r + 1) * rcols]) for r in range(nrows)]
            self.add(Section(ROW_NORMS, b"".join(u32(b) for b in norm_bits), link=ti,
                             codec=aux_codec, filter=aux_filter, elem=4))
        self.tables.append(dict(name=name, dtype=dtype, rank=rank, rows=rows, cols=cols,
                                vocab=None if vd is None else vd["name"],
                                values=rb, rcols=rcols, scales=scale_bits, norms=norm_bits, section=ti))
        return ti

    def meta(self, text, codec=0):
        b = text.encode() if isinstance(text, str) else text
        self.metadata = b
        return self.add(Section(METADATA, b, codec=codec))


def build_index(toks, n_slots=None):
    """FORMAT.md 4.2: ids inserted in id order by linear probing; load factor at most 3/4."""
    n = len(toks)
    if n_slots is None:
        n_slots = 1
        while n_slots <= n or n_slots * 3 < n * 4:
            n_slots *= 2
    ids, tags = [NONE] * n_slots, [0] * n_slots
    for i, t in enumerate(toks):
        h = fnv1a64(t)
        k = h & (n_slots - 1)
        while ids[k] != NONE:
            k = (k + 1) & (n_slots - 1)
        ids[k], tags[k] = i, h >> 32
    return b"".join(u32(ids[k]) + u32(tags[k]) for k in range(n_slots))


# ---- YAML output (a small emitter: double-quoted strings, flow lists) ----

def yq(b):
    """A YAML double-quoted scalar whose value is exactly the UTF-8 bytes b."""
    s = b.decode("utf-8") if isinstance(b, (bytes, bytearray)) else b
    out = ['"']
    for ch in s:
        c = ord(ch)
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif c < 0x20 or c == 0x7F or 0x80 <= c < 0xA0 or 0xD800 <= c < 0xE000 or c in (0xFEFF, 0xFFFE, 0xFFFF):
            out.append("\\x%02x" % c if c < 0x100 else "\\u%04x" % c)
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def yid(v):
    return "null" if v == NONE else str(v)


def hexlist(bits):
    return "[" + ", ".join("0x%08x" % b for b in bits) + "]"


def expected_valid(m, lay, description):
    L = ["# expected decoding of the sample with the same name (format/README.md gives the schema)",
         "description: " + yq(description),
         "file_size: %d" % len(lay.data),
         "version_major: %d" % struct.unpack_from("<H", lay.data, 12)[0],
         "version_minor: %d" % struct.unpack_from("<H", lay.data, 14)[0],
         "alignment: %d" % lay.alignment,
         "sections: %d" % lay.n]
    L.append("vocabs:" + ("" if m.vocabs else " []"))
    for v in m.vocabs:
        L.append("  - name: " + yq(v["name"].encode()))
        L.append("    size: %d" % len(v["tokens"]))
        for k in ("unk", "pad", "bos", "eos"):
            L.append("    %s_id: %s" % (k, yid(v[k])))
        if v["counts"] is None:
            L.append("    counts: null")
        else:
            L.append("    counts: [" + ", ".join(str(c) for c in v["counts"]) + "]")
        if len(v["tokens"]) > MAX_LISTED:
            L.append("    tokens: [" + ", ".join(yq(t) for t in v["tokens"]) + "]")
        else:
            L.append("    tokens:" + ("" if v["tokens"] else " []"))
            for t in v["tokens"]:
                L.append("      - " + yq(t))
    L.append("tables:" + ("" if m.tables else " []"))
    for t in m.tables:
        L.append("  - name: " + yq(t["name"].encode()))
        L.append("    dtype: " + DTYPE_NAMES[t["dtype"]])
        L.append("    rank: %d" % t["rank"])
        L.append("    rows: %d" % t["rows"])
        L.append("    cols: %d" % t["cols"])
        L.append("    vocab: " + ("null" if t["vocab"] is None else yq(t["vocab"].encode())))
        vals = t["values"]
        if len(vals) <= MAX_LISTED:
            if t["rank"] == 2:
                L.append("    values:" + ("" if t["rows"] else " []"))
                for r in range(t["rows"]):
                    L.append("      - " + hexlist(vals[r * t["cols"]:(r + 1) * t["cols"]]))
            else:
                L.append("    values:")
                L.append("      - " + hexlist(vals))
        else:
            L.append("    values_crc32: 0x%08x" % crc(b"".join(u32(b) for b in vals)))
        L.append("    scales: " + ("null" if t["scales"] is None else hexlist(t["scales"])))
        if t["norms"] is not None and len(t["norms"]) > MAX_LISTED:
            L.append("    norms_crc32: 0x%08x" % crc(b"".join(u32(b) for b in t["norms"])))
        else:
            L.append("    norms: " + ("null" if t["norms"] is None else hexlist(t["norms"])))
    L.append("metadata: " + ("null" if m.metadata is None else yq(m.metadata)))
    return "\n".join(L) + "\n"


def expected_invalid(status, rule, description, offset=None, section=None, entry=None):
    L = ["# expected result of opening and verifying the sample with the same name (format/README.md)",
         "description: " + yq(description),
         "status: " + status,
         "rule: %d" % rule]
    if offset is not None:
        L.append("offset: 0x%x" % offset)
    if section is not None:
        L.append("section: " + yq(section))
    if entry is not None:
        L.append("entry: %d" % entry)
    return "\n".join(L) + "\n"


# ---- the valid samples ----

def lcg_values(n, seed, scale=1.0):
    """Deterministic pseudo-random floats in [-scale, scale)."""
    out, x = [], seed
    for _ in range(n):
        x = (x * 6364136223846793005 + 1442695040888963407) & 0xFFFFFFFFFFFFFFFF
        out.append(((x >> 40) / float(1 << 24) * 2.0 - 1.0) * scale)
    return out


def bits(*v):
    return [("bits", b) for b in v]


def reorder(m, perm):
    """Puts section perm[k] at position k and renumbers links (forward links are legal, rule 19)."""
    inv = {old: new for new, old in enumerate(perm)}
    secs = [m.sections[o] for o in perm]
    for s in secs:
        if s.link != NONE:
            s.link = inv[s.link]
    m.sections = secs


def colliding_tokens(n_slots, count):
    """Short ASCII tokens whose home slot is the last one, so their probes wrap around to slot 0."""
    out, k = [], 0
    while len(out) < count:
        t = ("c%d" % k).encode()
        if fnv1a64(t) & (n_slots - 1) == n_slots - 1:
            out.append(t)
        k += 1
    return out


def dtype_model(dtype):
    m = Model()
    if dtype == F32:
        mat = bits(0x00000000, 0x80000000, 0x3F800000, 0xBF800000, 0x00000001, 0x007FFFFF, 0x7F7FFFFF,
                   0x7F800000, 0xFF800000, 0x7FC00000, 0x7FC12345, 0x3EAAAAAB)
        vec = [0.5, -2.0, 3.25, 1e-3, 65504.0]
    elif dtype == F16:
        mat = bits(0x0000, 0x8000, 0x3C00, 0xBC00, 0x0001, 0x03FF, 0x0400, 0x7BFF, 0x7C00, 0xFC00, 0x7E00,
                   0x3555)
        vec = [0.5, -2.0, 3.25, 1e-3, 65504.0]
    elif dtype == BF16:
        mat = bits(0x0000, 0x8000, 0x3F80, 0xBF80, 0x0001, 0x0080, 0x7F7F, 0x7F80, 0xFF80, 0x7FC0, 0x3EAB,
                   0x4049)
        vec = [0.5, -2.0, 3.25, 1e-3, 65504.0]
    elif dtype == F64:
        # each value tests one rounding case of f64 -> f32 (round to nearest, ties to even)
        mat = [0.1, 1.0 / 3.0, 1e39, -1e39, 7e-46, 7.1e-46, 3.4028235677973366e38, 3.4028235677973362e38,
               1.0 + 2.0 ** -24, 1.0 + 3 * 2.0 ** -24, float("nan"), -0.0]
        vec = [16777217.0, -16777219.0, 2.0 ** -149, 1e-300, 123456789.123]
    elif dtype == I8:
        mat = [-128, -1, 0, 1, 127, 64, -64, 3, 100, -100, 7, 0]
        vec = [-128, 127, 1, -1, 50]
    elif dtype == U8:
        mat = [0, 1, 2, 127, 128, 129, 200, 254, 255, 16, 32, 64]
        vec = [255, 0, 1, 128, 77]
    elif dtype == I32:
        mat = [0, 1, -1, 2 ** 31 - 1, -2 ** 31, 16777217, 16777219, -16777217, 33554435, 100000001, 7, -7]
        vec = [2 ** 24, 2 ** 24 + 1, 2 ** 24 + 3, -(2 ** 30) - 1, 123456789]
    else:
        # 2^60 + 2^36 + 1 rounds up in one step but to 2^60 through binary64 (double rounding)
        mat = [0, 1, -1, 2 ** 63 - 1, -2 ** 63, 2 ** 60 + 2 ** 36 + 1, -(2 ** 60 + 2 ** 36 + 1), 2 ** 53 + 1,
               16777217, 2 ** 40 + 2 ** 16 + 1, 9007199254740993, -3]
        vec = [2 ** 62, 2 ** 62 + 2 ** 38, 2 ** 62 + 2 ** 38 + 1, -5, 1 << 33]
    scales = [0.5, 0.01, -2.0] if dtype == I8 else None
    m.table("matrix", dtype, 3, 4, mat, norms=True, scales=scales)
    m.table("vector", dtype, 5, 1, vec, rank=1, scales=[0.1] if dtype == I8 else None)
    return m


META_TEXT = ("name: demo\n"
             "description: \"Caf\u00e9 na\u00efve \u2013 \u65e5\u672c\u8a9e \U0001F389\"\n"
             "training:\n"
             "  lr: 0.025\n"
             "  epochs: 5\n"
             "  optimizer:\n"
             "    name: adam\n"
             "    betas: [0.9, 0.999]\n"
             "\u00e9t\u00e9: \u00e9t\u00e9\n"
             "empty:\n")


def valid_samples():
    """name -> (Model, build kwargs, description)"""
    S = {}

    m = Model()
    v = m.vocab("words", ["hi", "yo"])
    m.table("embedding", F32, 2, 2, [0.5, -1.0, 2.0, 0.25], vocab=v)
    S["minimal"] = (m, {}, "2-token vocabulary with its index and a 2x2 f32 table tied to it (FORMAT.md 11)")

    S["empty"] = (Model(), {}, "no sections at all: header and an empty directory")

    for dt in (F32, F16, BF16, F64, I8, U8, I32, I64):
        S["dtype-" + DTYPE_NAMES[dt]] = (dtype_model(dt), {},
                                        "stand-alone %s tables, rank 2 (3x4, with norms) and rank 1 (5), "
                                        "edge values of the conversion to f32" % DTYPE_NAMES[dt])

    m = Model()
    w = m.vocab("words", ["<unk>", "<pad>", "<s>", "</s>", "the", "of", "and"], unk=0, pad=1, bos=2, eos=3,
                counts=[0, 0, 0, 9, 1000, 700, 2 ** 64 - 1])
    c = m.vocab("chars", ["a", "b", "c", "\u00e9", "\u00df"], unk=0, eos=4, counts=[5, 4, 3, 2, 1])
    m.table("embedding", F32, 7, 3, lcg_values(21, 1), vocab=w, norms=True)
    m.table("context", BF16, 7, 3, lcg_values(21, 2), vocab=w)
    m.table("chars", F16, 5, 2, lcg_values(10, 3), vocab=c, norms=True)
    m.table("linear.weight", F32, 2, 3, lcg_values(6, 4))
    m.table("linear.bias", F32, 2, 1, [0.125, -0.5], rank=1)
    m.meta("source: generate.py\n")
    S["two-vocabs"] = (m, {}, "two vocabularies with special ids and counts, tied and stand-alone tables, "
                              "a table named like a vocabulary")

    m = Model()
    e = m.vocab("empty", [], counts=[])
    m.table("embedding", F32, 0, 4, [], vocab=e, norms=True)
    m.table("nothing", F64, 0, 1, [], rank=1)
    m.table("quant", I8, 0, 3, [], scales=[])
    m.table("quant.bias", I8, 0, 1, [], rank=1, scales=[1.0])
    m.table("packed", F32, 0, 8, [], codec=1, filter=1)
    S["zero-rows"] = (m, {}, "0-token vocabulary, 0-row tables of rank 1 and 2 (zero-length sections share "
                             "their offset with the next), a deflated 0-row table")

    def compressed(shuffled):
        mm = Model()
        f = 1 if shuffled else 0
        vv = mm.vocab("words", ["caf\u00e9", "\u65e5\u672c", "\U0001F600", "the", "a"], unk=3, codec=1,
                      index_codec=1, index_filter=f, counts=[5, 4, 3, 2, 1], counts_codec=1, counts_filter=f)
        mm.table("embedding", F32, 5, 4, lcg_values(20, 5), vocab=vv, norms=True, codec=1, filter=f,
                 aux_codec=1, aux_filter=f)
        mm.table("half", F16, 5, 3, lcg_values(15, 6), vocab=vv, codec=1, filter=f)
        mm.table("double", F64, 3, 2, lcg_values(6, 7), codec=1, filter=f)
        mm.table("quant", I8, 2, 4, [1, 2, 3, 4, -1, -2, -3, -4], scales=[0.25, 0.125], codec=1, filter=f,
                 aux_codec=1, aux_filter=f)
        mm.table("ids", I64, 4, 1, [1, 2, 3, 2 ** 40], rank=1, codec=1, filter=f)
        mm.meta(META_TEXT, codec=1)
        return mm
    S["deflate"] = (compressed(False), {}, "every section type deflated, without the shuffle filter")
    S["deflate-shuffle"] = (compressed(True), {}, "deflate with shuffle on every numeric section type "
                                                  "(element sizes 1, 2, 4, 8); vocab and metadata deflated")

    m = Model()
    n = 8200
    bv = m.vocab("words", ["w%d" % i for i in range(n)], counts=[i * 3 for i in range(n)], index_codec=1,
                 index_filter=1, counts_codec=1, counts_filter=1)
    m.table("embedding", F32, n, 2, [(k % 97) * 0.25 - 8.0 for k in range(2 * n)], vocab=bv, codec=1, filter=1, norms=True,
            aux_codec=1, aux_filter=1)
    S["shuffle-blocks"] = (m, {}, "sections over 65,536 bytes: shuffle works per block, with a short last "
                                  "block (8,200 tokens)")

    m = Model()
    m.table("bias", F32, 3, 1, [1.0, 2.0, 3.0], rank=1)
    m.meta(META_TEXT)
    S["metadata"] = (m, {}, "metadata with nested keys, a flow sequence, non-ASCII keys and values, an empty value")

    m = Model()
    m.meta("")
    S["metadata-empty"] = (m, {}, "an empty METADATA section (an empty YAML document)")

    m = Model()
    m.meta("# comment\nflow: {x: 1, y: [a, b]}\ntagged: !!binary aGk=\nlocal: !thing 3\nlong: >\n  folded\n"
           "  text\nlit: |\n  line 1\n  line 2\n'quoted key': \"v\"\n")
    S["metadata-yaml"] = (m, {}, "metadata using flow collections, tags, block scalars and quoted keys: inert text")

    m = Model()
    v = m.vocab("words", ["alpha", "beta", "gamma"])
    m.table("embedding", F32, 3, 2, lcg_values(6, 9), vocab=v)
    m.meta("alignment: 4096\n")
    S["align-4096"] = (m, dict(alignment=4096), "alignment 4096: every section and the directory on a page")

    m = Model()
    v = m.vocab("words", ["x", "y"])
    m.add(Section(100, b"future payload", params=b"\x01" * 48, name="x.future", link=v, flags=0))
    m.add(Section(65535, b"more" * 40, name="", codec=1, flags=0))
    m.table("embedding", F32, 2, 1, [1.0, 2.0], vocab=v)
    S["unknown-optional"] = (m, {}, "optional sections of unknown types 100 (linked, non-zero params) and "
                                    "65535 (deflated): skipped")

    m = Model()
    v = m.vocab("words", ["a"])
    S["minor-1-reserved"] = (m, dict(minor=1, reserved=bytes(range(1, 69))),
                             "minor version 1 with non-zero reserved header bytes: accepted, reserved ignored")

    m = Model()
    v = m.vocab("words", ["a", "b"])
    m.table("embedding", F32, 2, 1, [1.0, 2.0], vocab=v)
    S["header-size-136"] = (m, dict(minor=1, header_size=136, header_ext=b"future!!"),
                            "minor 1 with a 136-byte header (8 bytes of later fields, in the header CRC)")

    m = Model()
    v = m.vocab("words", ["a", "b"])
    m.table("embedding", F32, 2, 1, [1.0, 2.0], vocab=v)
    for s in m.sections:
        s.entry_ext = b"\xA5" * 8
    S["entry-size-104"] = (m, dict(minor=1, entry_size=104),
                           "minor 1 with 104-byte directory entries (8 bytes of later fields, ignored)")

    m = Model()
    toks = ["caf\u00e9", "na\u00efve", "\u65e5\u672c\u8a9e", "\U0001F389", "\u0395\u03bb\u03bb\u03b7\u03bd\u03b9\u03ba\u03ac",
            "\u05e2\u05d1\u05e8\u05d9\u05ea", "a b", "tab\there", "new\nline", "quote\"", "back\\slash",
            "\u0085", "\u00a0", "\ufeff", "\U0010FFFF", "e\u0301", "\x7f", "\x01", "-", "null", "~", "123", "#x"]
    v = m.vocab("tokens", toks, unk=6)
    m.table("embedding", F16, len(toks), 2, lcg_values(2 * len(toks), 10), vocab=v)
    S["non-ascii-tokens"] = (m, {}, "tokens in many scripts, 4-byte UTF-8, U+10FFFF, control characters, "
                                    "YAML-like words")

    m = Model()
    v = m.vocab("words", ["x"], unk=0, pad=0, bos=0, eos=0, counts=[42])
    m.table("embedding", F32, 1, 1, [1.5], vocab=v, norms=True)
    S["one-token"] = (m, {}, "a 1-token vocabulary (index of 2 slots) whose token is every special id")

    m = Model()
    v = m.vocab("words", ["p", "q", "r"])
    m.table("embedding", F32, 3, 2, lcg_values(6, 11), vocab=v, norms=True)
    # VOCAB 0, INDEX 1, TABLE 2, NORMS 3  ->  NORMS, TABLE, INDEX, VOCAB
    reorder(m, [3, 2, 1, 0])
    S["forward-links"] = (m, {}, "sections in reverse order: every link points forward")

    m = Model()
    v = m.vocab("words", ["one", "two", "three"], index=False)
    m.table("embedding", F32, 3, 1, [1.0, 2.0, 3.0], vocab=v)
    S["no-index"] = (m, {}, "a vocabulary without VOCAB_INDEX (the reader builds its own)")

    m = Model()
    v = m.vocab("words", ["a" * 65535, "b"])
    m.table("embedding", U8, 2, 1, [1, 2], vocab=v)
    S["token-max"] = (m, {}, "a token of 65,535 bytes, the longest allowed")

    m = Model()
    v = m.vocab("\u00e9" * 128, ["a"])
    m.table("n" * 256, F32, 1, 1, [1.0], vocab=v)
    S["name-max"] = (m, {}, "vocabulary and table names of 256 bytes, the longest allowed")

    m = Model()
    m.vocab("four", ["a", "b", "c", "d"], n_slots=16)
    m.vocab("three", ["a", "b", "c"], n_slots=4)
    m.vocab("wrap", colliding_tokens(8, 3), n_slots=8)
    S["index-bounds"] = (m, {}, "index sizes at the bounds: 16 slots for 4 tokens (max(16, 4n)), 4 slots "
                                "for 3 tokens, and probes that wrap around the last slot")
    return S


def build_model(m, kw):
    return build(m.sections, **kw)


# ---- the invalid samples ----

BASE_TOKENS = ["the", "cat", "sat", "on", "mat"]
EC, EF, EV, EL = "EMBT_ECORRUPT", "EMBT_EFORMAT", "EMBT_EVERSION", "EMBT_ELIMIT"


def base_model(compress=False, tokens=None, index=True, counts=True, meta="name: base\n", extra=None):
    """Sections: 0 VOCAB words, 1 VOCAB_INDEX, 2 VOCAB_COUNTS, 3 TABLE embedding (f32 5x3, tied),
    4 ROW_NORMS, 5 TABLE quant (i8 2x3), 6 ROW_SCALES, 7 METADATA (fewer when index/counts are off)."""
    m = Model()
    c = 1 if compress else 0
    toks = tokens if tokens is not None else BASE_TOKENS
    v = m.vocab("words", toks, codec=c, index=index, index_codec=c, counts=[10, 9, 8, 7, 6][:len(toks)]
                if counts else None, counts_codec=c)
    m.table("embedding", F32, len(toks), 3, lcg_values(3 * len(toks), 12), vocab=v, norms=True, codec=c,
            aux_codec=c)
    m.table("quant", I8, 2, 3, [1, -2, 3, -4, 5, -6], scales=[0.5, 0.25], codec=c, aux_codec=c)
    if extra:
        extra(m)
    if meta is not None:
        m.meta(meta, codec=c)
    return m


def base(**kw):
    bkw = {k: kw.pop(k) for k in list(kw) if k in ("alignment", "header_size", "minor", "place", "dir_place",
                                                     "entry_size", "header_ext", "alignment_field")}
    return build(base_model(**kw).sections, **bkw)


def sec_by(m, type, nth=0):
    return [i for i, s in enumerate(m.sections) if s.type == type][nth]


def invalid_samples():
    """name -> (bytes, status, rule, description, offset or None, section or None, entry or None)"""
    S = {}

    def add(name, data, status, rule, desc, offset=None, section=None, entry=None):
        assert name not in S, name
        S[name] = (bytes(data.data if isinstance(data, Layout) else data), status, rule, desc, offset,
                   section, entry)

    def patched(off, fmt, val, lay=None, **fix):
        L = lay or base()
        L.put(off, fmt, val)
        return L.fix(**fix)

    def model_file(mut, bkw=None, **kw):
        m = base_model(**kw)
        mut(m)
        return build(m.sections, **(bkw or {}))

    B = base()
    E = lambda i: B.entry(i)  # entry offsets are the same in every base() build of the same model

    # rule 1: size and magic
    add("1-empty-file", b"", EF, 1, "a file of 0 bytes")
    add("1-short", bytes(B.data[:100]), EF, 1, "the first 100 bytes of a valid file")
    d = bytearray(B.data); d[0] &= 0x7F
    add("1-magic-7bit", d, EF, 1, "magic byte 0 with its high bit cleared (7-bit transfer)", 0)
    d = bytearray(B.data); d[5:7] = b"\n"
    add("1-magic-crlf-to-lf", d, EF, 1, "CR LF in the magic converted to LF (text-mode transfer)", 0)
    d = bytearray(B.data); d[8:9] = b"\r\n"
    add("1-magic-lf-to-crlf", d, EF, 1, "the final LF of the magic converted to CR LF", 0)
    add("1-png", b"\x89PNG\r\n\x1a\n" + bytes(120), EF, 1, "a PNG signature, not an embt file", 0)

    # rule 2: major version
    add("2-major-2", patched(12, "<H", 2), EV, 2, "version_major 2", 12, "header")
    add("2-major-0", patched(12, "<H", 0), EV, 2, "version_major 0", 12, "header")

    # rule 3: byte 9, byte order
    add("3-byte9", patched(9, "<B", 1), EC, 3, "byte 9 after the magic is 01", 9, "header")
    add("3-byte-order-swapped", patched(10, "<H", 0xFFFE), EC, 3, "byte_order written big-endian (FE FF)",
        10, "header")

    # rule 4: header CRC
    L = base(); L.put(124, "<I", L.get(124, "<I") ^ 1)
    add("4-header-crc", L, EC, 4, "header_crc32 off by one bit", 124, "header")
    m = base_model()
    L = build(m.sections, header_size=136, minor=1, header_ext=b"future!!")
    L.put(124, "<I", crc(L.data[0:124]))
    add("4-header-crc-not-extended", L, EC, 4, "header_size 136 but the CRC skips bytes [128, 136)", 124,
        "header")

    # rule 5: header_size
    for hs, what in ((132, "not a multiple of 8"), (120, "below 128"), (4104, "above 4096")):
        add("5-header-size-%d" % hs, base(header_size=hs) if hs > 128 else patched(16, "<I", hs), EC, 5,
            "header_size %d, %s (sections laid out after it)" % (hs, what), 16, "header")
    m = Model()
    L = build(m.sections)
    L.put(16, "<I", 4096); L.fix_header()
    add("5-header-size-beyond-file", L, EC, 5, "header_size 4096 in a 144-byte file", 16, "header")

    # rule 6: alignment
    for a in (32, 48):
        add("6-alignment-%d" % a, base(alignment=a), EC, 6, "alignment %d (sections laid out with it)" % a,
            20, "header")
    add("6-alignment-131072", build([], alignment=131072), EC, 6,
        "alignment 131072, above 65536 (no sections, directory at 131072)", 20, "header")
    add("6-alignment-0", patched(20, "<I", 0), EC, 6, "alignment 0", 20, "header")

    # rule 7: file_length
    add("7-file-length-field", patched(24, "<Q", len(B.data) + 64), EC, 7, "file_length 64 more than the file",
        24, "header")
    add("7-truncated", bytes(B.data[:-1]), EC, 7, "the last byte of the file is missing", 24, "header")
    add("7-trailing-byte", bytes(B.data) + b"\x00", EC, 7, "one zero byte appended to the file", 24, "header")

    # rule 8: file flags
    add("8-flags-1", patched(52, "<I", 1), EL, 8, "file flags bit 0 set (a future required feature)", 52,
        "header")
    add("8-flags-high", patched(52, "<I", 0x80000000), EL, 8, "file flags bit 31 set", 52, "header")

    # rule 9: reserved header bytes (minor 0)
    add("9-reserved-first", patched(56, "<B", 1), EC, 9, "first reserved header byte non-zero, minor 0", 56,
        "header")
    add("9-reserved-last", patched(123, "<B", 0x80), EC, 9, "last reserved header byte non-zero, minor 0", 123,
        "header")

    # rule 10: directory position and length
    L = base(dir_place=align_up(B.sec[-1] + 11, 64) + 8)
    add("10-directory-misaligned", L, EC, 10, "directory_offset not a multiple of alignment (8 bytes late)", 32)
    add("10-directory-length-8", patched(40, "<Q", 8, directory=False), EC, 10, "directory_length 8, below 16",
        40)
    add("10-directory-length-huge", patched(40, "<Q", (16 << 20) + 8, directory=False), EC, 10,
        "directory_length above 16 MiB", 40)
    add("10-directory-short-of-end", patched(32, "<Q", B.dir - 64, directory=False), EC, 10,
        "directory_offset + directory_length falls 64 bytes short of file_length")
    L = base(); L.put(32, "<Q", 2 ** 64 - 64); L.put(40, "<Q", len(L.data) + 64); L.fix_header()
    add("10-directory-overflow", L, EC, 10,
        "directory_offset + directory_length wraps around 2^64 to file_length")

    # rule 11: directory CRC
    L = base(); L.put(48, "<I", L.get(48, "<I") ^ 0x10000); L.fix_header()
    add("11-directory-crc", L, EC, 11, "directory_crc32 with one bit flipped", 48)
    L = base(); L.data[L.names()] ^= 0x20; L.fix_header()
    add("11-directory-damaged", L, EC, 11, "a name byte of the directory changed, its CRC not updated", 48)

    # rule 12: directory head
    dr = B.dir
    add("12-entry-count-65537", patched(dr, "<I", 65537), EC, 12, "entry_count 65537", dr, "directory")
    add("12-entry-count-mismatch", patched(dr, "<I", 9), EC, 12, "entry_count 9 but 8 entries in "
        "directory_length", None, "directory")
    for es in (100, 88, 1032):
        add("12-entry-size-%d" % es, patched(dr + 4, "<I", es), EC, 12, "entry_size %d" % es, dr + 4, "directory")
    add("12-names-length", patched(dr + 8, "<I", B.get(dr + 8, "<I") + 1), EC, 12,
        "names_length one more than the bytes left in directory_length", None, "directory")
    add("12-reserved", patched(dr + 12, "<I", 1), EC, 12, "directory reserved field non-zero", dr + 12, "directory")

    # rule 13: entry flags and reserved bytes
    add("13-flag-bit-1", patched(E(3) + 2, "<H", 3), EC, 13, "TABLE entry flags 0x0003", E(3) + 2, entry=3)
    add("13-reserved-byte-6", patched(E(1) + 6, "<B", 1), EC, 13, "VOCAB_INDEX entry byte 6 non-zero", E(1) + 6,
        entry=1)
    add("13-reserved-byte-7", patched(E(1) + 7, "<B", 0x80), EC, 13, "VOCAB_INDEX entry byte 7 non-zero",
        entry=1)
    add("13-unknown-type-flag-15", model_file(lambda m: m.sections.append(Section(100, b"x", flags=0x8000))),
        EC, 13, "an unknown optional type with entry flag bit 15 set", entry=8)

    # rule 14: names
    def rename(i, nm):
        def f(m):
            m.sections[i].name = nm
        return f
    L = model_file(rename(3, b"e" * 257))
    add("14-name-257", L, EC, 14, "table name of 257 bytes", L.entry(3) + 44, entry=3)
    add("14-name-outside-pool", patched(E(5) + 40, "<I", B.get(B.dir + 8, "<I") - 2), EC, 14,
        "name_offset + name_length beyond names_length", entry=5)
    add("14-name-invalid-utf8", model_file(rename(3, b"emb\xffdding")), EC, 14,
        "table name with the byte FF", entry=3)
    add("14-name-nul", model_file(rename(3, b"emb\x00dding")), EC, 14, "table name containing U+0000", entry=3)
    add("14-name-unknown-type", model_file(lambda m: m.sections.append(Section(100, b"x", name=b"\xc0\xae"))),
        EC, 14, "unknown optional type whose name is an overlong UTF-8 form", entry=8)

    # rule 15: layout
    L = base(place={0: 192})
    add("15-first-section-late", L, EC, 15, "entry 0 at 192 instead of 128", L.entry(0) + 8, entry=0)
    L = base(place={3: B.sec[3] + 64})
    add("15-gap", L, EC, 15, "64 zero bytes too many before entry 3", L.entry(3) + 8, entry=3)
    L = base(place={3: B.sec[2]}).fix()
    add("15-overlap", L, EC, 15, "entry 3 starts where entry 2 starts", L.entry(3) + 8, entry=3)
    L = base(place={1: B.sec[0] + 62})
    add("15-misaligned", L, EC, 15, "entry 1 right after entry 0's 62 bytes, not aligned", L.entry(1) + 8,
        entry=1)
    add("15-directory-late", base(dir_place=B.dir + 64), EC, 15, "64 zero bytes too many before the directory",
        32)
    add("15-directory-late-empty", build([], dir_place=192), EC, 15,
        "no sections and the directory at 192 instead of 128", 32)
    L = base(); L.put(E(7) + 16, "<Q", 2 ** 64 - 8); L.put(E(7) + 24, "<Q", 2 ** 64 - 8); L.fix()
    add("15-length-overflow", L, EC, 15, "last entry's stored_length 2^64 - 8: offset + length overflows",
        entry=7)
    add("15-offset-huge", patched(E(3) + 8, "<Q", 2 ** 64 - 64), EC, 15, "entry 3 offset 2^64 - 64", E(3) + 8,
        entry=3)

    # rule 16: codec and filter values
    add("16-codec-2", patched(E(3) + 4, "<B", 2), EL, 16, "TABLE codec 2 (unknown)", E(3) + 4, entry=3)
    C = base(compress=True)
    add("16-filter-2", patched(C.entry(3) + 5, "<B", 2, lay=base(compress=True)), EL, 16,
        "deflated TABLE with filter 2 (unknown)", C.entry(3) + 5, entry=3)

    # rule 17: shuffle without deflate
    add("17-shuffle-without-deflate", patched(E(3) + 5, "<B", 1), EC, 17, "TABLE filter SHUFFLE, codec NONE",
        E(3) + 5, entry=3)

    # rule 18: decoded length vs stored length
    add("18-none-decoded-length", patched(E(3) + 24, "<Q", 64), EC, 18,
        "codec NONE with decoded_length 64, stored_length 60", E(3) + 24, entry=3)
    st = C.get(C.entry(3) + 16, "<Q")
    add("18-deflate-ratio", patched(C.entry(3) + 24, "<Q", 1032 * st + 65, lay=base(compress=True)), EC, 18,
        "DEFLATE with decoded_length 1032 * stored_length + 65", C.entry(3) + 24, entry=3)

    # rule 19: link range
    add("19-link-out-of-range", patched(E(1) + 36, "<I", 8), EC, 19, "VOCAB_INDEX link 8 with 8 entries",
        E(1) + 36, entry=1)
    add("19-link-self", patched(E(1) + 36, "<I", 1), EC, 19, "VOCAB_INDEX entry 1 linking to itself", E(1) + 36,
        entry=1)
    add("19-unknown-type-link", model_file(lambda m: m.sections.append(Section(100, b"x", link=1000))), EC, 19,
        "unknown optional type with link 1000", None, entry=8)

    # rule 20: unknown required type
    add("20-unknown-required", model_file(lambda m: m.sections.append(Section(100, b"x", flags=1))), EL, 20,
        "unknown type 100 with REQUIRED set", entry=8)
    add("20-unknown-type-0", model_file(lambda m: m.sections.append(Section(0, b"", flags=1))), EL, 20,
        "type 0 (unknown) with REQUIRED set", entry=8)

    # rule 21: REQUIRED flag, names, unused params
    for i, fl, what in ((0, 0, "VOCAB with REQUIRED clear"), (1, 1, "VOCAB_INDEX with REQUIRED set"),
                        (3, 0, "TABLE with REQUIRED clear"), (6, 0, "ROW_SCALES with REQUIRED clear"),
                        (7, 1, "METADATA with REQUIRED set")):
        add("21-required-%s" % what.split()[0].lower().replace("_", "-"),
            patched(E(i) + 2, "<H", fl), EC, 21, what, E(i) + 2, entry=i)
    add("21-index-named", model_file(rename(1, b"idx")), EC, 21, "VOCAB_INDEX with a name", entry=1)
    add("21-table-unnamed", model_file(rename(3, b"")), EC, 21, "TABLE with an empty name", entry=3)
    add("21-vocab-unnamed", model_file(rename(0, b"")), EC, 21, "VOCAB with an empty name", entry=0)
    for i, used, what in ((0, 36, "VOCAB"), (1, 12, "VOCAB_INDEX"), (2, 0, "VOCAB_COUNTS"), (3, 24, "TABLE"),
                          (7, 0, "METADATA")):
        add("21-params-%s" % what.lower(), patched(E(i) + 48 + used, "<B", 1), EC, 21,
            "%s params byte %d (unused) non-zero" % (what, used), E(i) + 48 + used, entry=i)

    # rule 22: link types
    for i, to, what in ((1, 3, "VOCAB_INDEX linking to a TABLE"), (2, 7, "VOCAB_COUNTS linking to METADATA"),
                        (4, 0, "ROW_NORMS linking to a VOCAB"), (3, 5, "TABLE linking to a TABLE"),
                        (7, 0, "METADATA linking to a VOCAB"), (0, 3, "VOCAB linking to a TABLE"),
                        (6, 3, "ROW_SCALES linking to an F32 TABLE")):
        add(("22-link-%s-to-%s" % (what.split()[0], what.split()[-1])).lower().replace("_", "-"),
            patched(E(i) + 36, "<I", to), EC, 22, what, E(i) + 36, entry=i)
    L = model_file(lambda m: m.sections.append(Section(ROW_SCALES, b"\0\0\x80\x3f" * 5, link=3)))
    add("22-scales-for-f32", L, EC, 22, "an extra ROW_SCALES linking to the F32 table", L.entry(8) + 36, entry=8)

    # rule 23: uniqueness and I8 scales
    def dup(i):
        def f(m):
            s = m.sections[i]
            t = Section(s.type, s.payload, s.params, s.name, s.link, elem=s.elem)
            m.sections.append(t)
        return f
    for i, what in ((0, "vocab-name"), (3, "table-name"), (1, "vocab-index"), (2, "vocab-counts"),
                    (4, "row-norms"), (6, "row-scales"), (7, "metadata")):
        add("23-duplicate-" + what, model_file(dup(i)), EC, 23, "a second " + what.replace("-", " ") +
            " (copy of entry %d)" % i, entry=8)
    m = base_model()
    del m.sections[6]
    m.sections[6].link = NONE
    add("23-i8-without-scales", build(m.sections), EC, 23, "an I8 table with no ROW_SCALES", entry=5)

    # rule 24: VOCAB params
    P = E(0) + 48
    add("24-n-tokens-limit", patched(P, "<Q", 2 ** 32 - 1), EC, 24, "n_tokens 2^32 - 1", P, entry=0)
    add("24-blob-length", patched(P + 8, "<Q", 15), EC, 24, "blob_length 15, one more than the blob",
        entry=0)
    add("24-blob-length-overflow", patched(P + 8, "<Q", 2 ** 64 - 16), EC, 24,
        "blob_length 2^64 - 16: 8 * (n + 1) + blob_length overflows", entry=0)
    add("24-unk-id", patched(P + 16, "<I", 5), EC, 24, "unk_id 5 with 5 tokens", P + 16, entry=0)
    add("24-eos-id", patched(P + 28, "<I", 0xFFFFFFFE), EC, 24, "eos_id 0xFFFFFFFE", P + 28, entry=0)
    add("24-vocab-flags", patched(P + 32, "<I", 1), EC, 24, "vocab_flags 1", P + 32, entry=0)

    # rule 25: VOCAB_INDEX params
    P = E(1) + 48
    add("25-hash-2", patched(P + 8, "<I", 2), EL, 25, "hash function 2 (unknown)", P + 8, entry=1)

    def index_slots(k, payload=None):
        def f(m):
            s = m.sections[1]
            s.params = u64(k) + u32(1)
            s.payload = payload if payload is not None else build_index([t.encode() for t in BASE_TOKENS], k)
        return f
    L = model_file(index_slots(12, build_index([t.encode() for t in BASE_TOKENS], 16)[:96]))
    add("25-slots-not-power", L, EC, 25, "n_slots 12, not a power of two", L.entry(1) + 48, entry=1)
    L = model_file(index_slots(4, bytes(32)))
    add("25-slots-too-few", L, EC, 25, "n_slots 4 for 5 tokens", L.entry(1) + 48, entry=1)
    L = model_file(index_slots(32))
    add("25-slots-too-many", L, EC, 25, "n_slots 32 > max(16, 4 * 5)", L.entry(1) + 48, entry=1)
    add("25-decoded-length", model_file(index_slots(8, build_index([t.encode() for t in BASE_TOKENS], 8) +
                                                     u32(NONE) + u32(0))),
        EC, 25, "n_slots 8 with 9 slots of bytes", entry=1)

    # rule 26: counts length
    def counts4(m):
        m.sections[2].payload = m.sections[2].payload[:32]
    add("26-counts-short", model_file(counts4), EC, 26, "VOCAB_COUNTS with 4 counts for 5 tokens", entry=2)

    # rule 27: TABLE params
    P = E(3) + 48
    add("27-dtype-9", patched(P, "<I", 9), EL, 27, "dtype 9 (unknown)", P, entry=3)
    add("27-dtype-0", patched(P, "<I", 0), EL, 27, "dtype 0", P, entry=3)
    add("27-rank-3", patched(P + 4, "<I", 3), EC, 27, "rank 3", P + 4, entry=3)
    add("27-rank-0", patched(P + 4, "<I", 0), EC, 27, "rank 0", P + 4, entry=3)

    def standalone(dtype, rank, rows, cols, payload=b""):
        def f(m):
            m.sections.append(Section(TABLE, payload, u32(dtype) + u32(rank) + u64(rows) + u64(cols), "extra"))
        return f
    L = model_file(standalone(F32, 1, 2 ** 40 + 1, 1))
    add("27-rows-limit", L, EC, 27, "rank 1 with rows 2^40 + 1 (the rows clause comes before the length)",
        L.entry(8) + 56,
        entry=8)
    L = model_file(standalone(F32, 2, 0, 0))
    add("27-cols-0", L, EC, 27, "rank 2 with cols 0 (rows 0)", L.entry(8) + 64, entry=8)
    L = model_file(standalone(F32, 2, 0, 2 ** 31))
    add("27-cols-limit", L, EC, 27, "cols 2^31 (rows 0)", L.entry(8) + 64, entry=8)
    L = model_file(standalone(F32, 1, 3, 2, bytes(24)))
    add("27-rank-1-cols-2", L, EC, 27, "rank 1 with cols 2 (length consistent with 3 x 2)", L.entry(8) + 64,
        entry=8)
    add("27-decoded-length", model_file(standalone(F32, 2, 2, 2, bytes(12))), EC, 27,
        "2 x 2 f32 table of 12 bytes", entry=8)
    add("27-length-overflow", model_file(standalone(F64, 2, 2 ** 40, 2 ** 31 - 1)), EC, 27,
        "rows 2^40, cols 2^31 - 1, f64: rows * cols * 8 overflows", entry=8)

    def tied_short(m):
        m.sections.append(Section(TABLE, bytes(16), u32(F32) + u32(2) + u64(4) + u64(1), "short", link=0))
    add("27-tied-rows", model_file(tied_short), EC, 27, "a table tied to a 5-token vocabulary with 4 rows",
        entry=8)

    # rule 28: scales and norms lengths
    def trim(i, n):
        def f(m):
            m.sections[i].payload = m.sections[i].payload[:n]
        return f
    add("28-scales-short", model_file(trim(6, 4)), EC, 28, "ROW_SCALES with 1 value for 2 rows", entry=6)
    add("28-norms-short", model_file(trim(4, 16)), EC, 28, "ROW_NORMS with 4 values for 5 rows", entry=4)

    def rank1_i8(m):
        m.sections.append(Section(TABLE, bytes(3), u32(I8) + u32(1) + u64(3) + u64(1), "bias"))
        m.sections.append(Section(ROW_SCALES, b"\0\0\x80\x3f" * 3, link=8))
    add("28-scales-rank-1", model_file(rank1_i8), EC, 28, "rank-1 I8 table of 3 with 3 scales instead of 1",
        entry=9)

    # rule 29: metadata size
    big = (b"#" * 63 + b"\n") * (1 << 18)
    assert len(big) == 16 << 20
    add("29-metadata-too-big", model_file(lambda m: None, compress=False,
                                          meta=None, extra=lambda m: m.meta(big + b"\n", codec=1)),
        EC, 29, "METADATA of 16 MiB + 1 bytes (deflated YAML comments)", entry=7)

    # rule 30: token offsets (VOCAB payload at B.sec[0])
    V = B.sec[0]

    def offsets(vals, lay=None):
        L = lay or base()
        for k, o in enumerate(vals):
            L.put(L.sec[0] + 8 * k, "<Q", o)
        return L.fix()
    add("30-offset-0", offsets([1]), EC, 30, "offsets[0] = 1", V, entry=0)
    # the offset of a bad token i is that of offsets[i] (format/README.md)
    add("30-decreasing", offsets([0, 3, 2]), EC, 30, "offsets[2] = 2 < offsets[1] = 3", V + 8, entry=0)
    add("30-empty-token", offsets([0, 3, 3]), EC, 30, "offsets[1] = offsets[2]: token 1 is empty", V + 8,
        entry=0)
    add("30-last-offset", offsets([0, 3, 6, 9, 11, 13]), EC, 30, "offsets[5] = 13, blob_length 14", V + 40,
        entry=0)
    L = build(base_model(tokens=["a" * 65536, "b", "c", "d", "e"]).sections)
    add("30-token-too-long", L, EC, 30, "token 0 of 65,536 bytes", L.sec[0], entry=0)

    def comp_offsets(m):
        s = m.sections[0]
        s.payload = s.payload[:8] + u64(7) + s.payload[16:]
    add("30-deflated-vocab", model_file(comp_offsets, compress=True), EC, 30,
        "deflated VOCAB with offsets[1] = 7 > offsets[2] = 6, CRC matching", entry=0)

    # rule 31: UTF-8 of tokens; each bad token is alone, so its first byte is the offending byte
    for nm, tok in (("overlong", b"\xc0\xaf"), ("overlong-3", b"\xe0\x80\xaf"), ("surrogate", b"\xed\xa0\x80"),
                    ("above-max", b"\xf4\x90\x80\x80"), ("truncated", b"\xe2\x82"), ("continuation", b"\x80"),
                    ("nul", b"\x00"), ("byte-ff", b"\xff"), ("five-byte", b"\xf8\x88\x80\x80\x80")):
        toks = [b"the", b"cat", tok, b"on", b"mat"]
        L = build(base_model(tokens=toks).sections)
        add("31-token-" + nm, L, EC, 31, "token 2 is %s" % tok.hex(" "), L.sec[0] + 48 + 6, entry=0)

    # rule 32: duplicate tokens
    add("32-duplicate", build(base_model(tokens=["the", "cat", "the", "on", "mat"]).sections), EC, 32,
        "tokens 0 and 2 are both \"the\"", entry=0)
    add("32-duplicate-no-index", build(base_model(tokens=["the", "cat", "sat", "on", "cat"], index=False).sections),
        EC, 32, "tokens 1 and 4 are both \"cat\", no VOCAB_INDEX", entry=0)

    # rule 33: the hash index (8 slots at B.sec[1])
    I = B.sec[1]
    slots = [(B.get(I + 8 * k, "<I"), B.get(I + 8 * k + 4, "<I")) for k in range(8)]
    where = {sid: k for k, (sid, _) in enumerate(slots) if sid != NONE}
    empty = [k for k, (sid, _) in enumerate(slots) if sid == NONE]

    def slot(k, sid, tag, lay=None):
        L = lay or base()
        L.put(L.sec[1] + 8 * k, "<I", sid)
        L.put(L.sec[1] + 8 * k + 4, "<I", tag)
        return L
    add("33-missing-id", slot(where[3], NONE, 0).fix(), EC, 33, "id 3 absent from the index", entry=1)
    add("33-wrong-tag", slot(where[2], 2, slots[where[2]][1] ^ 1).fix(), EC, 33, "id 2 with a wrong tag",
        I + 8 * where[2] + 4, entry=1)
    add("33-duplicate-id", slot(empty[0], 1, fnv1a64(b"cat") >> 32).fix(), EC, 33,
        "id 1 in two slots", entry=1)
    add("33-empty-slot-tag", slot(empty[0], NONE, 7).fix(), EC, 33, "an empty slot with tag 7",
        I + 8 * empty[0] + 4, entry=1)
    add("33-id-out-of-range", slot(empty[0], 5, 0).fix(), EC, 33, "a slot with id 5 for 5 tokens",
        I + 8 * empty[0], entry=1)
    # move an id one slot before its home slot, past an empty slot: the lookup stops before reaching it
    home = {i: fnv1a64(BASE_TOKENS[i].encode()) & 7 for i in range(5)}
    victim = next(i for i in range(5) if slots[(home[i] - 1) % 8][0] == NONE and where[i] == home[i])
    L = slot(where[victim], NONE, 0)
    slot((home[victim] - 1) % 8, victim, slots[where[victim]][1], L)
    add("33-unreachable", L.fix(), EC, 33, "id %d stored before its home slot, behind an empty slot" % victim,
        entry=1)

    # rule 34: section CRCs
    L = base(); L.data[L.sec[3] + 5] ^= 0x40
    add("34-table-bytes", L, EC, 34, "a byte of the uncompressed TABLE changed, CRC not updated", entry=3)
    L = base(compress=True); L.put(L.entry(0) + 32, "<I", L.get(L.entry(0) + 32, "<I") ^ 1); L.fix(sections=False)
    add("34-deflated-vocab-crc", L, EC, 34, "deflated VOCAB with a wrong crc32 (checked at open)", entry=0)
    L = base(); L.put(E(2) + 32, "<I", L.get(E(2) + 32, "<I") ^ 0x80000000); L.fix(sections=False)
    add("34-counts-crc", L, EC, 34, "VOCAB_COUNTS crc32 with bit 31 flipped", entry=2)
    L = model_file(lambda m: None, meta="")
    L.put(L.entry(7) + 32, "<I", 1); L.fix(sections=False)
    add("34-empty-section-crc", L, EC, 34, "an empty METADATA section with crc32 1 (the CRC of 0 bytes is 0)",
        entry=7)
    L = model_file(lambda m: m.sections.append(Section(100, b"unknown payload")))
    L.data[L.sec[8]] ^= 1; L.fix(sections=False)
    add("34-unknown-type-crc", L, EC, 34, "an unknown optional section whose bytes do not match its crc32",
        entry=8)

    # rule 35: deflate streams (stored bytes overridden; CRCs computed over them)
    def stream(f, dec_delta=0, i=3):
        def g(m):
            s = m.sections[i]
            s.stored = f(deflate(s.payload))
            s.decoded_length = len(s.payload) + dec_delta
        return g
    for nm, f, dd, what in (
            ("trailing", lambda z: z + b"\0\0\0\0", 0, "4 bytes after the end of the zlib stream"),
            ("adler", lambda z: z[:-1] + bytes([z[-1] ^ 1]), 0, "wrong Adler-32"),
            ("truncated", lambda z: z[:-6], 0, "stream cut 6 bytes before its end"),
            ("header", lambda z: b"\x78\x9d" + z[2:], 0, "zlib header check bits wrong"),
            ("dictionary", lambda z: b"\x78\xbb" + u32(1) + z[2:], 0, "zlib stream asking for a preset "
                                                                       "dictionary"),
            ("not-zlib", lambda z: bytes(len(z)), 0, "zero bytes instead of a zlib stream")):
        add("35-deflate-" + nm, model_file(stream(f, dd), compress=True), EC, 35, "deflated TABLE: " + what,
            entry=3)

    # decoded_length of METADATA is not tied to params (rule 29 only caps it), so rule 35 is the first broken
    add("35-deflate-short", model_file(stream(lambda z: z, 4, 7), compress=True), EC, 35,
        "deflated METADATA that inflates to 4 bytes less than decoded_length", entry=7)
    add("35-deflate-long", model_file(stream(lambda z: z, -4, 7), compress=True), EC, 35,
        "deflated METADATA that inflates to 4 bytes more than decoded_length", entry=7)

    # rule 36: scales (ROW_SCALES at section 6, 2 values)
    S6 = B.sec[6]
    add("36-scale-nan", patched(S6, "<I", 0x7FC00000), EC, 36, "scale of row 0 is NaN", S6, entry=6)
    add("36-scale-inf", patched(S6 + 4, "<I", 0x7F800000), EC, 36, "scale of row 1 is +inf", S6 + 4, entry=6)
    add("36-scale-neg-inf", patched(S6 + 4, "<I", 0xFF800000), EC, 36, "scale of row 1 is -inf", S6 + 4,
        entry=6)

    def comp_scale(m):
        m.sections[6].payload = u32(0x3F000000) + u32(0x7FA00000)
    add("36-deflated-scale-nan", model_file(comp_scale, compress=True), EC, 36,
        "deflated ROW_SCALES with a signalling NaN", entry=6)

    # rule 37: metadata
    for nm, text, what in (("utf8", b"name: caf\xe9\n", "Latin-1 byte E9"),
                           ("sequence", b"- a\n- b\n", "root is a sequence"),
                           ("scalar", b"just text\n", "root is a scalar"),
                           ("two-documents", b"a: 1\n---\nb: 2\n", "two documents"),
                           ("syntax", b"a: [1, 2\n", "unclosed flow sequence"),
                           ("indent", b"a:\n  b: 1\n c: 2\n", "bad indentation")):
        add("37-metadata-" + nm, model_file(lambda m: None, meta=text), EC, 37, "METADATA: " + what, entry=7)
    add("37-deflated-metadata", model_file(lambda m: None, compress=True, meta=b"- x\n"), EC, 37,
        "deflated METADATA whose root is a sequence", entry=7)

    # rule 38: padding
    pad0 = B.sec[0] + 62
    L = base(); L.data[pad0] = 1; L.fix()
    add("38-padding-between", L, EC, 38, "first padding byte after the VOCAB is 01", pad0)
    L = base(); L.data[B.dir - 1] = 0xFF; L.fix()
    add("38-padding-before-directory", L, EC, 38, "last padding byte before the directory is FF", B.dir - 1)
    L = base(header_size=136); L.data[136] = 1; L.fix()
    add("38-padding-after-header", L, EC, 38, "first padding byte after a 136-byte header is 01", 136)
    return S


# ---- annotated hex dump (FORMAT.md 11) ----

def annotate(lay, m):
    """(offset, length, comment) for every byte of a built file, in file order."""
    d, F = lay.data, []
    g = lambda off, fmt: struct.unpack_from(fmt, d, off)[0]
    F += [(0, 9, "magic"), (9, 1, "zero"), (10, 2, "byte_order 0xFEFF"),
          (12, 2, "version_major %d" % g(12, "<H")), (14, 2, "version_minor %d" % g(14, "<H")),
          (16, 4, "header_size %d" % g(16, "<I")), (20, 4, "alignment %d" % g(20, "<I")),
          (24, 8, "file_length %d" % g(24, "<Q")), (32, 8, "directory_offset 0x%x" % g(32, "<Q")),
          (40, 8, "directory_length %d" % g(40, "<Q")), (48, 4, "directory_crc32 0x%08x" % g(48, "<I")),
          (52, 4, "flags 0"), (56, 68, "reserved (zero)"), (124, 4, "header_crc32 0x%08x" % g(124, "<I"))]
    pos = lay.header_size
    for i, s in enumerate(m.sections):
        off = lay.sec[i]
        if off > pos:
            F.append((pos, off - pos, "padding to a multiple of %d" % lay.alignment))
        tn = TYPE_NAMES.get(s.type, "type %d" % s.type)
        if s.type == VOCAB and s.codec == 0:
            n = g(lay.entry(i) + 48, "<Q")
            for k in range(n + 1):
                F.append((off + 8 * k, 8, "VOCAB offsets[%d] = %d" % (k, g(off + 8 * k, "<Q"))))
            for k in range(n):
                a, b = g(off + 8 * k, "<Q"), g(off + 8 * k + 8, "<Q")
                F.append((off + 8 * (n + 1) + a, b - a, "VOCAB token %d %s" % (k, yq(d[off + 8 * (n + 1) + a:
                                                                                  off + 8 * (n + 1) + b]))))
        elif s.type == VOCAB_INDEX and s.codec == 0:
            voc = m.sections[s.link]
            vn = g(lay.entry(s.link) + 48, "<Q")
            ns = len(s.payload) // 8
            vo = lay.sec[s.link]
            for k in range(ns):
                sid, tag = g(off + 8 * k, "<I"), g(off + 8 * k + 4, "<I")
                if sid == NONE:
                    F.append((off + 8 * k, 8, "VOCAB_INDEX slot %d: empty (id NONE, tag 0)" % k))
                else:
                    a, b = g(vo + 8 * sid, "<Q"), g(vo + 8 * sid + 8, "<Q")
                    t = bytes(d[vo + 8 * (vn + 1) + a:vo + 8 * (vn + 1) + b])
                    h = fnv1a64(t)
                    F.append((off + 8 * k, 8, "VOCAB_INDEX slot %d: id %d, tag 0x%08x; fnv1a64(%s) = 0x%016x, "
                                              "home %d" % (k, sid, tag, yq(t), h, h & (ns - 1))))
            del voc
        elif s.type == TABLE and s.codec == 0:
            dt, rows, cols = g(lay.entry(i) + 48, "<I"), g(lay.entry(i) + 56, "<Q"), g(lay.entry(i) + 64, "<Q")
            es = DTYPE_SIZE[dt]
            for r in range(rows):
                vals = readback(dt, bytes(d[off + r * cols * es:off + (r + 1) * cols * es]), 1, cols, None
                                if dt != I8 else [0x3F800000])
                F.append((off + r * cols * es, cols * es, "TABLE row %d: %s" % (r, ", ".join(
                    repr(float("%.9g" % bits_f32(v))) for v in vals))))
        else:
            F.append((off, len(s.stored_bytes()), "%s payload" % tn))
        pos = off + len(s.stored_bytes())
    if lay.dir > pos:
        F.append((pos, lay.dir - pos, "padding to a multiple of %d" % lay.alignment))
    D = lay.dir
    F += [(D, 4, "directory: entry_count %d" % g(D, "<I")), (D + 4, 4, "entry_size %d" % g(D + 4, "<I")),
          (D + 8, 4, "names_length %d" % g(D + 8, "<I")), (D + 12, 4, "reserved (zero)")]
    for i in range(lay.n):
        e = lay.entry(i)
        t = g(e, "<H")
        F += [(e, 8, "entry %d: type %d %s, flags %d, codec %d, filter %d, reserved" %
               (i, t, TYPE_NAMES.get(t, "?"), g(e + 2, "<H"), d[e + 4], d[e + 5])),
              (e + 8, 8, "  offset 0x%x" % g(e + 8, "<Q")), (e + 16, 8, "  stored_length %d" % g(e + 16, "<Q")),
              (e + 24, 8, "  decoded_length %d" % g(e + 24, "<Q")), (e + 32, 4, "  crc32 0x%08x" % g(e + 32, "<I")),
              (e + 36, 4, "  link %s" % ("NONE" if g(e + 36, "<I") == NONE else g(e + 36, "<I"))),
              (e + 40, 4, "  name_offset %d" % g(e + 40, "<I")), (e + 44, 4, "  name_length %d" % g(e + 44, "<I"))]
        if t == VOCAB:
            F += [(e + 48, 8, "  n_tokens %d" % g(e + 48, "<Q")), (e + 56, 8, "  blob_length %d" % g(e + 56, "<Q")),
                  (e + 64, 16, "  unk_id, pad_id, bos_id, eos_id: NONE"), (e + 80, 4, "  vocab_flags 0"),
                  (e + 84, 12, "  unused params (zero)")]
        elif t == VOCAB_INDEX:
            F += [(e + 48, 8, "  n_slots %d" % g(e + 48, "<Q")), (e + 56, 4, "  hash 1 (FNV-1a 64)"),
                  (e + 60, 36, "  unused params (zero)")]
        elif t == TABLE:
            F += [(e + 48, 4, "  dtype %d (%s)" % (g(e + 48, "<I"), DTYPE_NAMES.get(g(e + 48, "<I"), "?"))),
                  (e + 52, 4, "  rank %d" % g(e + 52, "<I")), (e + 56, 8, "  rows %d" % g(e + 56, "<Q")),
                  (e + 64, 8, "  cols %d" % g(e + 64, "<Q")), (e + 72, 24, "  unused params (zero)")]
        else:
            F.append((e + 48, 48, "  params"))
    nl = g(D + 8, "<I")
    F.append((lay.names(), nl, "name pool %s" % yq(d[lay.names():lay.names() + nl])))
    return F


def hexdump(lay, m):
    out = []
    for off, ln, comment in annotate(lay, m):
        first = True
        for k in range(0, max(ln, 1), 16):
            chunk = lay.data[off + k:off + min(k + 16, ln)]
            if not chunk:
                break
            if not first and all(b == 0 for b in chunk) and "padding" in comment or (
                    not first and "reserved" in comment):
                out.append("%08x: %-39s  %s" % (off + k, "00 ..." if all(b == 0 for b in chunk) else "", "  ..."))
                break
            hx = " ".join(bytes(chunk[j:j + 2]).hex() for j in range(0, len(chunk), 2))
            out.append("%08x: %-39s  %s" % (off + k, hx, comment if first else "  (cont.)"))
            first = False
    return "\n".join(out) + "\n"


# ---- main ----

def write_if_changed(path, data):
    mode = "wb" if isinstance(data, (bytes, bytearray)) else "w"
    with open(path, mode, **({} if mode == "wb" else {"encoding": "utf-8", "newline": "\n"})) as f:
        f.write(data)


def main():
    ap = argparse.ArgumentParser(description="Writes the .embt conformance corpus (format/valid, format/invalid).")
    ap.add_argument("--out", default=os.path.dirname(os.path.abspath(__file__)),
                    help="output directory (default: the directory of this script)")
    ap.add_argument("--hexdump", metavar="NAME", help="print an annotated hex dump of valid sample NAME and exit")
    a = ap.parse_args()
    V = valid_samples()
    if a.hexdump:
        m, kw, _ = V[a.hexdump]
        sys.stdout.write(hexdump(build_model(m, kw), m))
        return 0
    for sub in ("valid", "invalid"):
        p = os.path.join(a.out, sub)
        os.makedirs(p, exist_ok=True)
        for f in os.listdir(p):
            if f.endswith(".embt") or f.endswith(".yaml"):
                os.remove(os.path.join(p, f))
    for name, (m, kw, desc) in sorted(V.items()):
        lay = build_model(m, kw)
        for s in m.sections:
            if s.codec == 1:
                assert len(s.payload) <= 1032 * len(s.stored_bytes()) + 64
        write_if_changed(os.path.join(a.out, "valid", name + ".embt"), bytes(lay.data))
        write_if_changed(os.path.join(a.out, "valid", name + ".yaml"), expected_valid(m, lay, desc))
    for name, (data, status, rule, desc, off, section, entry) in sorted(invalid_samples().items()):
        write_if_changed(os.path.join(a.out, "invalid", name + ".embt"), data)
        write_if_changed(os.path.join(a.out, "invalid", name + ".yaml"),
                         expected_invalid(status, rule, desc, off, section, entry))
    return 0


if __name__ == "__main__":
    sys.exit(main())
