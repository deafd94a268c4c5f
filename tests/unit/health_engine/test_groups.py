"""Group roll-up: ARR-weighted, bounded, monotonic, and it names the subsidiary that drives it."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from health_engine.config import load_scoring_config
from health_engine.groups import Member, roll_up

LEVELS = load_scoring_config(None).levels


def test_weighted_by_arr_and_driven_by_the_biggest_contributor() -> None:
    parent = Member("group", Decimal(100_000), 10.0)
    big_sick = Member("sub-a", Decimal(300_000), 80.0)
    small_sicker = Member("sub-b", Decimal(100_000), 90.0)
    group = roll_up(parent, [small_sicker, big_sick], LEVELS)
    assert group.risk == round((100_000 * 10 + 300_000 * 80 + 100_000 * 90) / 500_000, 1)  # 68.0
    assert group.level == LEVELS.of(68.0)
    assert group.driver is not None
    assert group.driver.account_id == "sub-a"  # 0.6 × 80 beats 0.2 × 90
    assert [m.account_id for m in group.members] == ["group", "sub-a", "sub-b"]
    assert sum(m.weight for m in group.members) == 1.0


def test_no_arr_means_equal_weights_and_healthy_subsidiaries_drive_nothing() -> None:
    group = roll_up(Member("p", Decimal(0), 30.0), [Member("s", Decimal(0), 0.0)], LEVELS)
    assert group.risk == 15.0
    assert group.driver is None
    assert roll_up(Member("p", Decimal(5), 42.0), [], LEVELS).risk == 42.0


members = st.builds(
    Member,
    st.text(min_size=1, max_size=5),
    st.decimals(min_value=0, max_value=10_000_000, places=2),
    st.floats(min_value=0, max_value=100),
)


@given(members, st.lists(members, max_size=6), st.floats(min_value=0, max_value=100))
def test_bounded_and_never_lower_when_a_subsidiary_gets_worse(parent: Member, subs: list[Member], worse: float) -> None:
    group = roll_up(parent, subs, LEVELS)
    assert 0 <= group.risk <= 100
    if subs:
        first = subs[0]
        worsened = Member(first.account_id, first.arr, max(first.risk, worse))
        assert roll_up(parent, [worsened, *subs[1:]], LEVELS).risk >= group.risk
