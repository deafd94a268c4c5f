"""Pure health scoring: ``score_account(signals, as_of, config)``, no clock, no I/O, deterministic.

Only what is known at ``as_of`` counts. Snapshots (tickets, invoices, contacts) whose newest event is later
are rewound through their own timestamps (opened/resolved/paid/issued/added/left); what carries no timestamp
(counters, CSAT, failed/disputed status) is then dropped rather than guessed.
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from statistics import median

from health_engine.config import Ramp, ScoringConfig, Slide, UsageConfig
from health_engine.model import (
    AccountProfile,
    AccountSignals,
    ComponentScore,
    Contact,
    ContactRole,
    Engagement,
    HealthScore,
    Invoice,
    InvoiceStatus,
    Ticket,
    UsageDay,
)
from schemas.i18n import relative_days
from schemas.vocabulary import COMPONENTS, ComponentName, Driver, EvidenceValue, Severity

_OPEN_INVOICE: frozenset[InvoiceStatus] = frozenset({"issued", "failed"})
_MISSED = frozenset({"declined", "no_show", "cancelled"})
_DECISION_LEVEL: frozenset[ContactRole] = frozenset({"executive_sponsor", "decision_maker"})


def score_account(signals: AccountSignals, as_of: datetime, config: ScoringConfig) -> HealthScore:
    """Score one account at ``as_of`` (timezone-aware): every component's drivers, then ``combine``."""
    ctx = _context(as_of, config)
    found = {name: _FINDERS[name](signals, ctx) for name in COMPONENTS}
    return combine(signals.profile, found, as_of, config)


def component_drivers(
    component: ComponentName, signals: AccountSignals, as_of: datetime, config: ScoringConfig
) -> list[Driver]:
    """One component's drivers at ``as_of``: they depend on ``config.severity`` and the component's own section
    only (``config.usage`` for usage…), so a caller trying configs may keep those of an unchanged section."""
    return _FINDERS[component](signals, _context(as_of, config))


def combine(
    profile: AccountProfile, found: Mapping[ComponentName, Sequence[Driver]], as_of: datetime, config: ScoringConfig
) -> HealthScore:
    """The account's score from its components' drivers.

    Combination over component risks ``r`` (0..1 here) with the tier's weights ``w`` (``W = Σ w``), with
    ``a ⊕ b = 1 − (1 − a)(1 − b)`` (noisy-OR)::

        base = max(Σ w·r / W,  acute_factor · max_c (s_c·r_c ⊕ Σ_{k≠c} w_k·r_k / W))

    The acute term keeps one severe component (a departed champion, a silent account) from being diluted
    by four healthy ones, and lets the others compound on it by their weights; taking the max over every
    choice of ``c`` keeps the result monotonic in each component; ``s_c`` (``acute_shares``, at most 1) is how
    much of a component counts as acute. Near renewal ``base`` is multiplied (at
    most ``renewal.max_multiplier``) and capped at 1. Within a component, drivers combine by noisy-OR.
    """
    ctx = _context(as_of, config)
    tier = config.tiers.of(profile.tier)
    components = tuple(
        ComponentScore(
            name=name,
            risk=round(_noisy_or(d.points for d in found[name]), 1),
            weight=tier.weights.of(name),
            drivers=_ranked(found[name]),
        )
        for name in COMPONENTS
    )
    total_weight = sum(c.weight for c in components)
    weighted = [c.weight * c.risk / total_weight for c in components]
    shares = config.acute_shares
    acute = _noisy_or(shares.of(c.name) * c.risk for c in components)
    base = max(sum(weighted), tier.acute_factor * acute)
    multiplier, renewal = _renewal(profile, ctx, base)
    risk = round(min(100.0, base * multiplier), 1)
    drivers = [d for c in components for d in c.drivers] + ([renewal] if renewal else [])
    return HealthScore(
        account_id=profile.account_id,
        as_of=as_of,
        risk=risk,
        level=config.levels.of(risk),
        components=components,
        drivers=_ranked(drivers),
        config_version=config.version,
    )


def _context(as_of: datetime, config: ScoringConfig) -> _Ctx:
    if as_of.tzinfo is None or as_of.utcoffset() is None:
        raise ValueError("as_of must be timezone-aware")
    return _Ctx(as_of, as_of.astimezone(UTC).date(), config)


@dataclass(frozen=True, slots=True)
class _Ctx:
    as_of: datetime
    today: date
    """UTC date of ``as_of``; usage days are UTC days."""
    config: ScoringConfig

    def days_since(self, moment: datetime) -> float:
        return (self.as_of - moment).total_seconds() / 86400

    def within(self, moment: datetime | None, days: float) -> bool:
        return moment is not None and moment <= self.as_of and self.days_since(moment) <= days

    def driver(
        self,
        component: str,
        code: str,
        points: float,
        evidence: dict[str, EvidenceValue],
        since: datetime | None,
        en: str,
        fr: str,
        severity: Severity | None = None,
    ) -> Driver:
        cuts = self.config.severity
        points = round(min(100.0, max(0.0, points)), 1)
        if severity is None:
            severity = cuts.of(points)
        return Driver(component, code, severity, points, evidence, since, en, fr)


