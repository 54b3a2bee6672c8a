"""Embeddings: codecs (codecs.py), streaming NanoVectorDB files (nanofile.py), stats/verify/export."""
