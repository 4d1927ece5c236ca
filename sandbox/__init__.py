"""The sandbox: a loopback Kubernetes API server, a Velero simulation and an Enterprise RAG seed."""
