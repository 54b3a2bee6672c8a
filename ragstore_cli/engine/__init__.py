"""The one transfer engine: `move(source, target, plan, observer)` and the verbs built on it.

docs/architecture.md draws the layers; backends/contract.py declares the Source and Target every
place records live implements.
"""

from ragstore_cli.engine.move import MovePlan, MoveReport, move
from ragstore_cli.engine.observer import Callbacks, Observer
from ragstore_cli.engine.preflight import IF_EXISTS
from ragstore_cli.engine.verbs import (ExportPlan, ExportReport, ImportPlan, ImportReport, TransferPlan,
                                       TransferReport, export_workspace, import_archive, transfer_workspace)

__all__ = ["IF_EXISTS", "Callbacks", "ExportPlan", "ExportReport", "ImportPlan", "ImportReport", "MovePlan", "MoveReport",
           "Observer", "TransferPlan", "TransferReport", "export_workspace", "import_archive", "move",
           "transfer_workspace"]
