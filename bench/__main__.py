"""Roundtable benchmarks: ``make bench`` (or ``python -m bench``).

Every figure is printed beside a baseline measured in the same run:

* inbound: signed Create(Note) POSTs accepted per second by a real
  ``roundtable serve`` (HTTP, signature and digest check, dedupe, store, 202),
  driven by wrk from a separate process, against a bare aiohttp handler that
  answers 202 and against an inbox-shaped aiohttp handler doing digest +
  JSON parse + RSA verify with no database; plus the raw ``cryptography``
  RSA-2048 verify rate; p50/p99 latency from wrk.
* outbound: one public post fanned out to 1,000 followers on 100 local
  receiving servers (shared inboxes: 100 deliveries), and to 1,000 distinct
  inboxes (1,000 deliveries): deliveries per second against the raw
  RSA-2048 sign rate.
* the server's resident memory at idle and at its peak.
* inbox: 100,000 conversations and 1,000,000 messages in SQLite; p50/p95 of
  inbox pages, filters and full-text searches through the service layer and
  the JSON API, against the bare SQL of a page and a bare aiohttp handler
  answering the same JSON (see ``bench/inbox.py``).

The server under test is pinned to CPU 0 and everything else to CPU 1.
Results are printed and written to ``bench/results/latest.{md,json}``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import multiprocessing
import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SERVER_CPU = {0}
LOAD_CPU = {1}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_range(n: int) -> int:
    """A base port with n free ports above it."""
    for _ in range(200):
        base = free_port()
        if base + n >= 65000:
            continue
        ok = True
        for p in range(base, base + n):
            with socket.socket() as s:
                try:
                    s.bind(("127.0.0.1", p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


def pin(cpus: set[int]):
    usable = os.sched_getaffinity(0)
    cpus = cpus & usable or usable

    def _pin():
        os.sched_setaffinity(0, cpus)

    return _pin


def spawn(args: list[str], *, cpus: set[int], env: dict | None = None, log: Path | None = None) -> subprocess.Popen:
    out = open(log, "ab") if log else subprocess.DEVNULL
    return subprocess.Popen(args, cwd=ROOT, env=env or os.environ.copy(), stdout=out, stderr=subprocess.STDOUT,
                            preexec_fn=pin(cpus))


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up")


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


def rss_kib(pid: int) -> tuple[int, int]:
    """(current RSS, peak RSS) in KiB from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


# --- raw crypto baselines ------------------------------------------------------------------------


def crypto_rates(seconds: float = 2.0) -> dict:
    os.sched_setaffinity(0, LOAD_CPU & os.sched_getaffinity(0) or os.sched_getaffinity(0))
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pub = key.public_key()
    data = b"(request-target): post /inbox\nhost: example\ndate: Mon, 01 Jan 2026 00:00:00 GMT\ndigest: SHA-256=x"
    sig = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        key.sign(data, padding.PKCS1v15(), hashes.SHA256())
        n += 1
    sign_rate = n / (time.perf_counter() - start)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        pub.verify(sig, data, padding.PKCS1v15(), hashes.SHA256())
        n += 1
    verify_rate = n / (time.perf_counter() - start)
    return {"rsa2048_sign_per_s": round(sign_rate), "rsa2048_verify_per_s": round(verify_rate)}


# --- inbound ----------------------------------------------------------------------------------------


def _sign_batch(args) -> list[str]:
    start, count, port, actor_port, pem = args
    from hub import crypto
    from hub.federation import httpsig

    key = crypto.load_private_pem(pem)
    actor = f"http://localhost:{actor_port}/users/loader"
    target = f"http://localhost:{port}/users/bench/inbox"
    lines = []
    for i in range(start, start + count):
        note_id = f"http://localhost:{actor_port}/notes/{i}"
        body = json.dumps({
            "@context": "https://www.w3.org/ns/activitystreams", "id": note_id + "/activity", "type": "Create",
            "actor": actor, "to": ["https://www.w3.org/ns/activitystreams#Public"], "cc": [actor + "/followers"],
            "object": {"id": note_id, "type": "Note", "attributedTo": actor, "content": f"<p>bench note {i}</p>",
                       "to": ["https://www.w3.org/ns/activitystreams#Public"], "published": "2026-11-20T00:00:00Z"},
        }, separators=(",", ":")).encode()
        headers = httpsig.sign_cavage(method="POST", url=target, body=body, key_id=actor + "#main-key", private_key=key)
        headers["Content-Type"] = "application/activity+json"
        lines.append("\t".join(["/users/bench/inbox", *(f"{k}: {v}" for k, v in headers.items()), body.decode()]))
    return lines


