"""nprefgen.plots: matplotlib figures (the layers: derivations/README.md)."""
