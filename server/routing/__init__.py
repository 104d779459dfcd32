"""The routing table: what every sidecar must do with each model's traffic."""
