"""Connection checks for every configured backend, run concurrently, each bounded by a timeout."""

from ragstore_cli.checks.model import CheckResult
from ragstore_cli.checks.runner import BACKENDS, configured_backends, run_checks

__all__ = ["BACKENDS", "CheckResult", "configured_backends", "run_checks"]
