"""``interlock reconcile``: report drift findings, repair what can be re-driven, check the APIs."""
