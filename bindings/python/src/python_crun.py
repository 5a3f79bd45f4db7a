"""Compatibility name: crun's own Python module is ``python_crun``; this re-exports
:mod:`crun_rs` so scripts written for it import unchanged."""

from crun_rs import *  # noqa: F401,F403
from crun_rs import __all__  # noqa: F401
