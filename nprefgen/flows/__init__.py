"""Normalizing flows: bijectors with exact log-determinants (derivations/flows.md)."""