def make_requests(path: Path, count: int, port: int, actor_port: int, pem: str) -> None:
    chunk = 2000
    jobs = [(i, min(chunk, count - i), port, actor_port, pem) for i in range(0, count, chunk)]
    with multiprocessing.Pool(max(1, len(os.sched_getaffinity(0)))) as pool, open(path, "w") as fh:
        for lines in pool.imap(_sign_batch, jobs):
            fh.write("\n".join(lines) + "\n")


def run_wrk(url: str, script: Path, requests_file: Path, *, seconds: int, connections: int) -> dict:
    proc = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url, "--", str(requests_file)],
        capture_output=True, text=True, preexec_fn=pin(LOAD_CPU), timeout=seconds + 120,
    )
    out = proc.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    return {"requests_per_s": round(rps), "requests": total, "non_2xx": int(non2xx.group(1)) if non2xx else 0,
            "p50_ms": round(pct("50"), 2), "p99_ms": round(pct("99"), 2)}


def hub_env(tmp: Path, port: int, **extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ROUNDTABLE_")}
    env.update({
        "ROUNDTABLE_DEV": "1", "ROUNDTABLE_DOMAIN": f"localhost:{port}", "ROUNDTABLE_LISTEN": f"127.0.0.1:{port}",
        "ROUNDTABLE_DATA": str(tmp), "ROUNDTABLE_LOG_LEVEL": "WARNING",
    })
    env.update({f"ROUNDTABLE_{k.upper()}": str(v) for k, v in extra.items()})
    return env


def cli(env: dict, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "hub", *args], cwd=ROOT, env=env, check=True,
                          capture_output=True, text=True).stdout.strip()


def inbound(tmp: Path, seconds: int, count: int) -> dict:
    from hub import crypto

    private_pem, public_pem = crypto.generate_rsa_pem()
    pem_file = tmp / "loader.pem"
    pem_file.write_text(public_pem)
    actor_port, port = free_port(), free_port()
    requests_file = tmp / "requests.tsv"
    t0 = time.monotonic()
    make_requests(requests_file, count, port, actor_port, private_pem)
    print(f"  signed {count} requests in {time.monotonic() - t0:.1f}s", flush=True)
    script = ROOT / "bench" / "post.lua"
    actor = spawn([sys.executable, "-m", "bench.peers", "actor", str(actor_port), str(pem_file)], cpus=LOAD_CPU)
    results = {}
    try:
        wait_http(f"http://127.0.0.1:{actor_port}/users/loader")
        url = f"http://127.0.0.1:{port}/users/bench/inbox"
        for name, args in (
            ("bare_aiohttp", [sys.executable, "-m", "bench.peers", "bare", str(port)]),
            ("inbox_no_db", [sys.executable, "-m", "bench.peers", "inbox", str(port), str(pem_file)]),
        ):
            proc = spawn(args, cpus=SERVER_CPU)
            try:
                wait_http(f"http://127.0.0.1:{port}/")
                results[name] = run_wrk(url, script, requests_file, seconds=seconds, connections=64)
            finally:
                stop(proc)
            print(f"  {name}: {results[name]}", flush=True)
        data = tmp / "hub-in"
        env = hub_env(data, port, workers=0)
        cli(env, "migrate")
        cli(env, "actor", "add", "bench", "--kind", "organization")
        hub = spawn([sys.executable, "-m", "hub", "serve"], cpus=SERVER_CPU, env=env, log=tmp / "hub-in.log")
        try:
            wait_http(f"http://127.0.0.1:{port}/healthz")
            idle = rss_kib(hub.pid)[0]
            results["roundtable"] = run_wrk(url, script, requests_file, seconds=seconds, connections=64)
            results["roundtable"]["rss_idle_kib"] = idle
            results["roundtable"]["rss_peak_kib"] = rss_kib(hub.pid)[1]
        finally:
            stop(hub)
        import sqlite3

        con = sqlite3.connect(data / "roundtable.db")
        stored = con.execute("SELECT count(*) FROM activities WHERE local = 0").fetchone()[0]
        con.close()
        results["roundtable"]["stored_activities"] = stored
        results["roundtable"]["distinct_requests_available"] = count
        print(f"  roundtable: {results['roundtable']}", flush=True)
    finally:
        stop(actor)
    return results


