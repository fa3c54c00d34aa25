"""WhatsApp "Export chat" files (.txt, .zip, folders) into the lake.

`parse_export` turns one file's bytes into messages (strict, dialect-detecting);
`import_exports` reads, parses and lands whole PATH lists. See
shared/docs/export-formats.md for the variants handled.
"""

from ingest.sources.export.archive import ArchiveLimits, read_export_file
from ingest.sources.export.importer import FileOutcome, ImportOptions, import_exports
from ingest.sources.export.parse import Message, ParsedExport, parse_export

__all__ = [
    "ArchiveLimits",
    "FileOutcome",
    "ImportOptions",
    "Message",
    "ParsedExport",
    "import_exports",
    "parse_export",
    "read_export_file",
]
