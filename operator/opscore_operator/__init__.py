"""The Ops-Core operator: kopf handlers around the pure engine in opscore_logic."""