# --- outbound ---------------------------------------------------------------------------------------


async def _seed(env: dict, servers: int, actors: int, base_port: int, pem: str) -> None:
    """Followers on the receiving servers, stored as if their Follows had arrived."""
    from bench.peers import actor_doc
    from hub import actors as actor_svc
    from hub.app import open_hub
    from hub.config import load_config
    from hub.federation import documents
    from hub.ids import new_id
    from hub.store import actors as actor_store
    from hub.store import social

    hub = await open_hub(load_config(env=env))
    try:
        shared_org = await actor_svc.create_local_actor(hub, "shared", kind="organization")
        distinct_org = await actor_svc.create_local_actor(hub, "distinct", kind="organization")
        async with hub.db.write() as conn:
            for i in range(servers):
                base = f"http://localhost:{base_port + i}"
                for n in range(actors):
                    for prefix, org in (("s", shared_org), ("d", distinct_org)):
                        doc = actor_doc(base, f"{prefix}{n}", pem, shared=prefix == "s")
                        values, keys = documents.parse_actor(doc, new_id=new_id())
                        actor_id = await actor_store.upsert_remote_actor(conn, values, keys)
                        await social.put_follow(conn, follower_id=actor_id, followee_id=org.id, state="accepted", uri=None)
    finally:
        await hub.close()


def _stats(control: int, activity: str) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{control}/stats?activity={activity}", timeout=5) as resp:
        return json.loads(resp.read())


def _post_and_wait(env: dict, username: str, expected: int, control: int, port: int) -> dict:
    t_post = time.monotonic()
    uri = cli(env, "post", username, "Benchmark announcement to every follower")
    # The Create activity's id is what receivers count.
    import sqlite3

    con = sqlite3.connect(Path(env["ROUNDTABLE_DATA"]) / "roundtable.db", timeout=30)
    activity = None
    while activity is None:
        row = con.execute("SELECT uri FROM activities WHERE object_uri = ? AND type = 'Create'", (uri,)).fetchone()
        activity = row[0] if row else None
        if activity is None:
            time.sleep(0.005)
    con.close()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        stats = _stats(control, activity)
        if stats["count"] >= expected:
            break
        time.sleep(0.02)
    else:
        raise RuntimeError(f"only {stats['count']} of {expected} deliveries arrived")
    steady = (stats["last"] - stats["first"]) or 1e-9
    return {"deliveries": stats["count"], "steady_deliveries_per_s": round((stats["count"] - 1) / steady),
            "first_to_last_s": round(steady, 3), "post_command_to_last_s": round(time.monotonic() - t_post, 3)}


def outbound(tmp: Path, servers: int, actors: int) -> dict:
    from hub import crypto

    _private, public_pem = crypto.generate_rsa_pem()
    pem_file = tmp / "receivers.pem"
    pem_file.write_text(public_pem)
    base_port, control, port = free_port_range(servers), free_port(), free_port()
    receivers = spawn([sys.executable, "-m", "bench.peers", "receivers", str(base_port), str(servers), str(actors),
                       str(control), str(pem_file)], cpus=LOAD_CPU)
    results = {}
    hub = None
    try:
        wait_http(f"http://127.0.0.1:{control}/stats")
        data = tmp / "hub-out"
        env = hub_env(data, port, job_poll_s=0.02)
        cli(env, "migrate")
        asyncio.run(_seed(env, servers, actors, base_port, public_pem))
        hub = spawn([sys.executable, "-m", "hub", "serve"], cpus=SERVER_CPU, env=env, log=tmp / "hub-out.log")
        wait_http(f"http://127.0.0.1:{port}/healthz")
        followers = servers * actors
        # warm-up: NodeInfo probes and connections, for both fan-outs
        _post_and_wait(env, "shared", servers, control, port)
        _post_and_wait(env, "distinct", followers, control, port)
        ceiling = subprocess.run(
            [sys.executable, "-m", "bench.ceiling", str(base_port), str(servers), str(actors)],
            cwd=ROOT, capture_output=True, text=True, check=True, preexec_fn=pin(SERVER_CPU),
        )
        results["client_baseline"] = json.loads(ceiling.stdout)
        results["shared_inboxes"] = _post_and_wait(env, "shared", servers, control, port)
        results["shared_inboxes"]["followers_reached"] = followers
        results["distinct_inboxes"] = _post_and_wait(env, "distinct", followers, control, port)
        results["rss_peak_kib"] = rss_kib(hub.pid)[1]
        print(f"  outbound: {results}", flush=True)
    finally:
        stop(hub)
        stop(receivers)
    return results


