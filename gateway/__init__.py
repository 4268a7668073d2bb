"""artgw's HTTP layer: MLflow-compatible artifact and tracking REST on aiohttp."""