class _Found(list[Driver]):
    """Drivers of one component."""

    def __init__(self, ctx: _Ctx, component: ComponentName) -> None:
        super().__init__()
        self.ctx, self.component = ctx, component

    def add(
        self, code: str, points: float, evidence: dict[str, EvidenceValue], since: datetime | None, en: str, fr: str
    ) -> None:
        self.append(self.ctx.driver(self.component, code, points, evidence, since, en, fr))


def _noisy_or(points: Iterable[float]) -> float:
    return 100.0 * (1.0 - math.prod(1.0 - min(100.0, max(0.0, p)) / 100.0 for p in points))


_COMPONENT_ORDER: dict[str, int] = {name: i for i, name in enumerate(COMPONENTS)}


def _ranked(drivers: Iterable[Driver]) -> tuple[Driver, ...]:
    last = len(_COMPONENT_ORDER)
    return tuple(sorted(drivers, key=lambda d: (-d.points, _COMPONENT_ORDER.get(d.component, last), d.code)))


def _midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _num(value: float, lang: str) -> str:
    text = f"{value:.1f}".removesuffix(".0")
    return text.replace(".", ",") if lang == "fr" else text


def _money(amount: Decimal, lang: str) -> str:
    text = f"{amount:,.2f}"
    return text.replace(",", " ").replace(".", ",") if lang == "fr" else text


def _en(n: float, one: str, many: str) -> str:
    return f"{_num(n, 'en')} {one if n == 1 else many}"


def _fr(n: float, one: str, many: str) -> str:
    return f"{_num(n, 'fr')} {one if abs(n) < 2 else many}"


def _counts_en(*counts: tuple[int, str, str]) -> str:
    """``2 escalations and 1 reopening``, the counts at zero left out."""
    return " and ".join(_en(n, one, many) for n, one, many in counts if n)


def _counts_fr(*counts: tuple[int, str, str]) -> str:
    return " et ".join(_fr(n, one, many) for n, one, many in counts if n)


# --- usage -------------------------------------------------------------------------------------------------


def _spread(weeks: Sequence[float], baseline: float, floor: float) -> float:
    """The account's own week-to-week variability: robust (MAD) standard deviation of the changes from one week
    to the next (a steady trend does not count as noise), at least ``floor`` × the baseline."""
    changes = [a - b for a, b in itertools.pairwise(weeks)]
    centre = median(changes)
    mad = median(abs(c - centre) for c in changes) * 1.4826 / math.sqrt(2)
    return max(mad, floor * baseline)


def _drop(weeks: Sequence[float], guard: float, ramp: Ramp, cfg: UsageConfig) -> tuple[float, int, float]:
    """Points, how many weeks in a row (1 to 3) the drop has lasted, and the baseline. No points under the
    minimum-volume guard, nor for a drop within the account's usual week-to-week variability (``min_drop_z``
    spreads). A lasting decline weighs fully; one or two low weeks (a passing dip) weigh less."""
    recent, baseline = weeks[0], median(weeks[1:])
    if baseline <= 0 or baseline < guard:
        return 0.0, 0, baseline
    if baseline - recent < cfg.min_drop_z * _spread(weeks[1:], baseline, cfg.min_relative_spread):
        return 0.0, 0, baseline
    points = ramp.points(1.0 - recent / baseline)
    low = baseline * (1.0 - ramp.start)
    lasted = 1 + (weeks[1] <= low) + (weeks[1] <= low and weeks[2] <= low)
    factor = {1: cfg.single_week_factor, 2: cfg.two_week_factor, 3: 1.0}[lasted]
    return points * factor, lasted, baseline


def _in_a_row(lasted: int) -> tuple[str, str]:
    if lasted < 2:
        return "", ""
    return f", {lasted} weeks in a row", f", {lasted} semaines de suite"


Calendar = tuple[list[list[date]], dict[date, tuple[int, float]]]
_calendars: dict[tuple[date, int, str | None], tuple[UsageConfig, Calendar]] = {}
_seasons: dict[tuple[int, str | None], tuple[UsageConfig, dict[tuple[int, int], float]]] = {}


def _season(cfg: UsageConfig, industry: str | None) -> dict[tuple[int, int], float]:
    """The seasonal factor of every (month, day) of the year for an industry (computed once per config)."""
    key = (id(cfg), industry)
    cached = _seasons.get(key)
    if cached is not None and cached[0] is cfg:
        return cached[1]
    leap = date(2024, 1, 1)
    days = (leap + timedelta(days=n) for n in range(366))
    table = {(d.month, d.day): cfg.seasonal_factor(d, industry) for d in days}
    if len(_seasons) >= 256:
        _seasons.clear()
    _seasons[key] = (cfg, table)
    return table


