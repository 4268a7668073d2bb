"""Side-by-side benchmark harness for artgw and `mlflow server` (see benchmarks/README.md)."""
