"""The portable `.ragstore` archive: a tar stream of zstd members with a manifest first (format v1)."""

from ragstore_cli.archive.manifest import FORMAT_VERSION, Manifest, Member, Section
from ragstore_cli.archive.reader import ArchiveReader, SectionReader, SectionStats
from ragstore_cli.archive.writer import ArchiveWriter, SectionWriter

__all__ = ["FORMAT_VERSION", "ArchiveReader", "ArchiveWriter", "Manifest", "Member", "Section",
           "SectionReader", "SectionStats", "SectionWriter"]
