"""Kubernetes and Velero service layer: everything ragbot does in the cluster, no Slack."""
