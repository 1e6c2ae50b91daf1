"""Kubernetes plumbing shared by the `seldon` and `kserve` flavors.

Client configuration (`client`), names and labels (`naming`, `records`), optimistic
create-or-update and paginated lists (`resources`), watch-based waiting (`watching`) for
the generation we wrote (`freshness`), retries (`retry`), storage Secrets (`secrets`,
`credentials`; each flavor supplies its `SecretLayout`), pod logs (`logs`), why pods fail
(`pods`), Deployment rollouts (`deployments`), HTTP inference protocols (`protocols`), and
the shared server and deployer base classes. The `kubernetes` client library is imported
only inside functions, when a task runs.
"""
