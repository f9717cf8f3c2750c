"""One small parser per feed format: text in, entries and bad lines out.

Parsers are pure (they take the file's text and the source's options, never
open files) so that a local file, a cached download and a test string all go
through the same code. Each yields `Entry` for a usable item and `BadLine`
(with the reason) for one it rejects; comments and blank lines yield nothing.
For JSON formats the "line" is the position of the item in the document.
`common.py` holds what the parsers share, `registry.py` the formats by name.
"""
