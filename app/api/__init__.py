"""HTTP layer: one module per resource; thin routes call services."""
