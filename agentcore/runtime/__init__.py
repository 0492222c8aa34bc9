"""Wiring: ``RunLog`` (batches of events, folded on commit), ``Agent`` and ``PlanRunner``."""
