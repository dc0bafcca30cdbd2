"""Electrophysiology: activation (eikonal), conduction system, repolarisation and action potentials."""