def _calendar(today: date, cfg: UsageConfig, industry: str | None) -> Calendar:
    """Full 7-day blocks ending yesterday (today is partial), newest first: every block holds each weekday
    once. Each day maps to its block and to what the business calendar (the account's industry's) expects of it
    (its seasonal factor), so a summer or year-end lull is no drop. Computed once per day, config and industry,
    shared by the accounts (the cache is keyed by the config's identity: hashing the config cost more than the
    scoring around it)."""
    key = (today, id(cfg), industry)
    cached = _calendars.get(key)
    if cached is not None and cached[0] is cfg:
        return cached[1]
    season = _season(cfg, industry)
    weeks = [[today - timedelta(days=7 * (k + 1) - i) for i in range(7)] for k in range(cfg.weeks_seen)]
    expected = {day: (k, season[day.month, day.day]) for k, week in enumerate(weeks) for day in week}
    if len(_calendars) >= 4096:
        _calendars.clear()
    _calendars[key] = (cfg, (weeks, expected))
    return weeks, expected


def _usage(days: Sequence[UsageDay], ctx: _Ctx, industry: str | None = None) -> list[Driver]:
    cfg, today = ctx.config.usage, ctx.today
    # In day order (then quantity and users: several rows of a day add up in a fixed order), so both dicts
    # iterate by day.
    quantity: dict[date, float] = {}
    users: dict[date, int] = {}
    for day, amount, active_users in sorted(days):
        if day > today:
            break
        if day in quantity:
            quantity[day] += amount
            users[day] = max(users[day], active_users)
        else:
            quantity[day] = amount
            users[day] = active_users
    weeks, expected = _calendar(today, cfg, industry)
    volume = [0.0] * len(weeks)
    daily_users = [0.0] * len(weeks)
    for day in quantity:
        if (slot := expected.get(day)) is not None:
            week, factor = slot
            volume[week] += quantity[day] / factor
            daily_users[week] += users[day] / factor
    daily_users = [total / 7 for total in daily_users]
    n_weeks = cfg.baseline_weeks
    found = _Found(ctx, "usage")

    seen = cfg.baseline_weeks + 1
    points, lasted, base = _drop(volume[:seen], cfg.min_weekly_volume, cfg.drop, cfg)
    if points > 0:
        pct = round(100 * (1 - volume[0] / base))
        row_en, row_fr = _in_a_row(lasted)
        found.add(
            "usage.drop",
            points,
            {
                "recent_week": round(volume[0], 2),
                "baseline_week": round(base, 2),
                "drop_pct": pct,
                "sustained": lasted > 1,
                "weeks_in_a_row": lasted,
            },
            _midnight(weeks[lasted - 1][0]),
            f"Usage down {pct}% vs the {n_weeks}-week baseline{row_en}",
            f"Usage en baisse de {pct} % par rapport aux {n_weeks} dernières semaines{row_fr}",
        )

    points, lasted, base_users = _drop(daily_users[:seen], cfg.min_baseline_users, cfg.users_drop, cfg)
    if points > 0:
        pct = round(100 * (1 - daily_users[0] / base_users))
        now_en, was_en = _num(daily_users[0], "en"), _num(base_users, "en")
        now_fr, was_fr = _num(daily_users[0], "fr"), _num(base_users, "fr")
        row_en, row_fr = _in_a_row(lasted)
        found.add(
            "usage.users_drop",
            points,
            {
                "recent_daily_users": round(daily_users[0], 2),
                "baseline_daily_users": round(base_users, 2),
                "drop_pct": pct,
                "sustained": lasted > 1,
                "weeks_in_a_row": lasted,
            },
            _midnight(weeks[lasted - 1][0]),
            f"Active users down {pct}% vs the {n_weeks}-week baseline ({now_en} a day, usually {was_en}){row_en}",
            f"Utilisateurs actifs en baisse de {pct} % par rapport aux {n_weeks} dernières semaines "
            f"({now_fr} par jour, {was_fr} d'habitude){row_fr}",
        )

    if cfg.slide is not None:
        found += _slide(volume, cfg.slide, cfg, weeks, ctx)

    active = [d for d, q in quantity.items() if q > 0 or users[d] > 0]  # in day order
    if active:
        idle = (today - active[-1]).days
        in_baseline = bisect.bisect_right(active, weeks[1][-1]) - bisect.bisect_left(active, weeks[-1][0])
        regular = in_baseline >= cfg.regular_min_active_days
        # Accounts that use the product only now and then get a longer leash, so they do not flap.
        points = (cfg.silent if regular else cfg.silent_irregular).points(idle)
        if points > 0:
            found.add(
                "usage.silent",
                points,
                {"days_since_activity": idle, "last_active_day": active[-1].isoformat(), "regular": regular},
                _midnight(active[-1] + timedelta(days=1)),
                f"No product activity for {_en(idle, 'day', 'days')}",
                f"Aucune activité produit depuis {_fr(idle, 'jour', 'jours')}",
            )
    return found


