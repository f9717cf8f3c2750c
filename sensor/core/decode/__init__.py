"""Pure decoders over bytes: no I/O, no clocks, and no exception escapes them.

A malformed packet comes back as a short reason string (`ip.truncated`,
`dns.pointer_loop` …) that the pipeline counts; callers never need `try`.
"""
