"""Load-generator throughput on one core: our engine vs locust FastHttpUser vs wrk, against nginx on 127.0.0.1.

nginx answers a static 200 so the generator, not the server, is the bottleneck. Each generator runs pinned to
CPU 0 (nginx to CPU 1 when there is one) with 50 connections for the same time, one after the other.

    .venv/bin/python benchmarks/loadgen.py [--seconds 10] [--users 50]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NGINX = "/usr/sbin/nginx"
GENERATOR_CPU = 0
NGINX_CONF = """daemon off;
worker_processes 1;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 10000000;
    client_body_temp_path {tmp}; proxy_temp_path {tmp}; fastcgi_temp_path {tmp};
    uwsgi_temp_path {tmp}; scgi_temp_path {tmp};
    server {{
        listen 127.0.0.1:{port};
        location / {{ return 200 "ok"; }}
    }}
}}
"""
LOCUSTFILE = """from locust import FastHttpUser, constant, task


class Hammer(FastHttpUser):
    wait_time = constant(0)

    @task
    def root(self):
        self.client.get("/")
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def pin_generator() -> None:
    os.sched_setaffinity(0, {GENERATOR_CPU})


def start_nginx(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = tmp / "nginx.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port))
    process = subprocess.Popen([NGINX, "-c", str(conf), "-p", str(tmp)], stderr=subprocess.DEVNULL)
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) > 1:
        os.sched_setaffinity(process.pid, set(cpus) - {GENERATOR_CPU})
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("nginx did not start")


def run_engine_child(url: str, users: int, seconds: float) -> None:
    """In the pinned child: run our engine and print its figures as JSON."""
    pin_generator()
    sys.path.insert(0, str(ROOT))
    from django_prodkit.loadtest.config import LoadTestConfig, parse_url
    from django_prodkit.loadtest.engine import run_load_test

    config = LoadTestConfig(target=parse_url(url), users=users, duration=seconds, paths=("/",))
    result = run_load_test(config)
    summary = result.summary
    figures = {"rps": summary.requests_per_second, "requests": summary.requests, "failed": summary.failed}
    print(json.dumps({**figures, "parser": result.parser, "loop": result.event_loop}))


def bench_engine(url: str, users: int, seconds: float) -> float:
    child = [sys.executable, __file__, "--engine-child", url, "--users", str(users), "--seconds", str(seconds)]
    out = subprocess.run(child, check=True, capture_output=True, text=True).stdout
    data = json.loads(out.strip().splitlines()[-1])
    print(f"  django-prodkit: {data}", file=sys.stderr)
    return float(data["rps"])


def bench_locust(url: str, users: int, seconds: float, tmp: Path) -> float:
    locustfile = tmp / "locustfile.py"
    locustfile.write_text(LOCUSTFILE)
    prefix = tmp / "locust"
    command = [sys.executable, "-m", "locust", "-f", str(locustfile), "--headless", "--host", url]
    command += ["-u", str(users), "-r", str(users), "-t", f"{int(seconds)}s", "--csv", str(prefix), "--only-summary"]
    subprocess.run(command, check=True, capture_output=True, preexec_fn=pin_generator, cwd=tmp)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    row = rows["Aggregated"]
    print(f"  locust: {row['Request Count']} requests, {row['Failure Count']} failed", file=sys.stderr)
    return float(row["Requests/s"])


def bench_wrk(url: str, users: int, seconds: float) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    command = [wrk, "-t1", f"-c{users}", f"-d{int(seconds)}s", url + "/"]
    out = subprocess.run(command, check=True, capture_output=True, text=True, preexec_fn=pin_generator).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def tables(result: dict[str, object]) -> dict[str, str]:
    """The docs' blocks (benchmarks/render_docs.py): requests per second of each generator, and against locust."""
    rps: dict[str, float] = result["rps"]  # type: ignore[assignment]
    ours = rps["django-prodkit loadtest"]
    lines = ["| generator | req/s | django-prodkit / this |", "| --- | ---: | ---: |"]
    lines += [f"| {name} | {value:,.0f} | {ours / value:.2f}x |" for name, value in rps.items()]
    locust = rps["locust FastHttpUser"]
    peers = "| load generator on one core | req/s | peer | ratio |\n| --- | ---: | ---: | ---: |\n"
    peers += f"| django-prodkit `loadtest` | {ours:,.0f} | locust FastHttpUser {locust:,.0f} | {ours / locust:.1f} |"
    return {"generators": "\n".join(lines), "peers": peers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--engine-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        run_engine_child(args.engine_child, args.users, args.seconds)
        return
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        nginx, url = start_nginx(tmp)
        try:
            results = {
                "django-prodkit loadtest": bench_engine(url, args.users, args.seconds),
                "locust FastHttpUser": bench_locust(url, args.users, args.seconds, tmp),
                "wrk -t1": bench_wrk(url, args.users, args.seconds),
            }
        finally:
            nginx.send_signal(signal.SIGQUIT)
            nginx.wait(10)
    ours = results["django-prodkit loadtest"]
    setup = f"{args.users} connections, {args.seconds:g}s each, generator pinned to CPU {GENERATOR_CPU}"
    print(f"\n{setup}, nginx `return 200`\n")
    print("| generator | req/s | django-prodkit / this |")
    print("|---|---:|---:|")
    for name, rps in results.items():
        print(f"| {name} | {rps:,.0f} | {ours / rps:.2f}x |")
    figures = {name: round(rps, 1) for name, rps in results.items()}
    output = {"users": args.users, "seconds": args.seconds, "rps": figures}
    (ROOT / "benchmarks" / "results").mkdir(parents=True, exist_ok=True)
    (ROOT / "benchmarks" / "results" / "loadgen.json").write_text(json.dumps(output, indent=2) + "\n")


if __name__ == "__main__":
    main()
