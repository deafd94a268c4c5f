"""The name of each alert rule, in English and French."""

from __future__ import annotations

from schemas.vocabulary import Locale
from schemas.wording import pick

RULE_LABELS: dict[str, tuple[str, str]] = {
    "risk_level": ("Risk level", "Niveau de risque"),
    "risk_jump": ("Risk jump", "Hausse brutale du risque"),
    "usage_drop": ("Usage drop", "Baisse d'utilisation"),
    "ticket_surge": ("Support ticket surge", "Afflux de tickets au support"),
    "urgent_ticket_open": ("Urgent ticket open", "Ticket urgent en attente"),
    "payment_late": ("Late payment", "Retard de paiement"),
    "payment_failed": ("Payment failed", "Incident de paiement"),
    "champion_left": ("Champion left", "Départ du champion"),
    "sponsor_left": ("Executive sponsor left", "Départ du sponsor exécutif"),
    "decision_maker_left": ("Decision maker left", "Départ du décideur"),
    "new_executive_unengaged": ("New executive not engaged", "Nouveau dirigeant pas encore rencontré"),
    "single_threaded": ("Single-threaded account", "Relation mono-contact"),
    "business_review_missed": ("Business review missed", "Revue d'affaires manquée"),
    "nps_detractor": ("NPS detractor", "NPS détracteur"),
    "renewal_at_risk": ("Renewal at risk", "Renouvellement en danger"),
}


def rule_label(rule: str, locale: Locale) -> str:
    return pick(RULE_LABELS.get(rule, (rule, rule)), locale)
