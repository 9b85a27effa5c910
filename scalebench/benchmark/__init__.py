"""The protocol: train at one scale, select on validation at that scale, test at every scale."""
