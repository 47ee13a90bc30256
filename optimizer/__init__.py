"""Pure optimizer library: Problem -> Solution (numpy, networkx, OR-Tools; never FastAPI or SQLAlchemy).

Being built for issue 3.
"""