def _slide(
    volume: Sequence[float], slide: Slide, cfg: UsageConfig, weeks: Sequence[Sequence[date]], ctx: _Ctx
) -> list[Driver]:
    """A slow slide: recent weeks' median volume against the same number of weeks ``span_weeks`` earlier."""
    n = slide.recent_weeks
    recent, earlier = median(volume[:n]), median(volume[slide.span_weeks : slide.span_weeks + n])
    if earlier <= 0 or earlier < cfg.min_weekly_volume or recent >= earlier:
        return []
    decline = 1.0 - recent / earlier
    points = slide.ramp.points(decline)
    if points <= 0:
        return []
    pct = round(100 * decline)
    span = slide.span_weeks
    return [
        ctx.driver(
            "usage",
            "usage.slide",
            points,
            {"recent_weekly": round(recent, 2), "earlier_weekly": round(earlier, 2), "decline_pct": pct, "weeks": span},
            _midnight(weeks[span][0]),
            f"Usage down {pct}% over {span} weeks, a slow slide",
            f"Usage en baisse de {pct} % en {span} semaines, un lent déclin",
        )
    ]


# --- support -----------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _TicketAt:
    ticket: Ticket
    open: bool
    settled: bool
    """No event after ``as_of``: counters and CSAT belong to the past."""


def _ticket_at(t: Ticket, as_of: datetime) -> _TicketAt | None:
    if (t.opened_at or t.last_event_time) > as_of:
        return None
    settled = t.last_event_time <= as_of
    if settled:
        return _TicketAt(t, t.status not in ("resolved", "closed"), True)
    return _TicketAt(t, t.resolved_at is None or t.resolved_at > as_of, False)


def _support(tickets: Sequence[Ticket], ctx: _Ctx) -> list[Driver]:
    cfg, as_of = ctx.config.support, ctx.as_of
    views = [v for t in tickets if (v := _ticket_at(t, as_of)) is not None]
    weight = cfg.priority_weights
    found = _Found(ctx, "support")

    recent = [v.ticket for v in views if ctx.within(v.ticket.opened_at, cfg.recent_days)]
    earlier = [
        v.ticket
        for v in views
        if v.ticket.opened_at is not None
        and cfg.recent_days < ctx.days_since(v.ticket.opened_at) <= cfg.recent_days + cfg.baseline_days
    ]
    recent_w = sum(weight[t.priority] for t in recent)
    usual_w = sum(weight[t.priority] for t in earlier) * cfg.recent_days / cfg.baseline_days
    expected = max(usual_w, cfg.baseline_floor)
    ratio = recent_w / expected
    z = (recent_w - expected) / math.sqrt(expected * cfg.surge_ticket_weight)
    enough = len(recent) >= cfg.min_recent_tickets and recent_w >= cfg.min_recent_weight and z >= cfg.surge_min_z
    if enough and (points := cfg.surge.points(ratio)) > 0:
        n, d = len(recent), cfg.recent_days
        found.add(
            "support.surge",
            points,
            {
                "tickets": n,
                "weighted": round(recent_w, 2),
                "usual_weighted": round(usual_w, 2),
                "ratio": round(ratio, 2),
                "window_days": d,
            },
            as_of - timedelta(days=d),
            f"{_en(n, 'ticket', 'tickets')} opened in {d} days, {_num(ratio, 'en')}x the usual rate",
            f"{_fr(n, 'ticket ouvert', 'tickets ouverts')} en {d} jours, soit {_num(ratio, 'fr')} fois "
            "le rythme habituel",
        )

    ramps = {"urgent": cfg.urgent_open.urgent, "high": cfg.urgent_open.high}
    pressing = [
        (v.ticket, ramps[v.ticket.priority].points(ctx.days_since(v.ticket.opened_at)))
        for v in views
        if v.open and v.ticket.opened_at is not None and v.ticket.priority in ramps
    ]
    pressing = [(t, p) for t, p in pressing if p > 0]
    if pressing:
        oldest = min(t.opened_at for t, _ in pressing if t.opened_at is not None)
        age, n = math.floor(ctx.days_since(oldest)), len(pressing)
        found.add(
            "support.urgent_open",
            _noisy_or(p for _, p in pressing),
            {
                "tickets": n,
                "urgent": sum(1 for t, _ in pressing if t.priority == "urgent"),
                "oldest_days": age,
                "ticket_ids": ",".join(sorted(t.ticket_id for t, _ in pressing)),
            },
            oldest,
            f"{_en(n, 'urgent or high-priority ticket', 'urgent or high-priority tickets')} open, "
            f"oldest for {_en(age, 'day', 'days')}",
            f"{_fr(n, 'ticket urgent ou prioritaire ouvert', 'tickets urgents ou prioritaires ouverts')}, "
            f"le plus ancien depuis {_fr(age, 'jour', 'jours')}",
        )

    lookback = cfg.lookback_days
    relevant = [v.ticket for v in views if v.settled and (v.open or ctx.within(v.ticket.opened_at, lookback))]
    esc, reo = sum(t.escalations for t in relevant), sum(t.reopenings for t in relevant)
    if esc + reo > 0:
        points = min(cfg.escalations_cap, esc * cfg.escalation_points + reo * cfg.reopening_points)
        found.add(
            "support.escalations",
            points,
            {"escalations": esc, "reopenings": reo, "window_days": lookback},
            None,
            f"{_counts_en((esc, 'escalation', 'escalations'), (reo, 'reopening', 'reopenings'))} "
            f"on recent or open tickets ({lookback} days)",
            f"{_counts_fr((esc, 'escalade', 'escalades'), (reo, 'réouverture', 'réouvertures'))} "
            f"sur les tickets récents ou ouverts ({lookback} jours)",
        )

    rated = [
        v.ticket
        for v in views
        if v.settled
        and v.ticket.csat is not None
        and ctx.within(v.ticket.resolved_at or v.ticket.last_event_time, lookback)
    ]
    unhappy = [t for t in rated if t.csat is not None and t.csat <= cfg.low_csat_max]
    share = len(unhappy) / len(rated) if rated else 0.0
    if len(unhappy) >= cfg.low_csat_min_tickets and (points := cfg.low_csat_share.points(share)) > 0:
        n, worst = len(unhappy), min(t.csat for t in unhappy if t.csat is not None)
        found.add(
            "support.low_csat",
            points,
            {"tickets": n, "rated": len(rated), "worst_csat": worst, "window_days": lookback},
            max(t.resolved_at or t.last_event_time for t in unhappy),
            f"{n} of {_en(len(rated), 'rated ticket', 'rated tickets')} rated {cfg.low_csat_max}/5 or less "
            f"in {lookback} days (lowest {worst}/5)",
            f"{n} sur {_fr(len(rated), 'ticket noté', 'tickets notés')} {cfg.low_csat_max}/5 ou moins "
            f"en {lookback} jours (note la plus basse {worst}/5)",
        )
    return found


