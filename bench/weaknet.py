"""Two Chromium members through the room, one of them on a weak mobile link: what each hears,
sees and waits for, in the mesh and through the relay.

    sudo .venv/bin/python bench/weaknet.py                      # every condition, mesh + relay, TURN once
    sudo .venv/bin/python bench/weaknet.py --runs 3 --conditions 256up+512down --modes relay

Needs root: it re-runs itself inside a new network namespace (``unshare -n``: only loopback,
nothing can leave the machine) and builds the lab there (tests/support/netlab.py): the away
member's Chromium in a namespace of its own behind a veth pair with ``tbf`` rates, nftables
random loss and an NFQUEUE delay; the speaker's Chromium and the server on a clean leg.
Conditions (the away member's leg; 300 ms round trip and 5 % random loss each way unless
clean): ``clean``, ``256up``, ``256up+512down``, ``64up``. With ``--turn`` (default: on for
``256up+512down``) both pages send media only through a coturn on the lab's address.

``--read S`` has the away member spend S seconds on the join screen before clicking (a member
reads it, picks camera or sound only); ``media_s`` still counts from the click. The default,
0, clicks the moment the join button works: the figure the README's tables quote.

Each run prints one line (tests/support/weaknet_session.py says what each figure is):

    mode=… condition=… join_s=… media_s=… concealed_in_pct=… concealed_out_pct=… video_fps_in=…
    freezes=… reconnect_shown_s=… cut_recover_s=… same_participant=… audio_only=…

then, per mode and condition, the median with the spread over the runs. The machine has two
cores shared with other work: run a few times and compare medians; the load average at the
start and end of the run is printed.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

FIELDS = ("join_s", "media_s", "concealed_in_pct", "concealed_out_pct", "video_fps_in", "freezes",
          "reconnect_shown_s", "cut_recover_s")


def load() -> str:
    return Path("/proc/loadavg").read_text().split(" ", 3)[:3].__str__()


async def bench(args: argparse.Namespace) -> None:
    from tests.support.live import free_port
    from tests.support.netlab import CONDITIONS, NetLab
    from tests.support.turn import running_coturn
    from tests.support.weaknet_session import median_and_spread, run_once

    print(f"load average at start: {load()}", flush=True)
    results = []
    with NetLab() as lab:
        plan = [(mode, name, False) for name in args.conditions for mode in args.modes]
        plan += [("relay" if "relay" in args.modes else args.modes[0], name, True) for name in args.turn]
        for _ in range(args.runs):
            for mode, name, turn in plan:
                workdir = Path(tempfile.mkdtemp(prefix="chibo-weaknet-"))
                if turn:
                    with running_coturn(workdir / "turn", host=lab.server_addr) as coturn:
                        result = await run_once(lab, CONDITIONS[name], relay=mode == "relay", port=free_port(),
                                                workdir=workdir, steady=args.steady, cut=args.cut, turn=coturn,
                                                read=args.read)
                else:
                    result = await run_once(lab, CONDITIONS[name], relay=mode == "relay", port=free_port(),
                                            workdir=workdir, steady=args.steady, cut=args.cut, read=args.read)
                counts = lab.delay_counts()
                print(result.line(), *result.notes, f"delay_in_out={counts}", flush=True)
                results.append(result)
    print(f"load average at end: {load()}")
    print("\nmedians (spread) over", args.runs, "run(s):")
    keys = sorted({(r.mode, r.condition) for r in results})
    for mode, condition in keys:
        runs = [r for r in results if (r.mode, r.condition) == (mode, condition)]
        figures = " ".join(f"{f}={median_and_spread([getattr(r, f) for r in runs])}" for f in FIELDS)
        same = all(r.same_participant for r in runs)
        audio_only = sum(1 for r in runs if r.audio_only)
        print(f"mode={mode} condition={condition} {figures} same_participant={'yes' if same else 'no'} "
              f"audio_only={audio_only}/{len(runs)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--modes", default="mesh,relay", type=lambda s: s.split(","))
    parser.add_argument("--conditions", default="clean,256up,256up+512down,64up", type=lambda s: s.split(","))
    parser.add_argument("--turn", default="256up+512down", type=lambda s: [x for x in s.split(",") if x],
                        help="conditions to run once more through TURN (empty: none)")
    parser.add_argument("--steady", type=float, default=20.0, help="seconds of steady measurement")
    parser.add_argument("--cut", type=float, default=10.0, help="seconds of the cut (0: none)")
    parser.add_argument("--read", type=float, default=0.0,
                        help="seconds the away member spends on the join screen before clicking (default 0: "
                             "the click as soon as the button works, the figure the README quotes)")
    args = parser.parse_args()
    if os.environ.get("CHIBO_WEAKNET_INSIDE") != "1":
        if os.geteuid() != 0:
            sys.exit("bench/weaknet.py needs root (network namespaces, tc, nft, iptables)")
        env = {**os.environ, "CHIBO_WEAKNET_INSIDE": "1"}
        command = ["unshare", "-n", "sh", "-c", 'ip link set lo up && exec "$0" "$@"', sys.executable, *sys.argv]
        sys.exit(subprocess.call(command, env=env, cwd=str(ROOT)))
    asyncio.run(bench(args))


if __name__ == "__main__":
    main()
