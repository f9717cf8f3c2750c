"""madoc-sensor: a network sensor for national anti-malware campaigns."""

__version__ = "0.1.0"