# --- payment -----------------------------------------------------------------------------------------------


def _invoice_status_at(inv: Invoice, as_of: datetime) -> InvoiceStatus | None:
    """Status at ``as_of``; a later failure, dispute or write-off is unknown then, so the invoice was issued."""
    if inv.last_event_time <= as_of:
        return inv.status
    if inv.paid_at is not None and inv.paid_at <= as_of:
        return "paid"
    if inv.issued_at is not None and inv.issued_at <= as_of:
        return "issued"
    return None


def _payment(invoices: Sequence[Invoice], ctx: _Ctx) -> list[Driver]:
    cfg, as_of, today = ctx.config.payment, ctx.as_of, ctx.today
    views = [(inv, s) for inv in invoices if (s := _invoice_status_at(inv, as_of)) is not None]
    settled = [(inv, s) for inv, s in views if inv.last_event_time <= as_of]
    found = _Found(ctx, "payment")

    delays = [
        max(0, (inv.paid_at.astimezone(UTC).date() - inv.due_date).days)
        for inv, s in views
        if s == "paid" and inv.paid_at is not None and inv.paid_at <= as_of
    ]
    usual = min(cfg.usual_delay_cap_days, median(delays)) if len(delays) >= cfg.min_paid_history else 0
    late = [
        (inv, days, cfg.overdue.points(days - usual))
        for inv, s in views
        if s in _OPEN_INVOICE and (days := (today - inv.due_date).days) > 0
    ]
    late = [(inv, days, p) for inv, days, p in late if p > 0]
    if late:
        n, worst = len(late), max(days for _, days, _ in late)
        usual_n = round(usual)
        found.add(
            "payment.overdue",
            _noisy_or(p for _, _, p in late),
            {
                "invoices": n,
                "max_days_overdue": worst,
                "usual_delay_days": usual_n,
                "amount": str(sum((inv.amount for inv, _, _ in late), Decimal(0))),
            },
            _midnight(min(inv.due_date for inv, _, _ in late) + timedelta(days=1)),
            f"{_en(n, 'invoice', 'invoices')} overdue, up to {_en(worst, 'day', 'days')} late "
            + (f"(usually paid {_en(usual_n, 'day', 'days')} late)" if usual_n else "(usually paid on time)"),
            f"{_fr(n, 'facture', 'factures')} en retard, jusqu'à {_fr(worst, 'jour', 'jours')} "
            + (
                f"(retard habituel {_fr(usual_n, 'jour', 'jours')})"
                if usual_n
                else "(paiement habituellement à l'échéance)"
            ),
        )

    failing = [
        (inv, s)
        for inv, s in settled
        if (inv.failed_count > 0 or s == "failed")
        and (s in _OPEN_INVOICE or ctx.within(inv.last_event_time, cfg.failed_lookback_days))
    ]
    if failing:
        failures, n = sum(max(inv.failed_count, 1) for inv, _ in failing), len(failing)
        unpaid = sum(1 for _, s in failing if s in _OPEN_INVOICE)
        found.add(
            "payment.failed",
            min(cfg.failed_cap, cfg.failed_first_points + cfg.failed_each_points * (failures - 1)),
            {"failures": failures, "invoices": n, "unpaid_invoices": unpaid},
            max(inv.last_event_time for inv, _ in failing),
            f"{_en(failures, 'failed payment', 'failed payments')} on {_en(n, 'invoice', 'invoices')}, "
            f"{unpaid} still unpaid",
            f"{_fr(failures, 'échec', 'échecs')} de paiement sur {_fr(n, 'facture', 'factures')}, "
            f"{_fr(unpaid, 'toujours impayée', 'toujours impayées')}",
        )

    for status, code, points, en_word, fr_word, lookback in (
        ("disputed", "payment.disputed", cfg.disputed_points, "disputed", ("contestée", "contestées"), None),
        (
            "written_off",
            "payment.written_off",
            cfg.written_off_points,
            "written off",
            ("passée en perte", "passées en perte"),
            cfg.written_off_lookback_days,
        ),
    ):
        hit = [
            inv for inv, s in settled if s == status and (lookback is None or ctx.within(inv.last_event_time, lookback))
        ]
        if hit:
            n, amount = len(hit), sum((inv.amount for inv in hit), Decimal(0))
            found.add(
                code,
                _noisy_or(points for _ in hit),
                {"invoices": n, "amount": str(amount), "invoice_ids": ",".join(sorted(i.invoice_id for i in hit))},
                max(inv.last_event_time for inv in hit),
                f"{_en(n, 'invoice', 'invoices')} {en_word}, {_money(amount, 'en')} in total",
                f"{_fr(n, 'facture', 'factures')} {fr_word[0] if n < 2 else fr_word[1]}, "
                f"{_money(amount, 'fr')} au total",
            )
    return found


