"""`make bench`: Ops-Core measured end to end on a local control plane (see README)."""
