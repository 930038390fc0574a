"""What every builder shares: the times objects were created and started, names' hashes, managedFields."""

from __future__ import annotations

import hashlib

GPU = "nvidia.com/gpu"
CREATED = "2025-03-01T08:00:00Z"
STARTED = "2025-03-01T09:30:00Z"
VLLM_IMAGE = "vllm/vllm-openai:v0.8.5"


def name_hash(*parts: str, length: int = 10) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def name_suffix(n: int) -> str:
    """A unique 5-character pod-name suffix, like the random ones Kubernetes generates."""
    alphabet = "bcdfghjklmnpqrstvwxz2456789"
    out = ""
    for _ in range(5):
        n, digit = divmod(n, len(alphabet))
        out = alphabet[digit] + out
    return out


def managed_fields(manager: str) -> list[dict]:
    return [
        {
            "manager": manager,
            "operation": "Update",
            "apiVersion": "v1",
            "time": CREATED,
            "fieldsType": "FieldsV1",
            "fieldsV1": {"f:metadata": {"f:labels": {".": {}}}, "f:status": {"f:conditions": {".": {}}}},
        }
    ]
