"""Persistence: training runs, epochs, predictions and feedback (SQLAlchemy + Alembic)."""
