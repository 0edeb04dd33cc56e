"""Missed calls and callback requests become callback jobs (see ``callbacks/README.md``)."""
