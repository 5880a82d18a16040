"""Ingest: sources -> records -> payloads -> embeddings -> Qdrant."""
