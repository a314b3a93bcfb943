"""Unit checks against the Go side's documented vectors: XXH64 (both
implementations), the Vary value splitter, URL splitting and the
invalidation record encoding of docs/invalidation.md."""

from __future__ import annotations

import os
import random
from typing import Any, Dict

import pytest

import zerohop.reader as zr
from zerohop import Reader, invalidate
from zerohop._xxh64 import xxh64_pure
from zerohop.key import normalize_field_value, primary_key, split_list
from zerohop.url import split_url

from conftest import GOLDEN_DIR


def test_xxh64_pure_matches_the_golden_hashes(golden: Dict[str, Any]) -> None:
    seed = int(golden["header"]["seed"], 16)
    for l in golden["lookups"]:
        assert xxh64_pure(bytes.fromhex(l["key_hex"]), seed) == int(l["hash"], 16), l["name"]


def test_xxh64_pure_matches_xxhash() -> None:
    xxhash = pytest.importorskip("xxhash")
    rng = random.Random(1)
    for n in list(range(0, 80)) + [255, 1000, 4096]:
        data = bytes(rng.getrandbits(8) for _ in range(n))
        for seed in (0, 1, 0xC0FFEE0123456789, (1 << 64) - 1):
            assert xxh64_pure(data, seed) == xxhash.xxh64_intdigest(data, seed)


def test_golden_lookups_with_pure_xxh64(golden: Dict[str, Any], monkeypatch: Any) -> None:
    monkeypatch.setattr(zr, "xxh64", xxh64_pure)
    with Reader(GOLDEN_DIR, offline=True) as r:
        for l in golden["lookups"]:
            got = r.get_stale(bytes.fromhex(l["key_hex"]), golden["now_ms"])
            assert (got is not None) == (l["expect"] != "miss"), l["name"]


@pytest.mark.parametrize(
    "lines,want",
    [
        ([b"gzip, br"], b"gzip,br"),
        ([b"gzip", b" br"], b"gzip,br"),
        ([b"gzip", b""], b"gzip,"),
        ([b'"a , b", c'], b'"a , b",c'),
        ([b' "a , b"  ,c '], b'"a , b",c'),
        ([b'"a, b", c'], b'"a, b",c'),
        ([b'"x\\", y"'], b'"x\\", y"'),
        ([b'a\\,b'], b"a\\,b"),  # a backslash outside quotes is a plain byte: a\ and b
        ([b'"open, quote', b"next, line"], b'"open, quote,next,line'),
        ([b"text/html; q=0.9"], b"text/html; q=0.9"),
    ],
)
def test_normalize_field_value(lines: Any, want: bytes) -> None:
    assert normalize_field_value(lines) == want


def test_split_list_escape_at_end() -> None:
    assert split_list(b'"a\\') == [b'"a\\']


def test_primary_key_doc_example() -> None:
    # docs/format.md, "Worked examples".
    k = primary_key("GET", "HTTPS", "Example.COM:443", "/a?b=1")
    assert k.hex() == "0300474554" + "050068747470" + "73" + "0b006578616d706c652e636f6d" + "060000002f613f623d31"


@pytest.mark.parametrize(
    "url,want",
    [
        ("http://h", ("http", "h", "/")),
        ("http://u:p@h:8080/a?b#frag", ("http", "h:8080", "/a?b")),
        ("http://h?q=1", ("http", "h", "/?q=1")),
        ("https://h/caf%C3%A9", ("https", "h", "/caf%C3%A9")),
    ],
)
def test_split_url(url: str, want: Any) -> None:
    assert split_url(url) == want


def test_record_encoding_matches_docs() -> None:
    # docs/invalidation.md: a soft tag purge "t1" from origin "ab", seq 7.
    rec = invalidate.Record(invalidate.KIND_TAG, invalidate.SOFT, b"t1", origin="ab", time_ms=1700000000123, seq=7)
    want = "5a484956 9999aa1a 25000000 01 03 01 00 0700000000000000 7b68e5cf8b010000 02 6162 7431"
    assert rec.encode().hex() == want.replace(" ", "")
    assert invalidate.crc32c(b"123456789") == 0xE3069283


def test_log_append_resynchronises(tmp_path: Any) -> None:
    """Garbage and a torn record in the log are skipped when finding the
    last sequence number, as the Go appender does."""
    path = str(tmp_path / "inval.log")
    good = invalidate.Record(invalidate.KIND_ALL, seq=41, time_ms=1).encode()
    torn = invalidate.Record(invalidate.KIND_TAG, payload=b"x", seq=99, time_ms=1).encode()[:20]
    with open(path, "wb") as f:
        f.write(b"garbage!" + good + torn + good.replace(b"\x29\x00", b"\x2a\x00", 1))
    lg = invalidate.InvalidationLog(path, origin="test")
    seq = lg.append(invalidate.Record.tag("t"))
    assert seq == 42  # 41 is the last valid record; the altered copy fails its CRC
    assert lg.append(invalidate.Record.key("http://h/x")) == 43
    lg.close()
    with pytest.raises(ValueError):
        invalidate.Record.key("not a url").validate()
    with pytest.raises(ValueError):
        invalidate.Record.tag("").validate()
    assert os.path.getsize(path) > 0
