"""`kubectl opscore`: Ops-Core's kubectl plugin (the `kubectl-opscore` console script).

kubectl runs any `kubectl-NAME` executable on PATH as `kubectl NAME`, passing the rest of
the command line and the environment (so KUBECONFIG) through. The plugin shows runs and
agents the way people read them (a tree of steps, a table of agents, the DAG as text) and
wraps the spec verbs (`suspend`, `resume`, `cancel`, `retryGeneration`) with the checks
that tell a user when a verb does not apply. Rendering is pure (`tree`, `graphs`,
`agents_table`, `verbs`); `cluster` is the only module that talks to the API server.
"""
