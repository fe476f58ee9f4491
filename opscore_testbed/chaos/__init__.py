"""The fault suite (issue 9): break Ops-Core on purpose while workflows run and count the
outcomes. `python -m opscore_testbed.chaos [--short] [--scenarios F1,...]`; see
docs/reliability.md for what each scenario does and what it found."""
