"""Ops-Core sidecar: the HTTP endpoint agents report their state to.

It checks the agent's API key, stores each report in the Agent's `status.reports` (creating
the Agent on first contact) and records AgentKit's signed registration webhook in the
Agent's spec. Run it with `python -m opscore_sidecar`; `create_app` builds the ASGI app.
"""
