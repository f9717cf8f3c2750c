"""Capture sources: the edges that turn files and sockets into frame batches."""
