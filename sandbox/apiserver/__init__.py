"""A loopback Kubernetes API server that the official client and kubectl cannot tell from a real one."""
