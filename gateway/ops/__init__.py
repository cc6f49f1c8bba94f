"""Running the gateway as a service: metrics, logs, start-up and drain, limits, admission."""
