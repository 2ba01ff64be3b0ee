"""Runs `senti-edge distill train` several times in the same processes; started by
`accelerate launch` in test_multiprocess.py, so one launch (whose imports cost most of the time)
covers a whole run, a run stopped at a step and its resumption. Each run builds its model,
optimizer and scheduler afresh and reads only the checkpoint files, as a new process would.

Usage: accelerate launch ... tests/distill/ddp_driver.py '[["distill", "train", CONFIG, STAGE], ...]'
"""

import json
import sys

from senti_edge.cli import cli

for args in json.loads(sys.argv[1]):
    cli.main(args, prog_name="senti-edge", standalone_mode=False)
