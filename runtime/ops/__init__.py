"""What an operator watches: health and readiness probes, Prometheus metrics, request ids."""
