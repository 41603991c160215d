"""valueaudit core: score words with reward models and language models, store the
scores in DuckDB, and analyse which values a model favours (no Streamlit import)."""

__all__ = ["corpora", "prompts", "models", "scoring", "store", "analysis", "paperdata"]
