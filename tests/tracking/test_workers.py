"""Several `artgw serve` worker processes sharing one store (a SQLite file, a PostgreSQL database),
written to at the same time."""

from concurrent.futures import ThreadPoolExecutor

import requests

API = "/api/2.0/mlflow"
WORKERS, CLIENTS, RUNS_EACH = 4, 8, 12


def test_workers_share_one_store_under_concurrent_writes(artgw, store_uri: str) -> None:
    server = artgw(
        "--backend-store-uri",
        store_uri,
        "--workers",
        str(WORKERS),
        "--log-level",
        "debug",
    )
    server.wait_for_workers(WORKERS)

    def client(n: int) -> list[str]:
        with requests.Session() as session:
            ids = []
            for i in range(RUNS_EACH):
                body = {"experiment_id": "0", "run_name": f"c{n}-{i}"}
                run = session.post(f"{server.url}{API}/runs/create", json=body, timeout=60)
                assert run.status_code == 200, run.text
                run_id = run.json()["run"]["info"]["run_id"]
                batch = {
                    "run_id": run_id,
                    "metrics": [{"key": "m", "value": i, "timestamp": 1}],
                    "params": [{"key": "client", "value": str(n)}],
                }
                logged = session.post(f"{server.url}{API}/runs/log-batch", json=batch, timeout=60)
                assert logged.status_code == 200, logged.text
                ids.append(run_id)
            return ids

    with ThreadPoolExecutor(CLIENTS) as pool:
        created = [run_id for ids in pool.map(client, range(CLIENTS)) for run_id in ids]
    assert len(set(created)) == CLIENTS * RUNS_EACH
    search = {"experiment_ids": ["0"], "max_results": 1000}
    found = requests.post(f"{server.url}{API}/runs/search", json=search, timeout=60).json()
    assert {run["info"]["run_id"] for run in found["runs"]} == set(created)
    assert all(run["data"]["params"][0]["key"] == "client" for run in found["runs"])
    writers = server.answering_processes("POST /api/2.0/mlflow/runs/")
    assert len(writers) > 1, "the writes should have been spread over several processes"