# --- relationship ------------------------------------------------------------------------------------------

_ROLE_NAMES: dict[ContactRole, tuple[str, str, str]] = {
    "champion": ("relationship.champion_left", "Champion", "champion"),
    "executive_sponsor": ("relationship.sponsor_left", "Executive sponsor", "sponsor exécutif"),
    "decision_maker": ("relationship.decision_maker_left", "Decision maker", "décideur"),
}


def _active_at(c: Contact, as_of: datetime) -> bool:
    if c.left_at is not None:
        return c.left_at > as_of
    return c.active


def _successor_factor(gone: Contact, active: Sequence[Contact], sole: bool, ctx: _Ctx) -> tuple[float, str]:
    """The share of a departure's points that counts, and why: ``successor_factor`` when someone now active took
    the role after ``gone`` left (for a decision-level role, once they have engaged, if the config says so): a
    replaced champion is a hand-over, not a lost relationship; the role's ``pending_successor_share`` while a
    successor may still be named (within ``successor_grace_days``, or ``sole_successor_grace_days`` when ``gone``
    was the only decision-level contact); else 1, the role has stayed vacant."""
    cfg = ctx.config.relationship
    for c in active:
        if (
            c.role == gone.role
            and c.contact_id != gone.contact_id
            and c.added_at is not None
            and gone.left_at is not None
            and c.added_at >= gone.left_at
            and (
                c.role not in _DECISION_LEVEL
                or not cfg.successor_must_engage
                or (c.last_engaged_at is not None and c.last_engaged_at <= ctx.as_of)
            )
        ):
            return cfg.successor_factor, "named"
    grace = cfg.sole_successor_grace_days if sole else cfg.successor_grace_days
    if gone.left_at is not None and ctx.days_since(gone.left_at) < grace:
        return getattr(cfg.pending_successor_share, gone.role, 1.0), "pending"
    return 1.0, "none"


def _sole_decision_level(gone: Contact, known: Sequence[Contact]) -> bool:
    """Whether ``gone`` was the account's only decision-level contact when they left."""
    if gone.role not in _DECISION_LEVEL or gone.left_at is None:
        return False
    left = gone.left_at
    return not any(
        c.contact_id != gone.contact_id
        and c.role in _DECISION_LEVEL
        and (c.added_at is None or c.added_at <= left)
        and _active_at(c, left)
        for c in known
    )


