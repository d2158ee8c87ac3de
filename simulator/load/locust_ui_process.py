"""The Locust process of `fhirlab load --ui`: `python -m simulator.load.locust_ui_process SPEC
PORT`. Locust's own web UI on 127.0.0.1:PORT, with the scenario users of the spec, sending to the
spec's one gateway; the trainee starts, stops and changes the users there. Nothing runs until the
UI starts a swarm. On SIGTERM or SIGINT it stops the users and writes Locust's CSVs
(`<directory>/locust_stats.csv`, `_stats_history.csv`, `_failures.csv`, `_exceptions.csv`) and the
raw samples (`<directory>/samples.json`) of the whole session.
"""

# ruff: noqa: E402  (gevent must patch the standard library before anything else is imported)
from gevent import monkey

monkey.patch_all()

import json
import logging
import signal
import sys
from pathlib import Path

import gevent
from gevent.event import Event
from locust.log import setup_logging
from locust.stats import PERCENTILES_TO_REPORT, StatsCSVFileWriter

from simulator.load.locust_process import (
    SliceSamples,
    environment,
    record_samples,
    write_final_csvs,
    write_samples,
)
from simulator.load.spec import LoadSpec
from simulator.load.users import SliceControl

UI_HOST = "127.0.0.1"  # never another interface: the UI starts load against the lab


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print("usage: python -m simulator.load.locust_ui_process SPEC PORT")
        return 2
    spec, port = LoadSpec.read(Path(argv[0])), int(argv[1])
    setup_logging("INFO")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    (piece,) = spec.slices
    Path(piece.directory).mkdir(parents=True, exist_ok=True)
    control = SliceControl(spec.host)
    env = environment(spec, control)
    samples = SliceSamples()
    record_samples(env, samples, control)
    runner = env.create_local_runner()
    control.begin([(0, piece.host)])  # the users send as soon as the UI starts them
    web = env.create_web_ui(host=UI_HOST, port=port)
    writer = StatsCSVFileWriter(env, PERCENTILES_TO_REPORT, piece.csv_prefix, full_history=True)
    writing = gevent.spawn(writer.stats_writer)
    stop = Event()
    gevent.signal_handler(signal.SIGTERM, stop.set)
    gevent.signal_handler(signal.SIGINT, stop.set)
    print(json.dumps({"phase": "ui", "url": f"http://{UI_HOST}:{port}"}), flush=True)
    stop.wait()
    runner.stop()
    runner.quit()
    gevent.kill(writing)
    writer.close_files()
    write_final_csvs(env, piece.csv_prefix)
    write_samples(spec, samples)
    web.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
