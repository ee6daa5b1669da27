"""Data in: the import document (docs/import.md), read as a stream, validated, upserted."""
