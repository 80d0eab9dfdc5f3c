"""Conv1D and pooling ops. Re-exported by ``seqcore.ops``. (Being written.)"""

from __future__ import annotations

__all__: list[str] = []
