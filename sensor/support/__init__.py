"""Small helpers the sensor and the collector share: configuration files, logging,
paths, time zone, HTTP basic auth, systemd notification, garbage-collector policy,
the replay's progress bar. None of them knows about packets."""
