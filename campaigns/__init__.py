"""Outbound campaigns: appointment reminders with yes/no confirmation, post-visit feedback,
six-month recalls and waitlist offers, paced and never twice (issue 14)."""
