"""Schedules: a cron rule that triggers a model's active batch config over an input table into a
templated output table. services (writes, with validation), selectors (reads, team-scoped), tick
(what beat runs: claims due times and starts jobs), cron (due times, words, templates: no Django)."""