def _relationship(contacts: Sequence[Contact], ctx: _Ctx) -> list[Driver]:
    cfg, as_of = ctx.config.relationship, ctx.as_of
    known = sorted((c for c in contacts if c.added_at is None or c.added_at <= as_of), key=lambda c: c.contact_id)
    if len({c.contact_id for c in known}) < len(known):  # the same contact twice: an order whatever the input's
        known.sort(key=lambda c: (c.contact_id, repr(c)))
    if not known:
        return []  # no power map at all is missing data, not a risk signal
    active = [c for c in known if _active_at(c, as_of)]
    roles = {c.role for c in active}
    found = _Found(ctx, "relationship")

    decay = cfg.departure_decay_days
    for role, (code, en_role, fr_role) in _ROLE_NAMES.items():
        base = getattr(cfg.departure_points, role)
        gone = [
            (c, c.left_at, base * (1 - ctx.days_since(c.left_at) / decay) * factor, successor, sole)
            for c in known
            if c.role == role and c.left_at is not None and ctx.within(c.left_at, decay)
            for sole in (_sole_decision_level(c, known),)
            for factor, successor in (_successor_factor(c, active, sole, ctx),)
        ]
        gone = [g for g in gone if g[2] > 0]
        if not gone:
            continue
        latest, left_at, _, successor, sole = max(gone, key=lambda g: (g[1], g[0].contact_id, repr(g[0])))
        ago, more = math.floor(ctx.days_since(left_at)), len(gone) - 1
        who_en = f"{en_role} {latest.name}" if latest.name else en_role
        who_fr = f"{latest.name} ({fr_role})" if latest.name else f"Le {fr_role}"
        # Only where a successor is expected within a grace does its absence after the grace deserve words.
        vacant = successor == "none" and cfg.successor_grace_days > 0
        found.add(
            code,
            _noisy_or(p for _, _, p, _, _ in gone),
            {
                "contact_id": latest.contact_id,
                "name": latest.name,
                "days_ago": ago,
                "departures": len(gone),
                "successor": successor,
                "sole_decision_level": sole,
            },
            left_at,
            f"{who_en} left {relative_days(-ago, 'en')}"
            + (", no successor named" if vacant else "")
            + (f" (+{more} more)" if more else ""),
            f"{who_fr} a quitté le compte {relative_days(-ago, 'fr')}"
            + (", sans successeur désigné" if vacant else "")
            + (f" (+{_fr(more, 'autre', 'autres')})" if more else ""),
        )

    for role, code, points, en, fr in (
        ("champion", "relationship.no_champion", cfg.no_champion_points, "No active champion", "Aucun champion actif"),
        (
            "executive_sponsor",
            "relationship.no_sponsor",
            cfg.no_sponsor_points,
            "No active executive sponsor",
            "Aucun sponsor exécutif actif",
        ),
    ):
        if role not in roles:
            departures = [c.left_at for c in known if c.role == role and c.left_at is not None and c.left_at <= as_of]
            found.add(code, points, {"role": role}, max(departures, default=None), en, fr)

    # The contacts known from the start are the initial power map (an import), not executives who just arrived.
    first_added = min((c.added_at for c in known if c.added_at is not None), default=None)
    fresh = [
        c
        for c in active
        if c.role in _DECISION_LEVEL
        and c.added_at is not None
        and first_added is not None
        and (c.added_at - first_added).total_seconds() > cfg.initial_power_map_days * 86400
        and cfg.new_executive_grace_days <= ctx.days_since(c.added_at) <= cfg.new_executive_days
        and (c.last_engaged_at is None or c.last_engaged_at > as_of)
    ]
    if fresh:
        n = len(fresh)
        names = ", ".join(c.name or c.contact_id for c in fresh)
        first = min(c.added_at for c in fresh if c.added_at is not None)
        waited = ctx.days_since(first)
        found.add(
            "relationship.new_executive_unengaged",
            cfg.new_executive_ramp.points(waited) if cfg.new_executive_ramp is not None else cfg.new_executive_points,
            {
                "contacts": n,
                "contact_ids": ",".join(c.contact_id for c in fresh),
                "days_since_added": math.floor(waited),
            },
            first,
            f"{_en(n, 'new executive or decision maker', 'new executives or decision makers')} not engaged "
            f"yet ({names})",
            f"{_fr(n, 'nouveau dirigeant ou décideur', 'nouveaux dirigeants ou décideurs')} pas encore "
            f"rencontré{'s' if n > 1 else ''} ({names})",
        )

    n_active = len(active)
    if n_active <= 1 or not roles & _DECISION_LEVEL:
        single = n_active <= 1
        found.add(
            "relationship.single_threaded",
            cfg.single_contact_points if single else cfg.no_decision_level_points,
            {
                "active_contacts": n_active,
                "decision_level_contacts": len([c for c in active if c.role in _DECISION_LEVEL]),
            },
            None,
            f"Single-threaded: {_en(n_active, 'active contact', 'active contacts')}"
            if single
            else f"No active contact at decision level ({_en(n_active, 'active contact', 'active contacts')})",
            f"Relation mono-contact : {_fr(n_active, 'contact actif', 'contacts actifs')}"
            if single
            else f"Aucun contact actif au niveau décisionnel ({_fr(n_active, 'contact actif', 'contacts actifs')})",
        )

    detractors = [c for c in active if c.role == "detractor"]
    if detractors:
        n = len(detractors)
        found.add(
            "relationship.detractor",
            min(cfg.detractor_cap, n * cfg.detractor_points),
            {"detractors": n, "contact_ids": ",".join(c.contact_id for c in detractors)},
            max((c.added_at for c in detractors if c.added_at is not None), default=None),
            f"{_en(n, 'active detractor', 'active detractors')} among the contacts",
            f"{_fr(n, 'détracteur actif', 'détracteurs actifs')} parmi les contacts",
        )
    return found


# --- engagement --------------------------------------------------------------------------------------------


