"""vitrine: search heritage collections with CLIP and Qdrant."""
