"""The lake on disk: private folders, the writer lock, batches and the manifest."""

from ingest.lake.manifest import Manifest
from ingest.lake.writer import BatchInfo, LakeWriter

__all__ = ["BatchInfo", "LakeWriter", "Manifest"]
