from __future__ import annotations

from tests.sync.conftest import clock, job_ctx, service_clock

__all__ = ["clock", "job_ctx", "service_clock"]
