"""Synthetic patients with known ground truth: torso, lungs, spine and a four-chamber heart."""

from cardiotwin.phantom.generate import Phantom, generate_phantom
from cardiotwin.phantom.params import PhantomParams, sample_params

__all__ = ["Phantom", "PhantomParams", "generate_phantom", "sample_params"]