def _engagement(engagements: Sequence[Engagement], ctx: _Ctx) -> list[Driver]:
    cfg, as_of = ctx.config.engagement, ctx.as_of
    events = sorted(
        (e for e in engagements if e.time <= as_of),
        key=lambda e: (e.time, e.kind, e.outcome, -1 if e.nps_score is None else e.nps_score),
    )
    if not events:
        return []
    window = cfg.lookback_days
    recent = [e for e in events if ctx.within(e.time, window)]
    found = _Found(ctx, "engagement")

    meetings = [e for e in recent if e.kind in ("meeting", "business_review")]
    missed = [e for e in meetings if e.outcome in _MISSED]
    attended = [e for e in meetings if e.outcome == "attended"]

    def weight(items: list[Engagement]) -> float:
        return sum(cfg.business_review_weight if e.kind == "business_review" else 1.0 for e in items)

    if len(missed) >= cfg.min_missed:
        rate = weight(missed) / (weight(missed) + weight(attended))
        if (points := cfg.missed_rate.points(rate)) > 0:
            n, of = len(missed), len(missed) + len(attended)
            found.add(
                "engagement.meetings_missed",
                points,
                {"missed": n, "attended": len(attended), "weighted_rate": round(rate, 2), "window_days": window},
                missed[0].time,
                f"{n} of {_en(of, 'meeting or review', 'meetings and reviews')} declined, missed or cancelled "
                f"in {window} days",
                f"{n} sur {_fr(of, 'réunion ou revue', 'réunions et revues')} déclinées, manquées ou annulées "
                f"en {window} jours",
            )

    reviews = [e.time for e in events if e.kind == "business_review" and e.outcome == "attended"]
    # Without any attended review, count from the start of the known history so new accounts are spared.
    last_review = reviews[-1] if reviews else None
    idle = math.floor(ctx.days_since(last_review or events[0].time))
    if (points := cfg.no_business_review.points(idle)) > 0:
        found.add(
            "engagement.no_business_review",
            points,
            {
                "days_since_review": idle if last_review else None,
                "last_review": last_review.isoformat() if last_review else None,
            },
            last_review,
            f"No business review attended for {_en(idle, 'day', 'days')}"
            if last_review
            else f"No business review attended in {_en(idle, 'day', 'days')} of history",
            f"Aucune revue d'affaires tenue depuis {_fr(idle, 'jour', 'jours')}"
            if last_review
            else f"Aucune revue d'affaires tenue en {_fr(idle, 'jour', 'jours')} d'historique",
        )

    surveys = [e for e in events if e.kind == "nps_survey" and e.nps_score is not None]
    if surveys and ctx.within(surveys[-1].time, cfg.nps_max_age_days):
        latest, score = surveys[-1], surveys[-1].nps_score or 0
        if score <= cfg.nps_detractor_max and (points := cfg.nps.points(cfg.nps_detractor_max - score)) > 0:
            found.add(
                "engagement.nps_detractor",
                points,
                {"nps_score": score, "surveyed_at": latest.time.isoformat()},
                latest.time,
                f"Latest NPS score {score}/10 (detractor)",
                f"Dernier score NPS {score}/10 (détracteur)",
            )

    streak: list[Engagement] = []
    for e in recent:
        if e.kind == "email":
            streak = [*streak, e] if e.outcome == "no_reply" else []
    if (points := cfg.no_reply_streak.points(len(streak))) > 0:
        n = len(streak)
        found.add(
            "engagement.no_reply_streak",
            points,
            {"emails": n},
            streak[0].time,
            f"{n} emails in a row without a reply",
            f"{n} e-mails de suite sans réponse",
        )
    return found


# --- renewal -----------------------------------------------------------------------------------------------


def _renewal(profile: AccountProfile, ctx: _Ctx, base: float) -> tuple[float, Driver | None]:
    cfg = ctx.config.renewal
    if profile.renewal_date is None:
        return 1.0, None
    days = (profile.renewal_date - ctx.today).days
    if not 0 <= days <= cfg.window_days:
        return 1.0, None
    multiplier = 1.0 + (cfg.max_multiplier - 1.0) * (1.0 - days / cfg.window_days)
    factor = f"{multiplier:.2f}"
    # Renewal only amplifies the other signals: context, never a warning of its own.
    return multiplier, ctx.driver(
        "renewal",
        "renewal.near",
        min(100.0, base * multiplier) - base,
        {"days_to_renewal": days, "renewal_date": profile.renewal_date.isoformat(), "multiplier": round(multiplier, 3)},
        _midnight(profile.renewal_date - timedelta(days=cfg.window_days)),
        f"Renewal {relative_days(days, 'en')}: risk weighted x{factor}",
        f"Renouvellement {relative_days(days, 'fr')} : risque pondéré x{factor.replace('.', ',')}",
        severity="info",
    )


_FINDERS: dict[ComponentName, Callable[[AccountSignals, _Ctx], list[Driver]]] = {
    "usage": lambda s, ctx: _usage(s.usage, ctx, s.profile.industry),
    "support": lambda s, ctx: _support(s.tickets, ctx),
    "payment": lambda s, ctx: _payment(s.invoices, ctx),
    "relationship": lambda s, ctx: _relationship(s.contacts, ctx),
    "engagement": lambda s, ctx: _engagement(s.engagements, ctx),
}
