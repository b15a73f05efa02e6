"""kb: a retrieval-augmented knowledge base."""
