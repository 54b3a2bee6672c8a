"""Export and import of whole workspaces through `.ragstore` archives, across any backend profile."""

from ragstore_cli.transfer.export import ExportReport, export_workspace
from ragstore_cli.transfer.importer import IF_EXISTS, ImportReport, import_archive

__all__ = ["IF_EXISTS", "ExportReport", "ImportReport", "export_workspace", "import_archive"]
