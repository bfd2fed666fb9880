"""Benchmark the web front end over HTTP, as browsers meet it.

Measures, in one run and on the same 1280×960 photos of MNIST test digits on paper:
  1. one visitor at a time: upload → answer, p50/p99 (target p50 ≤ 40 ms);
  2. 200 uploads from 20 visitors at once while a training run started on the dashboard is going:
     all answered, and how long it took (target ≤ 5 s);
  3. the same two against a baseline in the same run: a plain Starlette app on uvicorn that reads
     each picture inline on its event loop (Keras `model.predict`), with the same training load.

    python scripts/benchmark_web.py                  # uses the serving model in MNIST_MODEL_DIR
    python scripts/benchmark_web.py --single 100 --visitors 20 --uploads-per-visitor 10
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT / "tests"))  # the tests' photo helpers and web client helpers

import httpx  # noqa: E402
import numpy as np  # noqa: E402
from benchmark_support import (  # noqa: E402
    background_training,
    benchmark_photos,
    copy_serving_model,
    serving_version,
)
from web_support import ADMIN_TOKEN, SECRET_KEY, page_data, sign_in  # noqa: E402

from mnist_engine.settings import get_settings  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def percentiles(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))


async def wait_until_up(url: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(url + "/")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise SystemExit(f"{url} did not come up")


async def one_at_a_time(url: str, photos: list[bytes], count: int) -> list[float]:
    """Upload → answer for one visitor, one photo after the other (milliseconds)."""
    latencies = []
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:
        csrf = page_data((await client.get("/")).text).get("csrf", "")
        for index in range(count + 3):
            started = time.perf_counter()
            response = await client.post(
                "/api/read", content=photos[index % len(photos)], headers={"X-CSRF-Token": csrf}
            )
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code != 200 or not response.json().get("read"):
                raise SystemExit(f"unexpected answer: {response.status_code} {response.text[:200]}")
            if index >= 3:  # the first few warm the connection and the workers
                latencies.append(elapsed)
    return latencies


async def burst(url: str, photos: list[bytes], visitors: int, per_visitor: int) -> dict[str, float]:
    """Every visitor uploads its photos one after another, all visitors at once."""
    latencies: list[float] = []
    answered = 0

    async def visitor(number: int) -> None:
        nonlocal answered
        async with httpx.AsyncClient(base_url=url, timeout=120) as client:
            csrf = page_data((await client.get("/")).text).get("csrf", "")
            await ready.wait()
            for index in range(per_visitor):
                started = time.perf_counter()
                response = await client.post(
                    "/api/read",
                    content=photos[(number + index) % len(photos)],
                    headers={"X-CSRF-Token": csrf},
                )
                latencies.append((time.perf_counter() - started) * 1000)
                if response.status_code == 200 and response.json().get("read"):
                    answered += 1

    ready = asyncio.Event()
    tasks = [asyncio.create_task(visitor(number)) for number in range(visitors)]
    await asyncio.sleep(1.0)  # every visitor has its page and cookie
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    drain = time.perf_counter() - started
    p50, p99 = percentiles(latencies)
    return {"drain": drain, "answered": answered, "total": visitors * per_visitor, "p50": p50, "p99": p99}


# --- The baseline: a plain app that reads inline on its event loop --------------------------------


def serve_inline(port: int, model_path: Path) -> None:
    """A Starlette app as simple as it gets: read the body, run the pipeline and Keras inline."""
    import keras
    import uvicorn
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, JSONResponse
    from starlette.routing import Route

    from mnist_engine.photo import recognize
    from mnist_engine.serving.model_input import to_model_input

    model = keras.models.load_model(model_path / "model.keras")

    class InlinePredict:
        def predict_proba(self, images: np.ndarray) -> np.ndarray:
            return model.predict(to_model_input(images), verbose=0)

    async def home(request: Request) -> HTMLResponse:
        return HTMLResponse('<script type="application/json" id="page-data">{}</script>')

    async def read(request: Request) -> JSONResponse:
        recognition = recognize(await request.body(), InlinePredict())
        return JSONResponse({"read": recognition.text})

    app = Starlette(routes=[Route("/", home), Route("/api/read", read, methods=["POST"])])
    uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")


async def start_run_on_dashboard(url: str) -> None:
    async with httpx.AsyncClient(base_url=url, timeout=30) as admin:
        csrf = await sign_in(admin)
        started = await admin.post(
            "/admin/api/train", json={"architecture": "dense", "epochs": 100}, headers={"X-CSRF-Token": csrf}
        )
        if started.status_code != 200:
            raise SystemExit(f"the run did not start: {started.text}")


def first_epoch_done(log_path: Path) -> bool:
    return re.search(r"Run #\d+ epoch 1/", log_path.read_text()) is not None


async def main_async(arguments: argparse.Namespace) -> None:
    settings = get_settings()
    version = serving_version(settings.model_dir)
    photos = benchmark_photos(settings.data_dir)

    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        model_dir = copy_serving_model(settings.model_dir, version, scratch)

        # The service, as `make run` starts it with no chat token: its own process.
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        log_path = scratch / "service.log"
        environment = {
            key: value for key, value in os.environ.items() if not key.startswith(("TELEGRAM_", "WEB_"))
        }
        environment.update(
            WEB_PORT=str(port),
            ADMIN_TOKEN=ADMIN_TOKEN,
            WEB_SECRET_KEY=SECRET_KEY,
            MNIST_MODEL_DIR=str(scratch / "models"),
            MNIST_DATA_DIR=str(settings.data_dir.resolve()),
            DATABASE_URL=f"sqlite:///{scratch / 'web.sqlite3'}",
            PHOTOS_PER_MINUTE="1000",
            TRAINING_TRAIN_LIMIT="30000",
            # This run's split has no cached photo material, and making it takes minutes: MNIST alone.
            TRAINING_PHOTO_CROPS="0",
        )
        with log_path.open("w") as log:
            service = subprocess.Popen(
                [sys.executable, "-m", "bot"],
                env=environment,
                cwd=scratch,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        try:
            await wait_until_up(url)
            single = await one_at_a_time(url, photos, arguments.single)
            await start_run_on_dashboard(url)
            while not first_epoch_done(log_path):
                await asyncio.sleep(0.5)
            service_burst = await burst(url, photos, arguments.visitors, arguments.uploads_per_visitor)
            still_training = (
                "Run #1 epoch" in log_path.read_text() and "cancelled" not in log_path.read_text()
            )
        finally:
            service.terminate()
            service.wait(timeout=60)

        # The baseline, with the same photos and the same training load.
        port = free_port()
        baseline_url = f"http://127.0.0.1:{port}"
        baseline = subprocess.Popen(
            [sys.executable, __file__, "--serve-inline", str(port), str(model_dir)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        training = background_training(settings.data_dir.resolve(), scratch / "baseline-models")
        try:
            await wait_until_up(baseline_url)
            baseline_single = await one_at_a_time(baseline_url, photos, arguments.single)
            await asyncio.sleep(5)  # the training process is past its start-up
            baseline_burst = await burst(
                baseline_url, photos, arguments.visitors, arguments.uploads_per_visitor
            )
        finally:
            baseline.terminate()
            training.terminate()
            baseline.wait(timeout=60)
            training.wait(timeout=60)

    p50, p99 = percentiles(single)
    base_p50, base_p99 = percentiles(baseline_single)
    total = service_burst["total"]
    print(
        f"\nWeb benchmark: {arguments.single} uploads one at a time; {total} uploads from "
        f"{arguments.visitors} visitors at once during a training run; 1280×960 JPEG photos.\n"
    )
    print("| measure | web front end | baseline: inline on the event loop | target |")
    print("|---|---:|---:|---:|")
    print(
        f"| one visitor, upload → answer, p50 / p99 | {p50:.1f} / {p99:.1f} ms | "
        f"{base_p50:.1f} / {base_p99:.1f} ms | p50 ≤ 40 ms |"
    )
    print(
        f"| {total} uploads from {arguments.visitors} visitors during training: all answered in | "
        f"{service_burst['drain']:.2f} s ({service_burst['answered']:.0f}/{total}) | "
        f"{baseline_burst['drain']:.2f} s ({baseline_burst['answered']:.0f}/{total}) | ≤ 5 s |"
    )
    print(
        "| burst: per-upload latency p50 / p99 | "
        f"{service_burst['p50']:.0f} / {service_burst['p99']:.0f} ms | "
        f"{baseline_burst['p50']:.0f} / {baseline_burst['p99']:.0f} ms | |"
    )
    print(
        f"| the run was still training during the burst | {'yes' if still_training else 'no'} | yes | yes |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--single", type=int, default=50, help="uploads measured one at a time")
    parser.add_argument("--visitors", type=int, default=20)
    parser.add_argument("--uploads-per-visitor", type=int, default=10)
    parser.add_argument("--serve-inline", nargs=2, metavar=("PORT", "MODEL_DIR"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve_inline:
        serve_inline(int(arguments.serve_inline[0]), Path(arguments.serve_inline[1]))
        return
    asyncio.run(main_async(arguments))


if __name__ == "__main__":
    main()
