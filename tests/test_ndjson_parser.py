"""The NDJSON vector parser: the C fast path gives exactly what the general parser gives — the same
keys, line numbers, float32 bits and error messages — on every kind of line, including those it
hands back to the general parser."""

from __future__ import annotations

import json

import numpy as np
import pytest

from catalog.vectors import reading
from catalog.vectors.parsing import Errors as _Errors, parse_lines as _parse_lines
from catalog.vectors.writing import Scratch as _Scratch

pytest.importorskip("catalog._ndjson", reason="the native parser was not built (no C compiler)")


def parse(path, dims, tmp_path, native, monkeypatch):
    """(keys, lines, vectors, errors) of one file, with the fast path on or off."""
    monkeypatch.setenv("CATALOG_NDJSON_NATIVE", "1" if native else "0")
    scratch = _Scratch(dims, tmp_path)
    errors = _Errors()
    try:
        with reading.open_lines(path) as fh:
            keys, lines = _parse_lines(fh, dims, scratch, errors)
        vecs = np.concatenate([b.copy() for _, b in scratch.chunks()]) if scratch.n else np.zeros((0, dims), np.float32)
    finally:
        scratch.close()
    return keys, lines, vecs, (errors.total, errors.items)


def both(path, dims, tmp_path, monkeypatch):
    fast = parse(path, dims, tmp_path, True, monkeypatch)
    slow = parse(path, dims, tmp_path, False, monkeypatch)
    assert fast[0] == slow[0] and fast[1] == slow[1] and fast[3] == slow[3]
    assert fast[2].tobytes() == slow[2].tobytes()  # bit for bit, -0.0 included
    return fast


NUMBER_FORMS = [
    "0", "-0", "0.0", "-0.0", "1", "-1", "7", "10", "1234567", "12345678", "123456789012345678901234567890",
    "0.5", "-0.125", "0.1", "0.2", "0.3", "3.14159265358979323846", "1.0000000000000002", "0.000001",
    "0.00000001", "1e-7", "1E-7", "1e+3", "1e3", "-2.5e-3", "6.02214076e23", "1.17549435e-38", "1e-45",
    "1e-50", "3.4028234e38", "0.12345678", "99999999.99999999", "1.5e0", "123.4567", "-9876543.2",
    "0.9999999999999999999999", "4.9406564584124654e-324",
]


def test_every_number_form_reads_as_the_general_parser_reads_it(tmp_path, monkeypatch):
    dims = 4
    lines = []
    neg = [form[1:] if form.startswith("-") else "-" + form for form in NUMBER_FORMS]
    for i, (form, minus) in enumerate(zip(NUMBER_FORMS, neg)):
        lines.append(f'{{"id": "k{i}", "vector": [{form}, 1, {minus}, 0.5]}}')
    path = tmp_path / "numbers.ndjson"
    path.write_text("\n".join(lines) + "\n")
    keys, n, vecs, (total, _) = both(path, dims, tmp_path, monkeypatch)
    assert total == 0 and n == len(NUMBER_FORMS) and len(keys) == len(NUMBER_FORMS)
    for (line_no, key), form, minus, row in zip(keys, NUMBER_FORMS, neg, vecs):
        assert row[0] == np.float32(float(form)) and row[2] == np.float32(float(minus)), (line_no, key, form)


