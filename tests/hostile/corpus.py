"""The hostile corpus: nasty records, each with what ingestion must make of it.

``corpus.jsonl`` (beside this file, committed) is what ``build()`` writes: one JSON object per line with the
case, the expectation (``accepted``, ``duplicate``, ``conflict`` or ``rejected``), the field a rejection must
name and the record's raw bytes (base64: some are not UTF-8). Regenerate with
``.venv/bin/python -m tests.hostile.corpus``; a unit test checks the file is what this module builds.

Classes: instants and dates at and past every edge, time zones, email fields, numbers JSON or PostgreSQL or
Python cannot carry, NUL and surrogates in every attribute, keys too long in bytes, broken JSON, wrong types and
shapes, money and enumerations, hostile but valid text (markup, right-to-left, zero-width, long), same id with
other content. Accepted events carry account and KAM profiles, so that they are scored, alerted and rendered.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

CORPUS = Path(__file__).with_name("corpus.jsonl")
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
"""The ingesting clock of every hostile run (the time window is relative to it)."""
WHEN = "2026-11-20T10:00:00+01:00"
KAM = "kam-hostile"
ACCOUNT = "hostile-acme"


@dataclass(frozen=True)
class Case:
    case: str
    expect: str
    field: str | None
    raw: bytes

    def line(self) -> bytes:
        document = {"case": self.case, "expect": self.expect, "field": self.field, "raw": _b64(self.raw)}
        return json.dumps(document, ensure_ascii=True).encode()

    @classmethod
    def of(cls, line: bytes) -> Case:
        document = json.loads(line)
        return cls(document["case"], document["expect"], document["field"], base64.b64decode(document["raw"]))


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


_serial = iter(range(1, 100_000))


def envelope(type_: str, data: Any = None, *, subject: str = ACCOUNT, **overrides: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "specversion": "1.0",
        "id": f"h-{next(_serial)}",
        "source": "hostile",
        "type": f"kamwatch.{type_}.v1",
        "subject": subject,
        "time": WHEN,
    }
    if data is not None:
        document["data"] = data
    for key, value in overrides.items():
        if value is ...:
            document.pop(key, None)
        else:
            document[key] = value
    return document


def dump(document: Any) -> bytes:
    return json.dumps(document, ensure_ascii=False).encode("utf-8", "surrogatepass")


def usage(data: Any = None, **overrides: Any) -> dict[str, Any]:
    default = {"metric": "logins", "quantity": 3, "user_id": "u1"}
    return envelope("usage", default if data is None else data, **overrides)


def account(subject: str, **data: Any) -> dict[str, Any]:
    profile = {"name": "Acme", "owner_kam_id": KAM, "arr": "480000", "currency": "EUR", "tier": "strategic"}
    return envelope("account", {**profile, **data}, subject=subject)


def kam(**data: Any) -> dict[str, Any]:
    profile = {"name": "Léa", "email": "lea@example.com", "locale": "fr", "timezone": "Europe/Paris"}
    return envelope("kam", {**profile, **data}, subject=KAM)


def payment(**data: Any) -> dict[str, Any]:
    invoice = {"invoice_id": "INV-1", "status": "failed", "amount": "1250.50", "currency": "EUR"}
    return envelope("payment", {**invoice, "due_date": "2026-11-01", **data})


def contact(**data: Any) -> dict[str, Any]:
    return envelope("contact_change", {"contact_id": "C-1", "change": "left_company", "role": "champion", **data})


def accepted(case: str, document: Any) -> Case:
    return Case(case, "accepted", None, document if isinstance(document, bytes) else dump(document))


def rejected(case: str, field: str | None, raw: Any) -> Case:
    return Case(case, "rejected", field, raw if isinstance(raw, bytes) else dump(raw))


def spliced(document: dict[str, Any], attribute: str, literal: bytes) -> bytes:
    """The document with ``attribute`` (top level) written as the raw JSON ``literal``."""
    return dump({**document, attribute: "@@"}).replace(b'"@@"', literal)


def cases() -> Iterator[Case]:
    yield from _valid()
    yield from _instants()
    yield from _zones_and_emails()
    yield from _numbers()
    yield from _strings()
    yield from _structure()
    yield from _money_and_enumerations()
    yield from _versions()


def _valid() -> Iterator[Case]:
    # Profiles first (in a batch they come before the events that need them); hostile yet valid text.
    yield accepted("KAM profile", kam())
    yield accepted("account with markup in its name", account(ACCOUNT, name="<script>alert(1)</script> & Cie"))
    yield accepted(
        "account with Slack control sequences", account("hostile-slack", name="<!channel> *Acme* `x` <@U1|y>")
    )
    yield accepted("account with right-to-left override", account("hostile-rtl", name="\u202eAcme\u202c שלום مرحبا"))
    yield accepted("account with zero-width characters", account("hostile-zw", name="A\u200bc\u200dm\ufeffe"))
    yield accepted("account name of 1000 characters", account("hostile-long", name="N" * 1000))
    yield accepted("account with emoji", account("hostile-emoji", name="Acme 🚀👩‍👩‍👧 \U0001f600"))
    yield accepted("account with a zero ARR", account("hostile-zero", arr="0"))
    yield accepted("account with the largest ARR", account("hostile-rich", arr="9999999999999999.9999"))
    yield accepted("account with a parent", account("hostile-child", parent_account_id=ACCOUNT))
    yield accepted("account id of 256 bytes", account("a" * 256))
    yield accepted("account id of 64 four-byte characters", account("\U0001f600" * 64))
    yield accepted("usage", usage())
    yield accepted("usage of zero", usage(data={"quantity": 0}))
    yield accepted("usage, a big quantity", usage(data={"quantity": "999999999999999999.999999"}))
    yield accepted("usage, fractional seconds and a +14:00 offset", usage(time="2026-11-20T23:59:59.999999+14:00"))
    yield accepted("usage, -12:00 offset", usage(time="2026-11-19T12:00:00-12:00"))
    yield accepted("usage, lower-case t and z", usage(time="2026-11-20t10:00:00z"))
    yield accepted("usage at the earliest accepted time", usage(time="1970-01-01T00:00:00Z"))
    yield accepted("usage 23 hours ahead (inside the window)", usage(time="2026-12-02T11:00:00Z"))
    yield accepted("a payment failed", payment())
    yield accepted("a payment refunded, negative amount", payment(invoice_id="INV-2", status="refunded", amount=-5))
    yield accepted("a payment due in 2199", payment(invoice_id="INV-3", status="issued", due_date="2199-12-31"))
    yield accepted("champion left, hostile name", contact(name="<b>Claire</b> \u202eMartin", title="*CEO*"))
    yield accepted("contact with a quoted local part", contact(contact_id="C-2", email='"a,b"@example.com'))
    yield accepted(
        "urgent ticket", envelope("support_ticket", {"ticket_id": "T-1", "status": "opened", "priority": "urgent"})
    )
    yield accepted(
        "NPS detractor", envelope("engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 0})
    )
    yield accepted(
        "NPS given as 10.0", envelope("engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 10.0})
    )
    yield accepted("outcome renewed", envelope("outcome", {"outcome": "renewed", "arr_before": "1", "arr_after": 2}))
    yield accepted("extension attributes nested", usage(traceparent="00-ab-01", ext={"a": [1, {"b": None}], "ü": True}))
    yield accepted("an extension named with an empty string", usage(**{"": "empty name"}))
    yield accepted("an extension of 100 kB", usage(blob="x" * 100_000))
    yield accepted("500 extension attributes", usage(**{f"x{i}": i for i in range(500)}))
    yield accepted("largest and smallest doubles", usage(x=[1.7976931348623157e308, 2.2250738585072014e-308, -0.0]))
    yield accepted("extreme 64-bit integers", usage(x=[-(2**63), 2**63 - 1]))
    yield accepted("1e-400, read back as 0.0", spliced(usage(), "x", b"1e-400"))
    yield accepted("5e-324, a subnormal double", spliced(usage(), "x", b"5e-324"))
    yield accepted("an escaped emoji (a surrogate pair)", dump(usage(x="@@")).replace(b'"@@"', b'"\\ud83d\\ude00"'))
    yield accepted(
        "duplicate attribute names (the last one counts)",
        dump(usage()).replace(b'"subject"', b'"id":"dup-a","subject"', 1),
    )
    yield accepted("nesting 100 deep in an extension", spliced(usage(), "deep", b"[" * 100 + b"]" * 100))
    yield accepted("a string saying NaN and \\u0000 in words", usage(note="NaN Infinity \\u0000 1e400"))
    # the same event again, and the same id with other content
    twin = usage(id="twin-1")
    yield accepted("first version of twin-1", twin)
    yield Case("the same twin-1 again, spelled otherwise", "duplicate", None, json.dumps(twin, indent=2).encode())
    yield Case("twin-1 with other content", "conflict", "id", dump({**twin, "data": {"quantity": 99}}))


def _instants() -> Iterator[Case]:
    for case, value in [
        ("year 1", "0001-01-01T00:00:00Z"),
        ("before year 1 in UTC", "0001-01-01T00:00:00+01:00"),
        ("1899", "1899-12-31T23:59:59Z"),
        ("before 1970 (the window's start)", "1969-12-31T23:59:59Z"),
        ("9999", "9999-12-31T23:59:59Z"),
        ("9999 with a negative offset", "9999-12-31T23:59:59-05:00"),
        ("9998", "9998-06-01T00:00:00Z"),
        ("2200", "2200-01-01T00:00:00Z"),
        ("a year ahead (outside the window)", "2027-12-01T00:00:00Z"),
        ("two days ahead", "2026-12-03T12:00:01Z"),
        ("naive", "2026-11-20T10:00:00"),
        ("date only", "2026-11-20"),
        ("empty", ""),
        ("a word", "now"),
        ("month 13", "2026-13-01T00:00:00Z"),
        ("30 February", "2026-02-30T00:00:00Z"),
        ("hour 24", "2026-11-20T24:00:00Z"),
        ("leap second", "2026-06-30T23:59:60Z"),
        ("offset +25:00", "2026-11-20T10:00:00+25:00"),
        ("Arabic-Indic digits", "٢٠٢٦-11-20T10:00:00Z"),
        ("a NUL", "2026-11-20T10:00:00Z\u0000"),
        ("spaces around", " 2026-11-20T10:00:00Z "),
        ("six-digit year", "+12026-11-20T10:00:00Z"),
    ]:
        yield rejected(f"time: {case}", "time", usage(time=value))
    odd: list[tuple[str, Any]] = [("a number", 1763629200), ("null", None), ("a float", 1.5e9), ("an array", ["2026"])]
    for case, value in odd:
        yield rejected(f"time: {case}", "time", usage(time=value))
    payments: list[tuple[str, dict[str, Any], str]] = [
        ("paid_at after 9999 in UTC", {"paid_at": "9999-12-31T23:59:59-05:00"}, "data.paid_at"),
        ("paid_at a year ahead", {"status": "paid", "paid_at": "2027-12-01T00:00:00Z"}, "data.paid_at"),
        ("paid_at naive", {"paid_at": "2026-11-20T10:00:00"}, "data.paid_at"),
        ("paid_at a number", {"paid_at": 1763629200}, "data.paid_at"),
        ("due_date year 1", {"due_date": "0001-01-01"}, "data.due_date"),
        ("due_date 9999", {"due_date": "9999-12-31"}, "data.due_date"),
        ("due_date a number", {"due_date": 20261101}, "data.due_date"),
        ("due_date 30 February", {"due_date": "2026-02-30"}, "data.due_date"),
        ("due_date with a time", {"due_date": "2026-11-01T00:00:00Z"}, "data.due_date"),
        ("due_date null", {"due_date": None}, "data.due_date"),
    ]
    for case, data, field in payments:
        yield rejected(f"payment: {case}", field, payment(**data))
    renewals: list[tuple[str, Any]] = [
        ("9999", "9999-12-31"),
        ("1899", "1899-12-31"),
        ("empty", ""),
        ("a number", 20270131),
    ]
    for case, renewal in renewals:
        yield rejected(f"renewal_date: {case}", "data.renewal_date", account("hostile-renewal", renewal_date=renewal))


def _zones_and_emails() -> Iterator[Case]:
    for case, value in [
        ("trailing space", "Europe/Paris "),
        ("leading space", " Europe/Paris"),
        ("on Mars", "Mars/Olympus"),
        ("empty", ""),
        ("a path", "../../etc/passwd"),
        ("absolute path", "/usr/share/zoneinfo/UTC"),
        ("lower case", "europe/paris"),
        ("a newline", "Europe/Paris\n"),
        ("a NUL", "UTC\u0000"),
        ("500 characters", "A" * 500),
        ("a number", 1),
        ("null", None),
        ("an offset", "+01:00"),
    ]:
        yield rejected(f"timezone: {case}", "data.timezone", kam(timezone=value))
    for case, value in [
        ("two addresses", "a@example.com, b@example.com"),
        ("a semicolon list", "a@example.com;b@example.com"),
        ("CRLF header injection", "a@example.com\r\nBcc: evil@example.com"),
        ("a newline", "a@example.com\n"),
        ("a display name", "Léa <lea@example.com>"),
        ("angle brackets", "<lea@example.com>"),
        ("no at sign", "lea"),
        ("no local part", "@example.com"),
        ("no domain dot", "lea@localhost"),
        ("two at signs", "a@b@example.com"),
        ("a space", "lea dubois@example.com"),
        ("a comment", "lea(x)@example.com"),
        ("300 characters", "a" * 290 + "@example.com"),
        ("empty", ""),
        ("a number", 42),
        ("null", None),
    ]:
        yield rejected(f"KAM email: {case}", "data.email", kam(email=value))
    for case, value in [("two addresses", "a@example.com,b@example.com"), ("CRLF", "a@example.com\r\nX: y")]:
        yield rejected(f"contact email: {case}", "data.email", contact(email=value))


def _numbers() -> Iterator[Case]:
    for case, literal, field in [
        ("NaN in an extension", b"NaN", "x"),
        ("Infinity in an extension", b"Infinity", "x"),
        ("-Infinity in an extension", b"-Infinity", "x"),
        ("1e400", b"1e400", "x"),
        ("-1e400", b"-1e400", "x"),
        ("1e4301", b"1e4301", "x"),
        ("2 to the 64", b"18446744073709551616", "x"),
        ("below -2 to the 63", b"-9223372036854775809", "x"),
        ("a 200-digit integer", b"1" * 200, "x"),
        ("a 20000-digit fraction", b"0." + b"1" * 20000, "x"),
        ("NaN nested in arrays", b"[[1, [NaN]]]", "x.0.1.0"),
        ("1e400 in an object", b'{"y": {"z": 1e400}}', "x.y.z"),
    ]:
        yield rejected(f"number: {case}", field, spliced(usage(), "x", literal))
    yield rejected(
        "amount NaN, a bare literal", "data.amount", spliced(payment(), "x", b"0").replace(b'"1250.50"', b"NaN")
    )
    yield rejected(
        "ARR Infinity, a bare literal", "data.arr", dump(account("hostile-inf")).replace(b'"480000"', b"Infinity")
    )
    for case, literal in [("NaN", b"NaN"), ("1e400", b"1e400"), ("Infinity", b"Infinity")]:
        raw = dump(usage(data={"quantity": "@@"})).replace(b'"@@"', literal)
        yield rejected(f"quantity {case}", "data.quantity", raw)
    for case, value in [("a string NaN", "NaN"), ("a string Infinity", "Infinity"), ("a string 1e400", "1e400")]:
        yield rejected(f"quantity {case}", "data.quantity", usage(data={"quantity": value}))
    for case, value in [("NaN", "NaN"), ("Infinity", "Infinity"), ("1e400", "1e400"), ("sNaN", "sNaN")]:
        yield rejected(f"amount {case}", "data.amount", payment(amount=value))
    yield rejected("amount 21 digits", "data.amount", payment(amount="123456789012345678901"))
    yield rejected("amount 5 decimals", "data.amount", payment(amount="1.00001"))
    yield rejected("ARR negative", "data.arr", account("hostile-neg", arr="-1"))
    yield rejected("ARR 1e400", "data.arr", account("hostile-big", arr="1e400"))
    yield rejected(
        "csat 1.5",
        "data.csat",
        envelope("support_ticket", {"ticket_id": "T", "status": "opened", "priority": "low", "csat": 1.5}),
    )
    yield rejected(
        "nps 11",
        "data.nps_score",
        envelope("engagement", {"kind": "nps_survey", "outcome": "responded", "nps_score": 11}),
    )
    yield rejected(
        "arr_before 1e400", "data.arr_before", envelope("outcome", {"outcome": "renewed", "arr_before": "1e400"})
    )


def _strings() -> Iterator[Case]:
    for attribute in ("id", "source", "subject"):
        yield rejected(f"NUL in {attribute}", attribute, usage(**{attribute: "a\u0000b"}))
        yield rejected(
            f"lone high surrogate in {attribute}",
            None,
            dump(usage(**{attribute: "@@"})).replace(b'"@@"', b'"a\\ud800"'),
        )
        yield rejected(
            f"lone low surrogate in {attribute}",
            None,
            dump(usage(**{attribute: "@@"})).replace(b'"@@"', b'"\\udc00b"'),
        )
        yield rejected(f"{attribute} of 257 bytes", attribute, usage(**{attribute: "k" * 257}))
        yield rejected(f"{attribute} of 65 four-byte characters", attribute, usage(**{attribute: "\U0001f600" * 65}))
        yield rejected(f"{attribute} empty", attribute, usage(**{attribute: ""}))
        yield rejected(
            f"raw control character in {attribute}", None, dump(usage(**{attribute: "a\tb"})).replace(b"\\t", b"\t")
        )
        yield rejected(
            f"invalid UTF-8 in {attribute}", None, dump(usage(**{attribute: "@@"})).replace(b"@@", b"\xff\xfe")
        )
        yield rejected(
            f"overlong UTF-8 in {attribute}", None, dump(usage(**{attribute: "@@"})).replace(b"@@", b"\xc0\xaf")
        )
    yield rejected(
        "source and id of 512 four-byte characters", "id", usage(id="\U0001f600" * 512, source="\U0001f600" * 512)
    )
    yield rejected("NUL in data", "data.user_id", usage(data={"user_id": "u\u0000"}))
    yield rejected("NUL in an extension", "x", usage(x="\u0000"))
    yield rejected("NUL in an attribute name", "data.a\\u0000", usage(data={"a\u0000": 1}))
    yield rejected("NUL in a nested extension", "x.0.y", usage(x=[{"y": "\u0000"}]))
    yield rejected("lone surrogate in an extension", None, dump(usage(x="@@")).replace(b'"@@"', b'"\\udfff"'))
    yield rejected("lone surrogate in an extension name", None, dump(usage(x=1)).replace(b'"x"', b'"\\ud800"'))
    yield rejected("lone surrogate in data", None, dump(usage(data={"user_id": "@@"})).replace(b'"@@"', b'"\\ud800"'))
    yield rejected(
        "ticket id of 300 bytes",
        "data.ticket_id",
        envelope("support_ticket", {"ticket_id": "é" * 150, "status": "opened", "priority": "low"}),
    )
    yield rejected("invoice id of 257 bytes", "data.invoice_id", payment(invoice_id="i" * 257))
    yield rejected("owner KAM id of 257 bytes", "data.owner_kam_id", account("hostile-owner", owner_kam_id="k" * 257))
    yield rejected("contact name of 1001 characters", "data.name", contact(name="n" * 1001))
    yield rejected("account name of 1001 characters", "data.name", account("hostile-name", name="n" * 1001))
    yield rejected("account name empty", "data.name", account("hostile-empty", name=""))
    yield rejected("metric of 257 bytes", "data.metric", usage(data={"metric": "m" * 257}))


def _structure() -> Iterator[Case]:
    base = dump(usage())
    for case, raw in [
        ("empty", b""),
        ("blank", b" \t "),
    ]:
        yield rejected(f"record: {case}", None, raw)
    for case, raw in [
        ("null", b"null"),
        ("a number", b"42"),
        ("a string", b'"event"'),
        ("true", b"true"),
        ("an empty object", b"{}"),
        ("an array of events", b"[" + base + b"]"),
        ("an empty array", b"[]"),
    ]:
        yield rejected(f"record: {case}", "type" if raw == b"{}" else None, raw)
    for case, raw in [
        ("truncated", base[: len(base) // 2]),
        ("trailing garbage", base + b" x"),
        ("two objects", base + base),
        ("a byte-order mark", b"\xef\xbb\xbf" + base),
        ("single quotes", base.replace(b'"', b"'")),
        ("a trailing comma", base[:-1] + b",}"),
        ("a comment", b"/* hi */" + base),
        ("nesting 10000 deep", spliced(usage(), "deep", b"[" * 10000 + b"]" * 10000)),
        ("unclosed nesting", spliced(usage(), "deep", b"[" * 50)),
        ("invalid UTF-8 in an extension", dump(usage(x="@@")).replace(b"@@", b"\xed\xa0\x80")),
        ("hex escapes cut short", dump(usage(x="@@")).replace(b"@@", b"\\u12")),
        ("raw newline in a string", dump(usage(x="a@@b")).replace(b"@@", b"\n")),
        ("Latin-1 bytes", dump(usage(x="@@")).replace(b"@@", "café".encode("latin-1"))),
    ]:
        yield rejected(f"JSON: {case}", None, raw)
    shapes: list[tuple[str, dict[str, Any], str]] = [
        ("id a number", {"id": 42}, "id"),
        ("id null", {"id": None}, "id"),
        ("id an array", {"id": ["a"]}, "id"),
        ("id missing", {"id": ...}, "id"),
        ("subject an object", {"subject": {"a": 1}}, "subject"),
        ("subject true", {"subject": True}, "subject"),
        ("source missing", {"source": ...}, "source"),
        ("data a string", {"data": "quantity=3"}, "data"),
        ("data an array", {"data": [1]}, "data"),
        ("datacontenttype XML", {"datacontenttype": "text/xml"}, "datacontenttype"),
    ]
    for case, overrides, field in shapes:
        yield rejected(f"shape: {case}", field, usage(**overrides))
    yield rejected("shape: data null", "data", {**usage(), "data": None})
    yield rejected("payment without data", "data", envelope("payment"))


def _money_and_enumerations() -> Iterator[Case]:
    for case, data, field in [
        ("currency lower case", {"currency": "eur"}, "data.currency"),
        ("currency of 4 letters", {"currency": "EURO"}, "data.currency"),
        ("currency a symbol", {"currency": "€"}, "data.currency"),
        ("status in capitals", {"status": "PAID"}, "data.status"),
        ("status empty", {"status": ""}, "data.status"),
        ("invoice id empty", {"invoice_id": ""}, "data.invoice_id"),
    ]:
        yield rejected(f"payment: {case}", field, payment(**data))
    yield rejected("tier capitalised", "data.tier", account("hostile-tier", tier="Strategic"))
    yield rejected("tier gold", "data.tier", account("hostile-gold", tier="gold"))
    yield rejected("locale de", "data.locale", kam(locale="de"))
    yield rejected("role ceo", "data.role", contact(role="ceo"))
    yield rejected(
        "priority empty",
        "data.priority",
        envelope("support_ticket", {"ticket_id": "T", "status": "opened", "priority": ""}),
    )
    yield rejected("outcome lost", "data.outcome", envelope("outcome", {"outcome": "lost"}))
    yield rejected("engagement kind call", "data.kind", envelope("engagement", {"kind": "call", "outcome": "attended"}))


def _versions() -> Iterator[Case]:
    for case, value, field in [
        ("specversion 0.3", "0.3", "specversion"),
        ("specversion a number", 1.0, "specversion"),
        ("specversion with a space", "1.0 ", "specversion"),
        ("specversion missing", ..., "specversion"),
    ]:
        yield rejected(case, field, usage(specversion=value))
    for case, value in [
        ("an unknown type", "kamwatch.weather.v1"),
        ("a type in capitals", "KAMWATCH.USAGE.V1"),
        ("a type with a NUL", "kamwatch.usage.v1\u0000"),
        ("a type missing", ...),
        ("a type null", None),
    ]:
        yield rejected(f"type: {case}", "type", usage(type=value))


def build() -> list[Case]:
    global _serial
    _serial = iter(range(1, 100_000))
    return list(cases())


def main() -> None:
    CORPUS.write_bytes(b"\n".join(case.line() for case in build()) + b"\n")


def load() -> list[Case]:
    return [Case.of(line) for line in CORPUS.read_bytes().splitlines() if line.strip()]


if __name__ == "__main__":
    main()
