"""The committed hostile corpus is what its generator builds, holds at least 200 records, and the parser makes of
each exactly what the corpus expects: accepted, or rejected naming the field."""

from __future__ import annotations

import pytest

from ingestion.parsing import EventRejected, InboundRecord
from ingestion.pipeline import TimeWindow, parse_record
from tests.hostile.corpus import CORPUS, NOW, Case, build, load

CASES = load()


def test_the_committed_corpus_is_the_generated_one() -> None:
    assert CORPUS.read_bytes() == b"\n".join(case.line() for case in build()) + b"\n"
    assert len(CASES) >= 200
    assert len({case.case for case in CASES}) == len(CASES)
    assert sum(case.expect == "rejected" for case in CASES) >= 150


@pytest.mark.parametrize("case", CASES, ids=[case.case for case in CASES])
def test_the_parser_accepts_or_rejects_each_record_as_expected(case: Case) -> None:
    outcome = parse_record(InboundRecord(case.raw), TimeWindow().at(NOW))
    if case.expect == "rejected":
        assert isinstance(outcome, EventRejected)
        assert outcome.field == case.field
        assert outcome.reason
    else:
        assert not isinstance(outcome, EventRejected), outcome
