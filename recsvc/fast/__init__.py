"""Compiled answers (`_kernel.pyx`): the chatbot's common requests, in C, to wire bytes.

`kernel_for(model, config)` builds one per model load. Without the compiled module
(a checkout that was never installed with `pip install -e .`) or with
`compiled_answers = false`, there is none and the Python path answers everything.
"""
from __future__ import annotations

import logging

log = logging.getLogger("recsvc.fast")

try:
    from recsvc.fast._kernel import Kernel
except ImportError as e:  # not built: every request takes the Python path
    Kernel = None  # type: ignore[assignment,misc]
    UNAVAILABLE = f"recsvc.fast._kernel is not built ({e}); run `pip install -e .` to build it"
else:
    UNAVAILABLE = ""


def kernel_for(model, config) -> "Kernel | None":
    if not config.compiled_answers:
        return None
    if Kernel is None:
        log.warning("%s; answering in Python (slower)", UNAVAILABLE)
        return None
    return Kernel(model, config)
