"""nprefgen.metrics (the layers and contracts: derivations/README.md)."""
