"""Synthetic patients with known ground truth: torso, lungs, spine and a four-chamber heart."""

from cardiotwin.phantom.generate import Phantom, generate_phantom
from cardiotwin.phantom.params import PhantomParams, sample_params
from cardiotwin.phantom.placement import draw_patient, place_heart

__all__ = ["Phantom", "PhantomParams", "draw_patient", "generate_phantom", "place_heart", "sample_params"]
