"""The operations assets a pip user needs without a clone: dashboards, rules, rule tests, runbook, examples.

`files` finds the shipped copies (inside the wheel, or the repository for a source or editable install);
`dashboards` re-labels the committed dashboards for another feature label; `bundle` renders the whole set with
the user's rule thresholds; `kubernetes` renders the same assets as Kubernetes manifests (`deploy/kubernetes/`).
`anthropic-otel assets export DIR` is the command over them (`command`). Nothing is imported here, so the
`anthropic-otel` command loads the renderers only when `assets` runs.
"""
