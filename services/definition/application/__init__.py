"""Use cases of the definition service: each RPC's behaviour, one transaction each."""
