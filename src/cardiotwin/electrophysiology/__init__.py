"""Electrophysiology: activation (eikonal), conduction system, repolarisation and action potentials."""

from cardiotwin.electrophysiology.eikonal import EikonalSolver, conduction_tensors, metric_tensors

__all__ = ["EikonalSolver", "conduction_tensors", "metric_tensors"]
