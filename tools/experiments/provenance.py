"""Where and how a measurement was made, for the results files behind the docs."""
import os
import platform
import time
from typing import Dict

import torch


def machine() -> Dict:
    """What the numbers were measured on."""
    cpu = platform.processor()
    try:
        cpu = next(line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo') if line.startswith('model name'))
    except (OSError, StopIteration):
        pass
    return dict(cpu=cpu or platform.machine(), cores=os.cpu_count(), gpu=None, system=platform.platform(),
                torch=torch.__version__, torch_threads=torch.get_num_threads())


def provenance(command: str) -> Dict:
    """The command, the date and the machine of a measurement."""
    return dict(command=command, date=time.strftime('%Y-%m-%d'), machine=machine())
