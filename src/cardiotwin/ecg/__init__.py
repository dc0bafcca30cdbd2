"""The ECG: electrodes and leads, lead fields, fast simulation, signal processing of recorded ECGs."""
