"""Storage backends: one small protocol per storage role (base.py), one module per backend."""
