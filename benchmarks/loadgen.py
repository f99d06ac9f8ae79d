"""Load-generator throughput against nginx on 127.0.0.1: one core (ours vs locust FastHttpUser vs wrk), and
every core (our engine with one process vs ``--processes 2``).

nginx answers a static 200 so the generator, not the server, is the bottleneck. One core: each generator runs
pinned to CPU 0 (nginx to CPU 1 when there is one) with 50 connections for the same time, one after the other.
Every core: the generators run on two CPUs; with four or more CPUs nginx gets the others, so it cannot take the
generators' CPU time, and wrk with two threads on the same two CPUs measures what nginx can serve there: the
two-process ratio is valid only when wrk gets clearly more (nginx is not the bottleneck), which the table says.

    .venv/bin/python benchmarks/loadgen.py [--seconds 10] [--users 50]

Writes benchmarks/results/loadgen.json; ``tables()`` turns it into the Markdown of docs/load-testing.md.
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
RESULTS = ROOT / "benchmarks" / "results" / "loadgen.json"
NGINX = "/usr/sbin/nginx"
GENERATOR_CPU = 0
# wrk -t2 must get this much more than our two processes from nginx for nginx not to be the bottleneck.
HEADROOM = 1.2
NGINX_CONF = """daemon off;
worker_processes {workers};
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


def generator_cpus() -> set[int]:
    """The two CPUs the every-core generators run on."""
    return set(sorted(os.sched_getaffinity(0))[:2])


def pin_generators() -> None:
    os.sched_setaffinity(0, generator_cpus())


def start_nginx(tmp: Path, cpus: set[int], workers: int) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    conf = tmp / f"nginx-{port}.conf"
    conf.write_text(NGINX_CONF.format(tmp=tmp, port=port, workers=workers).replace("nginx.pid", f"nginx-{port}.pid"))
    process = subprocess.Popen(
        [NGINX, "-c", str(conf), "-p", str(tmp)],
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: os.sched_setaffinity(0, cpus),
    )
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise SystemExit("nginx did not start")


def run_engine_child(url: str, users: int, seconds: float, processes: int) -> None:
    """In the pinned child: run our engine (one or more processes) and print its figures as JSON."""
    if processes == 1:
        pin_generator()
    else:
        pin_generators()
    sys.path.insert(0, str(ROOT))
    from django_prodkit.loadtest.config import LoadTestConfig, parse_url
    from django_prodkit.loadtest.processes import run_processes
    from django_prodkit.loadtest.runner import run_load_test

    config = LoadTestConfig(target=parse_url(url), users=users, duration=seconds)
    result = run_load_test(config) if processes == 1 else run_processes(config, processes)
    results = result.results
    figures = {"rps": results.requests_per_second, "requests": results.total.requests, "failed": results.total.failed}
    print(json.dumps({**figures, "parser": result.parser, "loop": result.event_loop}))


def bench_engine(url: str, users: int, seconds: float, processes: int = 1) -> float:
    child = [sys.executable, __file__, "--engine-child", url, "--users", str(users), "--seconds", str(seconds)]
    child += ["--processes", str(processes)]
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


def bench_wrk(url: str, users: int, seconds: float, threads: int = 1) -> float:
    wrk = shutil.which("wrk")
    if wrk is None:
        raise SystemExit("wrk is not installed (Debian package wrk)")
    command = [wrk, f"-t{threads}", f"-c{users}", f"-d{int(seconds)}s", url + "/"]
    pin = pin_generator if threads == 1 else pin_generators
    out = subprocess.run(command, check=True, capture_output=True, text=True, preexec_fn=pin).stdout
    match = re.search(r"Requests/sec:\s+([\d.]+)", out)
    assert match, out
    return float(match.group(1))


def stop(nginx: subprocess.Popen[bytes]) -> None:
    nginx.send_signal(signal.SIGQUIT)
    nginx.wait(10)


def run(seconds: float, users: int) -> dict[str, object]:
    """Both measurements, one after the other, each against its own nginx."""
    cpus = sorted(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        nginx, url = start_nginx(tmp, set(cpus) - {GENERATOR_CPU} or set(cpus), 1)
        try:
            one_core = {
                "django-prodkit loadtest": bench_engine(url, users, seconds),
                "locust FastHttpUser": bench_locust(url, users, seconds, tmp),
                "wrk -t1": bench_wrk(url, users, seconds),
            }
        finally:
            stop(nginx)
        # nginx on the CPUs the generators do not use when there are any; else it shares them (and the ratio is void).
        nginx_cpus = set(cpus) - generator_cpus() or set(cpus)
        nginx, url = start_nginx(tmp, nginx_cpus, max(len(nginx_cpus), 2))
        try:
            every_core = {
                "1 process": bench_engine(url, users, seconds),
                "2 processes": bench_engine(url, users, seconds, processes=2),
                "wrk -t2 (what nginx serves)": bench_wrk(url, users, seconds, threads=2),
            }
        finally:
            stop(nginx)
    return {
        "seconds": seconds,
        "users": users,
        "cpus": len(cpus),
        "nginx_shares_generator_cpus": nginx_cpus & generator_cpus() != set(),
        "one_core": one_core,
        "processes": every_core,
        "python": sys.version.split()[0],
    }


def tables(result: dict[str, object]) -> dict[str, str]:
    """The Markdown tables of docs/load-testing.md, by block name."""
    one_core = result["one_core"]
    every = result["processes"]
    assert isinstance(one_core, dict)
    assert isinstance(every, dict)
    ours = one_core["django-prodkit loadtest"]
    rows = ["| generator (one core) | req/s | django-prodkit / this |", "|---|---:|---:|"]
    rows += [f"| {name} | {rps:,.0f} | {ours / rps:.2f}x |" for name, rps in one_core.items()]
    one, two, wrk = every["1 process"], every["2 processes"], every["wrk -t2 (what nginx serves)"]
    valid = not result["nginx_shares_generator_cpus"] and wrk >= HEADROOM * two
    verdict = (
        "nginx was not the bottleneck (wrk -t2 got more from it)"
        if valid
        else "not valid here: nginx shared the generators' CPUs or was the bottleneck"
    )
    every_rows = ["| django-prodkit loadtest | req/s | vs 1 process |", "|---|---:|---:|"]
    every_rows += [f"| {name} | {rps:,.0f} | {rps / one:.2f}x |" for name, rps in every.items()]
    every_rows.append(f"\n{result['cpus']} CPUs, Python {result['python']}; two-process ratio: {verdict}.")
    locust = one_core["locust FastHttpUser"]
    peers = "| load generator on one core | req/s | peer | ratio |\n| --- | ---: | ---: | ---: |\n"
    peers += f"| django-prodkit `loadtest` | {ours:,.0f} | locust FastHttpUser {locust:,.0f} | {ours / locust:.1f} |"
    return {"one_core": "\n".join(rows), "processes": "\n".join(every_rows), "peers": peers}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--processes", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--engine-child", metavar="URL", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.engine_child:
        run_engine_child(args.engine_child, args.users, args.seconds, args.processes)
        return
    result = run(args.seconds, args.users)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    for block in tables(result).values():
        print(f"\n{block}")


if __name__ == "__main__":
    main()