# --- report -----------------------------------------------------------------------------------------


def machine() -> str:
    cpu = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem = int(Path("/proc/meminfo").read_text().split()[1]) // (1024 * 1024)
    return f"{cpu}, {os.cpu_count()} cores, {mem} GiB RAM, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def report(res: dict) -> str:
    inb, out, cr = res["inbound"], res["outbound"], res["crypto"]
    rt, nodb, bare = inb["roundtable"], inb["inbox_no_db"], inb["bare_aiohttp"]
    d, s = out["distinct_inboxes"], out["shared_inboxes"]
    rows = [
        ("Inbound: signed Create(Note) accepted/s (verify, dedupe, store, 202)", f"{rt['requests_per_s']:,}",
         f"no-database inbox handler {nodb['requests_per_s']:,}/s", f"{rt['requests_per_s'] / nodb['requests_per_s']:.0%}", "≥ 50%"),
        ("Inbound vs bare aiohttp answering 202", f"{rt['requests_per_s']:,}", f"bare aiohttp {bare['requests_per_s']:,}/s",
         f"{rt['requests_per_s'] / bare['requests_per_s']:.0%}", ""),
        ("Inbound vs raw RSA-2048 verify (cryptography)", f"{rt['requests_per_s']:,}", f"{cr['rsa2048_verify_per_s']:,}/s",
         f"{rt['requests_per_s'] / cr['rsa2048_verify_per_s']:.0%}", ""),
        ("Inbound latency p50 / p99", f"{rt['p50_ms']} / {rt['p99_ms']} ms",
         f"no-database {nodb['p50_ms']} / {nodb['p99_ms']} ms", "", ""),
        ("Outbound: 1,000 distinct inboxes, deliveries/s", f"{d['steady_deliveries_per_s']:,}",
         f"raw RSA-2048 sign {cr['rsa2048_sign_per_s']:,}/s", f"{d['steady_deliveries_per_s'] / cr['rsa2048_sign_per_s']:.0%}", "≥ 70%"),
        ("Outbound vs bare aiohttp client signing and POSTing, no database", f"{d['steady_deliveries_per_s']:,}",
         f"sign + POST loop {out['client_baseline']['deliveries_per_s']:,}/s",
         f"{d['steady_deliveries_per_s'] / out['client_baseline']['deliveries_per_s']:.0%}", ""),
        ("Outbound: 1,000 followers on 100 servers (100 shared-inbox deliveries)",
         f"{s['steady_deliveries_per_s']:,} deliveries/s, all reached {s['post_command_to_last_s']} s after `post`",
         f"raw RSA-2048 sign {cr['rsa2048_sign_per_s']:,}/s", f"{s['steady_deliveries_per_s'] / cr['rsa2048_sign_per_s']:.0%}", ""),
        ("Outbound: 1,000 distinct inboxes, `post` to last delivery", f"{d['post_command_to_last_s']} s", "", "", ""),
        ("Server RSS idle / peak", f"{rt['rss_idle_kib'] // 1024} MiB / {max(rt['rss_peak_kib'], out['rss_peak_kib']) // 1024} MiB", "", "", ""),
    ]
    lines = [
        f"Measured {res['date']} on {res['machine']}; server pinned to one core, load on the other.",
        "",
        "| measure | Roundtable | baseline (same run) | ratio | target |",
        "|---|---|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in rows),
        "",
        f"Inbound ran {res['seconds']} s per target with wrk (1 thread, 64 connections); "
        f"{rt['stored_activities']:,} distinct activities stored, {rt['non_2xx']} non-2xx answers. "
        "The hub ran with `ROUNDTABLE_WORKERS=0`, so the figure is the inbox itself; side effects run afterwards as jobs.",
        "",
        *inbox_report(res["inbox"]),
    ]
    return "\n".join(lines)


