"""Territory planning service: FastAPI + PostGIS around the pure `optimizer` and `geodata` libraries."""

__version__ = "0.1.0"
