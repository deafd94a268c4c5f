"""Tuning: the scoring and alerting replayed in memory over a loaded history (as they would have lived), the
figures that judge them against the outcomes, and the search for better parameters. Pure (no I/O, no clock):
``services/flows/outcome_history.py`` loads the history; ``kamwatch tune`` and ``kamwatch backtest`` use both."""
