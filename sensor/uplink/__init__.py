"""Sensor → collector: batches, the on-disk spool, the sender."""
