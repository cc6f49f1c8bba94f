"""Commands an operator runs beside the gateway: bench, demo, the SIP load caller, engine check."""