def inbox_report(ib: dict) -> list[str]:
    def ms(key: str) -> str:
        return f"{ib[key]['p50_ms']} / {ib[key]['p95_ms']} ms"

    sql, bare = ms("bare_sql_page"), ms("bare_aiohttp_same_json")
    rows = [
        ("Default page (20 most recent), service call", ms("default_page"), f"bare SQL of the page {sql}", "p95 < 20 ms"),
        ("Second page (cursor)", ms("second_page"), "", ""),
        ("Page filtered by status `open`", ms("open_page"), "", ""),
        ("Page filtered by a label (on 5% of conversations)", ms("label_page"), "", ""),
        (f"Search, rare word ({ib['search_rare']['hits_per_query']} hits/query)", ms("search_rare"), "", "p95 < 100 ms"),
        ("Search, common word (in most conversations)", ms("search_common"), "", "p95 < 100 ms"),
        ("Default page over HTTP (JSON API, bearer token)", ms("api_page"), f"bare aiohttp, same JSON {bare}", ""),
        ("Rare-word search over HTTP", ms("api_search_rare"), "", ""),
    ]
    return [
        f"Inbox of one organization with {ib['conversations']:,} conversations and {ib['messages']:,} messages "
        f"in SQLite ({ib['db_mib']} MiB, loaded in {ib['load_s']} s); {ib['default_page']['n']} samples each, "
        "every call writing its audit entry as in real use:",
        "",
        "| inbox measure | p50 / p95 | baseline (same run) | target |",
        "|---|---|---|---|",
        *(f"| {' | '.join(r)} |" for r in rows),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=10, help="duration of each inbound measurement")
    parser.add_argument("--requests", type=int, default=60_000, help="distinct pre-signed inbound requests")
    parser.add_argument("--servers", type=int, default=100)
    parser.add_argument("--actors", type=int, default=10, help="followers per receiving server")
    parser.add_argument("--only", choices=["inbound", "outbound", "inbox"], help="run one part (no report is written)")
    parser.add_argument("--conversations", type=int, default=100_000, help="conversations in the inbox benchmark")
    args = parser.parse_args()
    if shutil.which("wrk") is None and args.only != "inbox":
        raise SystemExit("bench: wrk is required (Debian: apt-get install wrk)")
    res = {"date": dt.date.today().isoformat(), "machine": machine(), "seconds": args.seconds}
    with tempfile.TemporaryDirectory(prefix="rt-bench-") as tmpdir:
        tmp = Path(tmpdir)
        print("raw crypto...", flush=True)
        with multiprocessing.Pool(1) as pool:
            res["crypto"] = pool.apply(crypto_rates)
        print(f"  {res['crypto']}", flush=True)
        if args.only != "outbound":
            print("inbound...", flush=True)
            res["inbound"] = inbound(tmp, args.seconds, args.requests)
        if args.only != "inbound":
            print("outbound...", flush=True)
            res["outbound"] = outbound(tmp, args.servers, args.actors)
        if args.only in (None, "inbox"):
            from bench import inbox as inbox_bench

            print(f"inbox ({args.conversations:,} conversations)...", flush=True)
            res["inbox"] = inbox_bench.run(tmp, conversations=args.conversations)
            print(f"  {res['inbox']}", flush=True)
    if args.only:
        return
    text = report(res)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(res, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(text + "\n")
    update_readme(text)
    print()
    print(text)


def update_readme(text: str) -> None:
    """Put the latest results between the bench markers of README.md."""
    readme = ROOT / "README.md"
    content = readme.read_text()
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start in content and end in content:
        head, rest = content.split(start, 1)
        _old, tail = rest.split(end, 1)
        readme.write_text(f"{head}{start}\n{text}\n{end}{tail}")


if __name__ == "__main__":
    main()
