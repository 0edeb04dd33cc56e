"""Operator desk: login and roles, screen-pop before pickup, tags and outcomes, missed calls,
click-to-call — in the browser (``/desk``)."""