def test_random_float32_values_in_several_spellings_match_bit_for_bit(tmp_path, monkeypatch):
    rng = np.random.default_rng(7)
    dims = 64
    vals = np.concatenate([
        rng.standard_normal(4000), rng.standard_normal(2000) * 1e-4, rng.standard_normal(2000) * 1e6,
        rng.uniform(-1, 1, 2000).round(6),
    ]).astype(np.float32)
    rng.shuffle(vals)
    spellings = [repr, lambda x: f"{x:.9g}", lambda x: f"{x:.17g}", lambda x: f"{x:.6f}", lambda x: f"{x:.3e}"]
    lines = []
    for i in range(len(vals) // dims):
        fmt = spellings[i % len(spellings)]
        lines.append('{"id":"r%d","vector":[%s]}' % (i, ",".join(fmt(float(v)) for v in vals[i * dims:(i + 1) * dims])))
    path = tmp_path / "random.ndjson"
    path.write_text("\n".join(lines) + "\n")
    keys, _, vecs, (total, _) = both(path, dims, tmp_path, monkeypatch)
    assert total == 0 and len(keys) == len(lines) == len(vecs)


def test_layouts_the_fast_path_reads_and_those_it_hands_back(tmp_path, monkeypatch):
    v = "[1.5, -2, 0.25]"
    lines = [
        '{"id": "plain", "vector": %s}' % v,
        '  {"vector": %s, "id": "reversed"}  ' % v,
        '{"id":"trailing-comma","vector":%s},' % v,
        '{"id":"crlf","vector":%s}\r' % v,
        '\t{ "id" : "spaces" , "vector" : [ 1.5 , -2 , 0.25 ] }\t',
        "",
        "   ",
        '{"id": "extra-field", "vector": %s, "note": "x"}' % v,
        '{"id": "esc\\"aped", "vector": %s}' % v,
        '{"id": "caf\u00e9", "vector": %s}' % v,
        '{"id": " padded ", "vector": %s}' % v,
        '{"id": "", "vector": %s}' % v,
        '{"id": "short", "vector": [1, 2]}',
        '{"id": "long", "vector": [1, 2, 3, 4]}',
        '{"id": "zero", "vector": [0, 0.0, -0]}',
        '{"id": "huge", "vector": [1e39, 1, 1]}',
        '{"id": "nan", "vector": [NaN, 1, 1]}',
        '{"id": "string", "vector": ["1", 1, 1]}',
        '{"id": "leading-zero", "vector": [01, 1, 1]}',
        '{"id": "dot", "vector": [1., 1, 1]}',
        '{"id": "bad-json", "vector": [1, 1, 1]',
        '{"id": "dup", "id": "dup2", "vector": %s}' % v,
        '{"id": 5, "vector": %s}' % v,
        "[1, 2, 3]",
        ",",
        '{"id": "tiny", "vector": [1e-50, 0, 0]}',
        '{"id": "last-no-newline", "vector": %s}' % v,
    ]
    path = tmp_path / "layouts.ndjson"
    path.write_text("\n".join(lines))  # the last line has no newline
    keys, n, vecs, (total, items) = both(path, 3, tmp_path, monkeypatch)
    assert n == len(lines)
    accepted = [k for _, k in keys]
    assert accepted[:6] == ["plain", "reversed", "trailing-comma", "crlf", "spaces", "extra-field"]
    assert {"esc\"aped", "café", "padded", "last-no-newline"} <= set(accepted)
    assert "tiny" not in accepted and "dup" not in accepted  # zero once rounded to float32; "id" twice
    reasons = dict(items)
    assert "all zeros once rounded" in reasons[lines.index('{"id": "tiny", "vector": [1e-50, 0, 0]}') + 1]
    assert "appears twice" in reasons[lines.index('{"id": "dup", "id": "dup2", "vector": %s}' % v) + 1]
    assert "expected 3" in reasons[13] and "expected 3" in reasons[14]
    assert "all zeros" in reasons[15]
    assert "float32" in reasons[16] or "Infinity" in reasons[16]
    assert "NaN" in reasons[17]
    assert "not a number" in reasons[18]
    assert "malformed JSON" in reasons[21]


def test_lines_longer_than_the_read_block_and_blocks_ending_mid_line(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "READ_BLOCK", 1000)  # every line crosses a block boundary
    dims = 300
    rng = np.random.default_rng(3)
    vals = rng.standard_normal((40, dims)).astype(np.float32)
    path = tmp_path / "long.ndjson"
    path.write_text("".join(json.dumps({"id": f"k{i}", "vector": [float(x) for x in row]}) + "\n"
                            for i, row in enumerate(vals)))
    keys, n, vecs, (total, _) = both(path, dims, tmp_path, monkeypatch)
    assert total == 0 and n == 40 and [k for _, k in keys] == [f"k{i}" for i in range(40)]
    assert np.array_equal(vecs, vals)


def test_parse_block_refuses_a_buffer_without_its_padding():
    from catalog import _ndjson

    out = np.zeros((1, 2), np.float32)
    data = b'{"id": "a", "vector": [1, 2]}\n'
    with pytest.raises(ValueError, match="bad arguments"):
        _ndjson.parse_block(data, len(data), 0, 2, out, 0, 0)
    with pytest.raises(ValueError, match="padding"):
        _ndjson.parse_block(data + b"12345678", len(data), 0, 2, out, 0, 0)
    pos, row, line_no, keys, stopped = _ndjson.parse_block(data + b"\n" * 8, len(data), 0, 2, out, 0, 0)
    assert (pos, row, line_no, keys, stopped) == (len(data), 1, 1, [(1, "a")], False)
    assert out.tolist() == [[1.0, 2.0]]
