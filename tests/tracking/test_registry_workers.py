"""Version numbers with `--workers 4` on one store (a SQLite file, a PostgreSQL database): clients
registering versions of one model at once get 1, 2, 3, ... with no duplicate and no gap. Prints
the rate (versions created per second) for the record."""

import time
from concurrent.futures import ThreadPoolExecutor

import requests

API = "/api/2.0/mlflow"
WORKERS, CLIENTS, VERSIONS_EACH = 4, 8, 15


def test_concurrent_registrations_across_workers(artgw, store_uri: str) -> None:
    server = artgw(
        "--backend-store-uri", store_uri, "--workers", str(WORKERS), "--log-level", "debug"
    )
    server.wait_for_workers(WORKERS)
    created = requests.post(f"{server.url}{API}/registered-models/create", json={"name": "hot"})
    assert created.status_code == 200, created.text

    def client(n: int) -> list[int]:
        numbers = []
        with requests.Session() as session:
            for i in range(VERSIONS_EACH):
                body = {"name": "hot", "source": f"mlflow-artifacts:/hot/{n}/{i}"}
                made = session.post(
                    f"{server.url}{API}/model-versions/create", json=body, timeout=60
                )
                assert made.status_code == 200, made.text
                numbers.append(int(made.json()["model_version"]["version"]))
        return numbers

    started = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        numbers = [v for got in pool.map(client, range(CLIENTS)) for v in got]
    elapsed = time.perf_counter() - started
    total = CLIENTS * VERSIONS_EACH
    assert sorted(numbers) == list(range(1, total + 1))  # consecutive, duplicates: 0
    search = requests.get(
        f"{server.url}{API}/model-versions/search",
        params={"filter": "name = 'hot'", "max_results": 1000},
        timeout=60,
    ).json()
    assert sorted(int(v["version"]) for v in search["model_versions"]) == list(range(1, total + 1))
    writers = server.answering_processes("POST /api/2.0/mlflow/model-versions/create")
    assert len(writers) > 1, "the creates should have been spread over several processes"
    print(
        f"\n{store_uri.split(':')[0]}: {total} versions in {elapsed:.2f}s = {total / elapsed:.0f}/s"
    )
