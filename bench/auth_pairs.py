#!/usr/bin/env python3
"""Device tokens against basic auth on SQLite, in alternating pairs: one pair of `bench/run`'s
"Devices" cells says little on a machine whose speed drifts from minute to minute, so this
measures several, in both orders (basic then token, token then basic, ...), each cell on a fresh
server and a fresh copy of a 10,000-row database, and prints each pair's ratio.

    bench/auth_pairs.py                                  # retrieve, 64 connections, 4 pairs of 5 s
    bench/auth_pairs.py --scenario create --pairs 6 --binary /tmp/other-build
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import bench


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=["retrieve", "create"], default="retrieve")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--pairs", type=int, default=4)
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--binary", default=bench.BINARY)
    args = parser.parse_args()
    bench.BINARY = args.binary
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        store = bench.SqliteStore(workdir, 10_000)

        def cell(device_token: bool) -> bench.Measurement:
            return bench.measure_fresh(store, 10_000, 2, workdir / "server.log", args.scenario,
                                       args.connections, args.seconds, device_token=device_token)

        lines, errors = [], 0
        for pair in range(args.pairs):
            order = [False, True] if pair % 2 == 0 else [True, False]
            got = {device_token: cell(device_token) for device_token in order}
            basic, token = got[False], got[True]
            errors += basic.errors + token.errors
            lines.append(
                f"pair {pair + 1} ({'basic first' if pair % 2 == 0 else 'token first'}): "
                f"basic auth {basic.rps:,.0f} req/s ({basic.cpu_us_per_request:.1f} CPU us/req), "
                f"device token {token.rps:,.0f} req/s ({token.cpu_us_per_request:.1f}), "
                f"token / basic {token.rps / basic.rps if basic.rps else 0:.2f}")
        print(f"`{bench.command_line('bench/auth_pairs.py')}` at `{bench.git_commit()}`, "
              f"{bench.machine()}; {args.scenario}, {args.connections} connections, "
              f"{args.seconds} s a cell, SQLite")
        print("\n".join(lines))
    if errors:
        raise SystemExit(f"{errors} requests failed: the figures above do not count")


if __name__ == "__main__":
    main()
