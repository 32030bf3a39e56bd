"""nprefgen.models (the layers and contracts: derivations/README.md)."""
