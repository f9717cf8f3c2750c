"""Blocklists: feed formats, the compiled matcher, and the loader that joins them."""
