"""Post-steps: what runs after a scheduled job succeeded (DESIGN.md, "A batch job's life", step 6).

In order, each recorded as a PostStep row on the job: append the output to the schedule's history
table, publish one synthetic event per output row into its events table, drop the outputs of its
runs older than the newest N. Each append happens exactly once, whatever is retried or redelivered
(the catalog's append_once); a failed step stops the later ones and never touches the job's status
or its output table. `receivers` creates the steps when a job ends; `runner` runs them.
"""
