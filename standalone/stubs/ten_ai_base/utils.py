"""Secret masking for logs (contract §2.7)."""

from __future__ import annotations


def encrypt(key: str) -> str:
    """Mask a secret as ``prefix...suffix``; short secrets are fully masked."""
    if not key:
        return ""
    if len(key) < 8:
        return "*" * len(key)
    return f"{key[:2]}...{key[-2:]}"
