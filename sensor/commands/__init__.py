"""The one-shot commands of `madoc-sensor`: replay, rules, summary, doctor, demo.
`cli.py` parses their arguments and calls one function here per command."""
